package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/netbed/netbed/controller"
)

func fakePlugin(cl *fakeClient, ln *fakeLinker) *plugin {
	return &plugin{
		hostname:  func() (string, error) { return "node-1", nil },
		newClient: func(*NetConf) (portClient, error) { return cl, nil },
		link:      ln,
	}
}

func confJSON(t testing.TB, ver string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": ver, "name": "netbed", "type": "netbed-cni",
		"controllerURL": "http://127.0.0.1:1", "network": "blue"}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentity(t *testing.T) {
	labels := map[string]any{"cni": map[string]any{"labels": []map[string]string{{"key": DefaultIdentityLabel, "value": "db-0"}}}}
	cases := []struct {
		name     string
		extra    map[string]any
		cniArgs  string
		ifName   string
		port     string
		stateful bool
	}{
		{"k8s pod", nil, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-7f9c", "eth0", "pod:shop:web-7f9c", false},
		{"stateful label wins", map[string]any{"args": labels}, "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0", "eth0", "sts:shop:db-0", true},
		{"explicit identity", nil, "NETBED_IDENTITY=cache-3;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b", "eth0", "id:cache-3", true},
		{"container fallback", nil, "", "eth0", "ctr:c0ffee", false},
		{"exact port name wins", map[string]any{"args": labels}, "NETBED_PORT=pod-3;NETBED_IDENTITY=cache-3", "eth0", "pod-3", true},
		{"exact port name on a second interface", nil, "NETBED_PORT=pod-3-data", "net1", "pod-3-data", true},
		{"second interface", nil, "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web", "net1", "pod:shop:web@net1", false},
		{"custom identity label", map[string]any{"identityLabels": []string{"app.kubernetes.io/instance"},
			"args": map[string]any{"cni": map[string]any{"labels": []map[string]string{{"key": "app.kubernetes.io/instance", "value": "kafka-1"}}}}},
			"", "eth0", "sts::kafka-1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf, terr := parseConf(confJSON(t, "1.0.0", tc.extra), "node-1")
			if terr != nil {
				t.Fatal(terr)
			}
			args, err := parseCNIArgs(tc.cniArgs)
			if err != nil {
				t.Fatal(err)
			}
			id, err := identityOf(conf, args, "c0ffee", tc.ifName)
			if err != nil {
				t.Fatal(err)
			}
			if id.Port != tc.port || id.Stateful != tc.stateful {
				t.Errorf("identity %+v, want port %q stateful %v", id, tc.port, tc.stateful)
			}
		})
	}
}

func TestIdentityRejectsBadPortName(t *testing.T) {
	conf, terr := parseConf(confJSON(t, "1.0.0", nil), "node-1")
	if terr != nil {
		t.Fatal(terr)
	}
	for _, bad := range []string{"", "pod 3", strings.Repeat("p", 129)} {
		if id, err := identityOf(conf, map[string]string{"NETBED_PORT": bad}, "c0ffee", "eth0"); err == nil || !strings.Contains(err.Error(), "NETBED_PORT") {
			t.Errorf("NETBED_PORT %q: identity %+v, error %v; want an error naming NETBED_PORT", bad, id, err)
		}
	}
}

func TestPortNameSanitisesAndStaysUnique(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct{ a, b []string }{
		{[]string{"pod", "ns", "a/b"}, []string{"pod", "ns", "a_b"}},           // sanitised vs literal
		{[]string{"pod", "ns", long + "1"}, []string{"pod", "ns", long + "2"}}, // truncated
	}
	for _, tc := range cases {
		x, y := portName(tc.a...), portName(tc.b...)
		if x == y {
			t.Errorf("portName(%q) == portName(%q) == %q", tc.a, tc.b, x)
		}
		for _, n := range []string{x, y} {
			if msg := checkName(n); msg != "" {
				t.Errorf("portName gave invalid %q: %s", n, msg)
			}
		}
	}
}

func args(conf []byte, cid, cniArgs string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: cid, Netns: "/var/run/netns/" + cid, IfName: "eth0", Args: cniArgs, StdinData: conf}
}

func TestAddDelKeepPolicy(t *testing.T) {
	cases := []struct {
		name     string
		keep     string
		cniArgs  string
		wantKept bool
	}{
		{"auto deletes a plain pod's port", "", "K8S_POD_NAMESPACE=a;K8S_POD_NAME=web-1", false},
		{"auto keeps a stateful identity", "", "NETBED_IDENTITY=db-0", true},
		{"always keeps", KeepAlways, "K8S_POD_NAMESPACE=a;K8S_POD_NAME=web-1", true},
		{"never deletes a stateful identity", KeepNever, "NETBED_IDENTITY=db-0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, ln := newFakeClient(), newFakeLinker()
			p := fakePlugin(cl, ln)
			extra := map[string]any{}
			if tc.keep != "" {
				extra["keepPort"] = tc.keep
			}
			conf := confJSON(t, "1.0.0", extra)
			res, _, err := p.add(args(conf, "cid1", tc.cniArgs))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.9.0.2/24" || res.IPs[0].Gateway.String() != "10.9.0.1" {
				t.Fatalf("result IPs %v", res.IPs)
			}
			if len(ln.links) != 1 {
				t.Fatalf("links after ADD: %v", ln.links)
			}
			var name string
			for n, prt := range cl.ports {
				name = n
				if prt.Host != "node-1" || prt.UnderlayState != controller.StateActive {
					t.Errorf("port after ADD: host %q underlay %s", prt.Host, prt.UnderlayState)
				}
			}
			if err := p.cmdDel(args(conf, "cid1", tc.cniArgs)); err != nil {
				t.Fatal(err)
			}
			if len(ln.links) != 0 {
				t.Errorf("links after DEL: %v", ln.links)
			}
			prt, kept := cl.ports[name]
			if kept != tc.wantKept {
				t.Errorf("port kept = %v, want %v", kept, tc.wantKept)
			}
			if kept && prt.UnderlayState != controller.StateDown {
				t.Errorf("kept port underlay %s, want DOWN", prt.UnderlayState)
			}
			// DEL again, and DEL of a never-seen container: both succeed.
			for _, cid := range []string{"cid1", "never-added"} {
				if err := p.cmdDel(args(conf, cid, tc.cniArgs)); err != nil {
					t.Errorf("repeated DEL %s: %v", cid, err)
				}
			}
		})
	}
}

// A DEL that arrives on the old host after the identity came up on another
// must leave the port alone.
func TestDelAfterDriftLeavesPort(t *testing.T) {
	cl, ln := newFakeClient(), newFakeLinker()
	a := fakePlugin(cl, ln)
	b := fakePlugin(cl, ln)
	b.hostname = func() (string, error) { return "node-2", nil }
	conf := confJSON(t, "1.0.0", map[string]any{"keepPort": KeepNever})
	ra, _, err := a.add(args(conf, "old", "NETBED_IDENTITY=db-0"))
	if err != nil {
		t.Fatal(err)
	}
	rb, _, err := b.add(args(conf, "new", "NETBED_IDENTITY=db-0"))
	if err != nil {
		t.Fatal(err)
	}
	if ra.IPs[0].Address.String() != rb.IPs[0].Address.String() {
		t.Fatalf("drifted identity changed address: %v -> %v", ra.IPs[0].Address, rb.IPs[0].Address)
	}
	if err := a.cmdDel(args(conf, "old", "NETBED_IDENTITY=db-0")); err != nil {
		t.Fatal(err)
	}
	p, ok := cl.ports["id:db-0"]
	if !ok || p.Host != "node-2" {
		t.Fatalf("old host's DEL touched the drifted port: %+v present=%v", p, ok)
	}
}

// TestAddCallsTheControllerTwice: an evpn ADD gets or creates the port
// with its BUILD report in one call, then reports ACTIVE once wired: two
// controller writes, the underlay BUILD then ACTIVE.
func TestAddCallsTheControllerTwice(t *testing.T) {
	cl, ln := newFakeClient(), newFakeLinker()
	if _, _, err := fakePlugin(cl, ln).add(args(confJSON(t, "1.0.0", nil), "cid", "")); err != nil {
		t.Fatal(err)
	}
	want := []string{"ensure ctr:cid node-1", "underlay ctr:cid ACTIVE"}
	if !slices.Equal(cl.calls, want) {
		t.Errorf("controller calls %q, want %q", cl.calls, want)
	}
	if want := []string{"ctr:cid BUILD", "ctr:cid ACTIVE"}; !slices.Equal(cl.states, want) {
		t.Errorf("underlay reports %q, want %q", cl.states, want)
	}
}

func TestAddErrors(t *testing.T) {
	cases := []struct {
		name     string
		down     bool
		linkErr  error
		wantCode uint
		state    string // last underlay report, if any
	}{
		{"controller unreachable", true, nil, types.ErrTryAgainLater, ""},
		{"wiring fails", false, errors.New("boom"), types.ErrInternal, "ctr:cid ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, ln := newFakeClient(), newFakeLinker()
			cl.down, ln.fail = tc.down, tc.linkErr
			_, _, err := fakePlugin(cl, ln).add(args(confJSON(t, "1.0.0", nil), "cid", ""))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.wantCode {
				t.Fatalf("error %v, want CNI code %d", err, tc.wantCode)
			}
			if tc.state != "" && (len(cl.states) == 0 || cl.states[len(cl.states)-1] != tc.state) {
				t.Errorf("underlay reports %v, want last %q", cl.states, tc.state)
			}
			if len(cl.ports) != 0 {
				t.Errorf("failed ADD left ports %v (created for a container identity)", cl.ports)
			}
		})
	}
}

func TestCheckAndStatusFake(t *testing.T) {
	cl, ln := newFakeClient(), newFakeLinker()
	p := fakePlugin(cl, ln)
	conf := confJSON(t, "1.0.0", nil)
	res, _, err := p.add(args(conf, "cid", ""))
	if err != nil {
		t.Fatal(err)
	}
	var withPrev map[string]any
	_ = json.Unmarshal(conf, &withPrev)
	withPrev["prevResult"] = res
	pc, _ := json.Marshal(withPrev)
	if err := p.cmdCheck(args(pc, "cid", "")); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	delete(ln.links, hostIfName("tap", "cid", "eth0"))
	if err := p.cmdCheck(args(pc, "cid", "")); err == nil {
		t.Errorf("CHECK passed with the veth gone")
	}
	if err := p.cmdStatus(args(conf, "", "")); err != nil {
		t.Errorf("STATUS with the controller up: %v", err)
	}
	cl.down = true
	var te *types.Error
	if err := p.cmdStatus(args(conf, "", "")); !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with the controller down: %v, want code %d", err, types.ErrPluginNotAvailable)
	}
}

func TestLocalIPAM(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		n    int // addresses for pods
	}{{"10.244.1.0/26", 61}, {"10.244.1.0/28", 13}, {"10.244.2.0/23", 509}} {
		t.Run(tc.cidr, func(t *testing.T) { testLocalIPAM(t, netip.MustParsePrefix(tc.cidr), tc.n) })
	}
}

func testLocalIPAM(t *testing.T, cidr netip.Prefix, n int) {
	dir := t.TempDir()
	l := newLocalIPAM(dir, "netbed", cidr)
	got := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, gw, err := l.Allocate(fmt.Sprintf("c%d/eth0", i))
			if err == nil && gw != cidr.Addr().Next() {
				err = fmt.Errorf("gateway %v", gw)
			}
			got[i], errs[i] = a, err
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i, a := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[a] || !cidr.Contains(a) || a == cidr.Addr().Next() {
			t.Fatalf("bad or duplicate address %v (have %v)", a, seen)
		}
		seen[a] = true
	}
	if _, _, err := l.Allocate("one-too-many/eth0"); err == nil {
		t.Fatalf("allocation beyond the node CIDR succeeded")
	}
	// Idempotent per holder, persistent across instances, released once.
	again, _, err := newLocalIPAM(dir, "netbed", cidr).Allocate("c3/eth0")
	if err != nil || !seen[again] {
		t.Fatalf("re-allocate for the same holder: %v %v", again, err)
	}
	for range 2 {
		if err := l.Release("c3/eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if a, _, err := l.Allocate("late/eth0"); err != nil || a != again {
		t.Fatalf("after release: got %v %v, want the freed %v", a, err, again)
	}
	if _, _, err := newLocalIPAM(dir, "netbed", netip.MustParsePrefix("10.244.2.0/24")).Allocate("x"); err == nil || !strings.Contains(err.Error(), "nodeCIDR") {
		t.Fatalf("changed node CIDR not refused: %v", err)
	}
}

func TestEBPFModeFake(t *testing.T) {
	ln := newFakeLinker()
	p := &plugin{hostname: func() (string, error) { return "node-1", nil }, link: ln,
		newClient: func(*NetConf) (portClient, error) { return nil, errors.New("no controller expected") }}
	conf := confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "controllerURL": nil, "network": nil, "nodeCIDR": "10.244.3.0/24", "dataDir": t.TempDir()})
	res, _, err := p.add(args(conf, "cid", ""))
	if err != nil {
		t.Fatal(err)
	}
	w := ln.links[hostIfName("lxc", "cid", "eth0")]
	if !w.Routed || len(w.Addrs) != 1 || w.Addrs[0].Bits() != 32 || !slices.Equal(w.Gateways, []netip.Addr{netip.MustParseAddr("10.244.3.1")}) {
		t.Fatalf("ebpf wiring %+v", w)
	}
	if res.IPs[0].Address.String() != w.Addrs[0].String() {
		t.Errorf("result %v vs wiring %v", res.IPs[0].Address, w.Addrs[0])
	}
	if err := p.cmdCheck(args(conf, "cid", "")); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := p.cmdDel(args(conf, "cid", "")); err != nil {
		t.Fatal(err)
	}
	if err := p.cmdStatus(args(conf, "", "")); err != nil {
		t.Errorf("STATUS: %v", err)
	}
}

func TestGCReleasesLocalAddresses(t *testing.T) {
	ln := newFakeLinker()
	p := &plugin{hostname: func() (string, error) { return "node-1", nil }, link: ln}
	dir := t.TempDir()
	conf := confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "controllerURL": nil, "network": nil, "nodeCIDR": "10.244.4.0/24", "dataDir": dir})
	for _, cid := range []string{"keep", "gone"} {
		if _, _, err := p.add(args(conf, cid, "")); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(conf, &m)
	m["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "keep", "ifname": "eth0"}}
	gc, _ := json.Marshal(m)
	if err := p.cmdGC(args(gc, "", "")); err != nil {
		t.Fatal(err)
	}
	l := newLocalIPAM(dir, "netbed", netip.MustParsePrefix("10.244.4.0/24"))
	for _, tc := range []struct {
		holder string
		held   bool
	}{{"keep/eth0", true}, {"gone/eth0", false}} {
		if _, _, ok, err := l.Lookup(tc.holder); err != nil || ok != tc.held {
			t.Errorf("after GC %s holds an address = %v (%v), want %v", tc.holder, ok, err, tc.held)
		}
	}
}

// In ebpf mode an identity registered in the controller that comes up on
// another node gets that node's address: addresses never leave a node.
func TestEBPFRegisteredIdentityMovesNodes(t *testing.T) {
	cl := newFakeClient()
	mk := func(node, cidr string) (*plugin, []byte) {
		p := &plugin{hostname: func() (string, error) { return node, nil }, link: newFakeLinker(),
			newClient: func(*NetConf) (portClient, error) { return cl, nil }}
		return p, confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "nodeCIDR": cidr, "dataDir": t.TempDir(), "keepPort": KeepAlways})
	}
	a, ca := mk("node-1", "10.244.1.0/24")
	b, cb := mk("node-2", "10.244.2.0/24")
	ra, _, err := a.add(args(ca, "c1", "NETBED_IDENTITY=db-0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmdDel(args(ca, "c1", "NETBED_IDENTITY=db-0")); err != nil {
		t.Fatal(err)
	}
	rb, _, err := b.add(args(cb, "c2", "NETBED_IDENTITY=db-0"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := netip.AddrFromSlice(rb.IPs[0].Address.IP)
	if !netip.MustParsePrefix("10.244.2.0/24").Contains(got.Unmap()) {
		t.Fatalf("on node-2 the identity got %v (node-1 gave %v)", rb.IPs[0].Address, ra.IPs[0].Address)
	}
	p := cl.ports["id:db-0"]
	if p.Host != "node-2" || !slices.Contains(p.Addrs(), got.Unmap()) {
		t.Errorf("controller port after the move: %+v", p)
	}
}

// Without a nodeCIDR, ebpf mode takes the node's block of the cluster
// pool from the controller on ADD, once per node; DEL, CHECK and GC then
// go by the block the local IPAM holds, without the controller.
func TestEBPFNodeCIDRFromController(t *testing.T) {
	cl := newFakeClient()
	mk := func(node string) (*plugin, []byte) {
		p := &plugin{hostname: func() (string, error) { return node, nil }, link: newFakeLinker(),
			newClient: func(*NetConf) (portClient, error) { return cl, nil }}
		return p, confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "network": nil, "dataDir": t.TempDir()})
	}
	a, ca := mk("node-1")
	b, cb := mk("node-2")
	for i, c := range []struct {
		p    *plugin
		conf []byte
		cid  string
		want string
	}{{a, ca, "c1", "10.244.0.0/24"}, {b, cb, "c2", "10.244.1.0/24"}, {a, ca, "c3", "10.244.0.0/24"}} {
		res, _, err := c.p.add(args(c.conf, c.cid, ""))
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
		got, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
		if !netip.MustParsePrefix(c.want).Contains(got.Unmap()) {
			t.Errorf("ADD %d on %s: %v, want an address of %s", i, c.cid, got, c.want)
		}
	}
	cl.down = true
	if err := a.cmdCheck(args(ca, "c1", "")); err != nil {
		t.Errorf("CHECK with the controller down: %v", err)
	}
	if err := a.cmdDel(args(ca, "c1", "")); err != nil {
		t.Errorf("DEL with the controller down: %v", err)
	}
	if _, _, err := b.add(args(cb, "c4", "")); err != nil {
		t.Errorf("ADD on a node that has its block, controller down: %v", err)
	}
	c, cc := mk("node-3")
	if _, _, err := c.add(args(cc, "c5", "")); err == nil || !strings.Contains(err.Error(), "pod CIDR") {
		t.Errorf("ADD on a new node with the controller down: %v", err)
	}
}
