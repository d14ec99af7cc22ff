package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pluginBinary builds netbed-cni once per test run.
func pluginBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "netbed-cni-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "netbed-cni")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runPlugin invokes the binary as a runtime does: CNI_* environment and
// the config on stdin. It returns stdout and whether it exited 0.
func runPlugin(t testing.TB, env map[string]string, stdin []byte) ([]byte, bool) {
	t.Helper()
	cmd := exec.Command(pluginBinary(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run plugin: %v", err)
	}
	return out.Bytes(), err == nil
}

var specVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// malformed lists bad configs: each names the field the error must name.
var malformed = []struct {
	name  string
	extra map[string]any
	field string
	code  uint
}{
	{"mode unknown", map[string]any{"mode": "vlan"}, "mode", types.ErrInvalidNetworkConfig},
	{"controller missing", map[string]any{"controllerURL": nil}, "controllerURL", types.ErrInvalidNetworkConfig},
	{"controller scheme", map[string]any{"controllerURL": "ftp://x"}, "controllerURL", types.ErrInvalidNetworkConfig},
	{"controller unix without path", map[string]any{"controllerURL": "unix://"}, "controllerURL", types.ErrInvalidNetworkConfig},
	{"no network nor label", map[string]any{"network": nil}, "network", types.ErrInvalidNetworkConfig},
	{"network and label", map[string]any{"label": "prod-env"}, "label", types.ErrInvalidNetworkConfig},
	{"host with space", map[string]any{"host": "node 1"}, "host", types.ErrInvalidNetworkConfig},
	{"bridge too long", map[string]any{"bridge": "br-much-too-long-name"}, "bridge", types.ErrInvalidNetworkConfig},
	{"host prefix too long", map[string]any{"hostIfPrefix": "vethx"}, "hostIfPrefix", types.ErrInvalidNetworkConfig},
	{"mtu too small", map[string]any{"mtu": 20}, "mtu", types.ErrInvalidNetworkConfig},
	{"mtu too large", map[string]any{"mtu": 70000}, "mtu", types.ErrInvalidNetworkConfig},
	{"mtu wrong type", map[string]any{"mtu": "big"}, "mtu", types.ErrDecodingFailure},
	{"node CIDR in evpn", map[string]any{"nodeCIDR": "10.244.1.0/24"}, "nodeCIDR", types.ErrInvalidNetworkConfig},
	{"ebpf without node CIDR nor controller", map[string]any{"mode": "ebpf", "controllerURL": nil, "network": nil}, "nodeCIDR", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR garbage", map[string]any{"mode": "ebpf", "nodeCIDR": "ten"}, "nodeCIDR", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR host bits", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.7/24"}, "nodeCIDR", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR6 garbage", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "nodeCIDR6": "fd10::"}, "nodeCIDR6", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR6 host bits", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "nodeCIDR6": "fd10::1/120"}, "nodeCIDR6", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR6 IPv4", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "nodeCIDR6": "10.245.0.0/24"}, "nodeCIDR6", types.ErrInvalidNetworkConfig},
	{"ebpf node CIDR6 too large", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "nodeCIDR6": "fd10::/64"}, "nodeCIDR6", types.ErrInvalidNetworkConfig},
	{"node CIDR6 in evpn", map[string]any{"nodeCIDR6": "fd10::/120"}, "nodeCIDR6", types.ErrInvalidNetworkConfig},
	{"keepPort unknown", map[string]any{"keepPort": "sometimes"}, "keepPort", types.ErrInvalidNetworkConfig},
	{"timeout garbage", map[string]any{"timeout": "forever"}, "timeout", types.ErrInvalidNetworkConfig},
	{"identity label empty", map[string]any{"identityLabels": []string{""}}, "identityLabels[0]", types.ErrInvalidNetworkConfig},
	{"attach unknown", map[string]any{"attach": "ovs"}, "attach", types.ErrInvalidNetworkConfig},
	{"attach none with a bridge", map[string]any{"attach": "none", "bridge": "br-int"}, "bridge", types.ErrInvalidNetworkConfig},
	{"createBridge wrong type", map[string]any{"createBridge": "yes"}, "createBridge", types.ErrDecodingFailure},
	{"CA over plain http", map[string]any{"caFile": "/ca.crt"}, "controllerURL", types.ErrInvalidNetworkConfig},
	{"cert without key", map[string]any{"controllerURL": "https://c:7480", "certFile": "/n.crt"}, "keyFile", types.ErrInvalidNetworkConfig},
	{"key without cert", map[string]any{"controllerURL": "https://c:7480", "keyFile": "/n.key"}, "certFile", types.ErrInvalidNetworkConfig},
	{"client cert on a socket without CA", map[string]any{"controllerURL": "unix:///c.sock", "certFile": "/n.crt", "keyFile": "/n.key"}, "caFile", types.ErrInvalidNetworkConfig},
	{"token without controller", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "controllerURL": nil, "network": nil, "tokenFile": "/t"}, "controllerURL", types.ErrInvalidNetworkConfig},
}

func TestMalformedConfigInProcess(t *testing.T) {
	for _, ver := range specVersions {
		for _, tc := range malformed {
			t.Run(ver+"/"+tc.name, func(t *testing.T) {
				_, err := parseConf(confJSON(t, ver, tc.extra), "node-1")
				if err == nil {
					t.Fatal("accepted")
				}
				if err.Code != tc.code || !strings.Contains(err.Msg, `"`+tc.field+`"`) {
					t.Errorf("error code %d %q, want code %d naming %q", err.Code, err.Msg, tc.code, tc.field)
				}
			})
		}
	}
}

// Every malformed config, for every spec version, through the binary as a
// runtime calls it: ADD fails with a CNI error naming the field, and
// nothing is created (CNI_NETNS does not even exist).
func TestMalformedConfigBinary(t *testing.T) {
	for _, ver := range specVersions {
		for _, tc := range malformed {
			t.Run(ver+"/"+tc.name, func(t *testing.T) {
				env := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/nonexistent/netns",
					"CNI_IFNAME": "eth0", "CNI_PATH": filepath.Dir(pluginBinary(t))}
				out, ok := runPlugin(t, env, confJSON(t, ver, tc.extra))
				if ok {
					t.Fatalf("ADD succeeded: %s", out)
				}
				var e types.Error
				if err := json.Unmarshal(out, &e); err != nil {
					t.Fatalf("stdout is not a CNI error: %q", out)
				}
				if e.Code != tc.code || !strings.Contains(e.Msg, `"`+tc.field+`"`) {
					t.Errorf("error %+v, want code %d naming %q", e, tc.code, tc.field)
				}
			})
		}
	}
}

func TestVersionCommand(t *testing.T) {
	out, ok := runPlugin(t, map[string]string{"CNI_COMMAND": "VERSION"}, []byte(`{"cniVersion":"1.1.0"}`))
	if !ok {
		t.Fatalf("VERSION failed: %s", out)
	}
	var v struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Supported, specVersions) {
		t.Errorf("supported versions %v, want %v", v.Supported, specVersions)
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add(confJSON(f, "1.0.0", nil))
	f.Add(confJSON(f, "1.1.0", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "controllerURL": nil, "network": nil}))
	f.Add(confJSON(f, "1.1.0", map[string]any{"mode": "ebpf", "nodeCIDR": "10.244.1.0/24", "nodeCIDR6": "fd10::100/120", "controllerURL": nil, "network": nil}))
	f.Add([]byte(`{"controllerURL":"unix:///run/x.sock","label":"prod-env","mtu":1450,"args":{"cni":{"labels":[{"key":"k","value":"v"}]}}}`))
	f.Add([]byte(`{"mtu":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConf(b, "node-1")
		if (c == nil) == (err == nil) {
			t.Fatalf("parseConf returned conf %v and error %v", c, err)
		}
		if err != nil {
			if err.Code != types.ErrInvalidNetworkConfig && err.Code != types.ErrDecodingFailure {
				t.Fatalf("unexpected code %d", err.Code)
			}
			return
		}
		if c.Mode != ModeEVPN && c.Mode != ModeEBPF {
			t.Fatalf("accepted mode %q", c.Mode)
		}
		if checkName(c.Host) != "" || checkIfName(c.Bridge, 15) != "" || len(c.HostIfPrefix)+hashLen > 15 {
			t.Fatalf("accepted bad names %+v", c)
		}
	})
}

func FuzzCNIArgsAndIdentity(f *testing.F) {
	f.Add("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b", "cid", "eth0")
	f.Add("NETBED_IDENTITY=x/y z;IgnoreUnknown=1", "", "net1")
	f.Add(";;=;a", "c", "")
	conf, terr := parseConf(confJSON(f, "1.0.0", nil), "n")
	if terr != nil {
		f.Fatal(terr)
	}
	f.Fuzz(func(t *testing.T, cniArgs, cid, ifName string) {
		m, err := parseCNIArgs(cniArgs)
		if err != nil {
			return
		}
		id, err := identityOf(conf, m, cid, ifName)
		if err != nil {
			return
		}
		if msg := checkName(id.Port); msg != "" {
			t.Fatalf("identity %q for args %q: %s", id.Port, cniArgs, msg)
		}
	})
}
