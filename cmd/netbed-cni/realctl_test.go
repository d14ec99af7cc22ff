package main

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/topologies"
)

// realController is a controller as `netbed controller serve` runs it: a
// bbolt store, the network service with the CNC as its overlay (leaves in a
// MemoryDriver) and the HTTP API, served on a unix socket (reachable from
// any network namespace) and on TCP.
type realController struct {
	svc     *controller.Service
	cnc     *cnc.CNC
	drv     *cnc.MemoryDriver
	unixURL string
	httpURL string
}

// twoHostFabric: host-a under leaf1, host-b under leaf2, one spine.
func twoHostFabric() *topologies.Topology {
	t := &topologies.Topology{Name: "cni-test"}
	t.AddNode("spine1", topologies.RoleSpine)
	t.AddNode("leaf1", topologies.RoleLeaf)
	t.AddNode("leaf2", topologies.RoleLeaf)
	t.AddNode("host-a", topologies.RoleHost)
	t.AddNode("host-b", topologies.RoleHost)
	t.Connect("spine1", "e1", "leaf1", "up")
	t.Connect("spine1", "e2", "leaf2", "up")
	t.Connect("host-a", "eth0", "leaf1", "e10")
	t.Connect("host-b", "eth0", "leaf2", "e10")
	return t
}

func startController(t testing.TB, cidr string) *realController {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "ctl.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	drv := cnc.NewMemoryDriver()
	c := cnc.New(twoHostFabric(), drv, svc, cnc.Options{Backoff: time.Millisecond})
	svc.SetOverlay(c)
	ctx := context.Background()
	if _, err := svc.CreateNetwork(ctx, controller.NetworkRequest{Name: "blue", Labels: []string{"prod-env"}, Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 5001}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSubnet(ctx, controller.SubnetRequest{Network: "blue", CIDR: netip.MustParsePrefix(cidr)}); err != nil {
		t.Fatal(err)
	}
	handler := api.NewServer(svc)
	sock := filepath.Join(dir, "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	us := httptest.NewUnstartedServer(handler)
	us.Listener.Close()
	us.Listener = ln
	us.Start()
	hs := httptest.NewServer(handler)
	t.Cleanup(func() {
		us.Close()
		hs.Close()
		svc.Close()
		c.Close()
		st.Close()
	})
	return &realController{svc: svc, cnc: c, drv: drv, unixURL: "unix://" + sock, httpURL: hs.URL}
}

// settled waits until the port's overlay is ACTIVE and the CNC is idle.
func (rc *realController) settled(t testing.TB, name string) controller.Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		p, err := rc.svc.GetPort(ctx, name)
		if err == nil && p.Status() == controller.StatusActiveActive {
			if err := rc.cnc.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if p, err = rc.svc.GetPort(ctx, name); err == nil && p.Status() == controller.StatusActiveActive {
				return p
			}
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, _ = rc.svc.WaitPort(wctx, name, controller.StatusActiveActive)
		wcancel()
		if ctx.Err() != nil {
			t.Fatalf("port %q never ACTIVE_ACTIVE: %+v %v", name, p, err)
		}
	}
}

func realPlugin(host string, ln linker) *plugin {
	p := newPlugin()
	p.hostname = func() (string, error) { return host, nil }
	p.link = ln
	return p
}

// The plugin against a real controller (HTTP API over bbolt, CNC with
// in-memory leaves); only the kernel side is faked here (the privileged
// test wires real namespaces).
func TestRealControllerDrift(t *testing.T) {
	rc := startController(t, "10.20.0.0/24")
	for _, url := range []struct{ name, url string }{{"unix", rc.unixURL}, {"http", rc.httpURL}} {
		t.Run(url.name, func(t *testing.T) {
			ln := newFakeLinker()
			a, b := realPlugin("host-a", ln), realPlugin("host-b", ln)
			conf := confJSON(t, "1.0.0", map[string]any{"controllerURL": url.url})
			id := "NETBED_IDENTITY=db-" + url.name

			r1, _, err := a.add(args(conf, "c1", id))
			if err != nil {
				t.Fatal(err)
			}
			p1 := rc.settled(t, "id:db-"+url.name)
			if got := r1.IPs[0].Address.IP.String(); got != p1.IPs[0].Address.String() {
				t.Fatalf("result address %s, port address %s", got, p1.IPs[0].Address)
			}
			if !rc.drv.Leaf("leaf1").HasEntry(p1.ID) {
				t.Fatalf("leaf1 lacks the port after ADD on host-a")
			}

			// Pod deleted on host-a (port kept: stateful identity), then
			// added on host-b with the same identity.
			if err := a.cmdDel(args(conf, "c1", id)); err != nil {
				t.Fatal(err)
			}
			kept, err := rc.svc.GetPort(context.Background(), p1.Name)
			if err != nil || kept.UnderlayState != controller.StateDown {
				t.Fatalf("after DEL: port %+v, %v; want kept with underlay DOWN", kept, err)
			}
			r2, _, err := b.add(args(conf, "c2", id))
			if err != nil {
				t.Fatal(err)
			}
			p2 := rc.settled(t, p1.Name)
			if r2.IPs[0].Address.String() != r1.IPs[0].Address.String() || p2.ID != p1.ID || p2.Host != "host-b" {
				t.Fatalf("drift: address %v -> %v, port %s@%s -> %s@%s", r1.IPs[0].Address, r2.IPs[0].Address, p1.ID, p1.Host, p2.ID, p2.Host)
			}
			if rc.drv.Leaf("leaf1").HasEntry(p1.ID) || !rc.drv.Leaf("leaf2").HasEntry(p1.ID) {
				t.Errorf("leaf config did not follow: leaf1 %+v, leaf2 %+v", rc.drv.Leaf("leaf1"), rc.drv.Leaf("leaf2"))
			}

			// A plain pod's port goes with the pod, and its address with it.
			plain := "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-" + url.name
			if _, _, err := a.add(args(conf, "c3", plain)); err != nil {
				t.Fatal(err)
			}
			rc.settled(t, "pod:shop:web-"+url.name)
			if err := a.cmdDel(args(conf, "c3", plain)); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.svc.GetPort(context.Background(), "pod:shop:web-"+url.name); !errors.Is(err, controller.ErrNotFound) {
				t.Errorf("plain pod's port after DEL: %v, want not found", err)
			}
			// STATUS reaches it.
			if err := a.cmdStatus(args(conf, "", "")); err != nil {
				t.Errorf("STATUS: %v", err)
			}
		})
	}
}

func TestRealControllerExhaustedAndUnknownLabel(t *testing.T) {
	rc := startController(t, "10.21.0.0/30") // one address for ports
	ln := newFakeLinker()
	a := realPlugin("host-a", ln)
	conf := confJSON(t, "1.0.0", map[string]any{"controllerURL": rc.httpURL})
	if _, _, err := a.add(args(conf, "c1", "NETBED_IDENTITY=x")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		conf []byte
		want string
	}{
		{"pool exhausted", conf, "exhausted"},
		{"unknown label", confJSON(t, "1.0.0", map[string]any{"controllerURL": rc.httpURL, "network": nil, "label": "no-such-label"}), "no-such-label"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := a.add(args(tc.conf, "c2", "NETBED_IDENTITY=y"))
			if err == nil || !containsFold(err.Error(), tc.want) {
				t.Fatalf("ADD error %v, want one mentioning %q", err, tc.want)
			}
			if len(ln.links) != 1 {
				t.Errorf("failed ADD left links: %v", ln.links)
			}
		})
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// A malformed config is refused before anything changes: no port in the
// controller, no link.
func TestMalformedConfigChangesNothing(t *testing.T) {
	rc := startController(t, "10.22.0.0/24")
	ln := newFakeLinker()
	a := realPlugin("host-a", ln)
	for _, tc := range malformed {
		extra := map[string]any{}
		for k, v := range tc.extra {
			extra[k] = v
		}
		if _, ok := extra["controllerURL"]; !ok {
			extra["controllerURL"] = rc.unixURL
		}
		_, _, err := a.add(args(confJSON(t, "1.0.0", extra), "c1", "NETBED_IDENTITY=x"))
		if err == nil {
			t.Errorf("%s: ADD accepted", tc.name)
		}
	}
	ports, err := rc.svc.ListPorts(context.Background())
	if err != nil || len(ports) != 0 || len(ln.links) != 0 {
		t.Errorf("malformed ADDs left ports %v (%v) and links %v", ports, err, ln.links)
	}
}

// Ebpf mode without a nodeCIDR against a real controller with a cluster
// pool: each host's pods get addresses of the block the controller gave
// that host, over the unix socket.
func TestRealControllerNodeBlocks(t *testing.T) {
	rc := startController(t, "10.20.0.0/24")
	if err := rc.svc.SetClusterPool(context.Background(), controller.ClusterPool{CIDR: netip.MustParsePrefix("10.244.0.0/16"), MaskBits: 24}); err != nil {
		t.Fatal(err)
	}
	conf := confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "controllerURL": rc.unixURL, "network": nil, "dataDir": t.TempDir()})
	confB := confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "controllerURL": rc.unixURL, "network": nil, "dataDir": t.TempDir()})
	ln := newFakeLinker()
	ra, _, err := realPlugin("host-a", ln).add(args(conf, "pa", ""))
	if err != nil {
		t.Fatal(err)
	}
	rb, _, err := realPlugin("host-b", ln).add(args(confB, "pb", ""))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := rc.svc.ListNodes(context.Background())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	block := map[string]netip.Prefix{}
	for _, n := range nodes {
		block[n.Name] = n.PodCIDR
	}
	for _, c := range []struct {
		host string
		ip   net.IP
	}{{"host-a", ra.IPs[0].Address.IP}, {"host-b", rb.IPs[0].Address.IP}} {
		a, _ := netip.AddrFromSlice(c.ip)
		if !block[c.host].Contains(a.Unmap()) {
			t.Errorf("%s's pod got %v, outside its block %v", c.host, a, block[c.host])
		}
	}
	if block["host-a"] == block["host-b"] {
		t.Errorf("both hosts got block %v", block["host-a"])
	}
}
