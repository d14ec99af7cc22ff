package netnsrt

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/bpf"
	"github.com/netbed/netbed/datapath/kernel/ktrace"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/topologies"
)

// A kernel probe's path follows the packet link by link and node by node
// through what the tracepoints saw: a flood copy sent elsewhere stays off
// it, a VXLAN device's receive continues the NIC's, the answer is its
// return path, and a drop carries the kernel's reason.
func TestKernelLineage(t *testing.T) {
	links := map[[2]string][2]string{
		{"a", "eth0"}: {"h1", "p1"}, {"h1", "p1"}: {"a", "eth0"},
		{"h1", "up"}: {"leaf", "e1"}, {"leaf", "e1"}: {"h1", "up"},
		{"leaf", "e2"}: {"h2", "up"}, {"h2", "up"}: {"leaf", "e2"},
		{"leaf", "e3"}: {"h3", "up"}, {"h3", "up"}: {"leaf", "e3"},
		{"h2", "p1"}: {"b", "eth0"}, {"b", "eth0"}: {"h2", "p1"},
	}
	peerOf := func(n, i string) (string, string, bool) {
		p, ok := links[[2]string{n, i}]
		return p[0], p[1], ok
	}
	kind := func(n string) datapath.DeviceKind {
		if n == "leaf" {
			return datapath.KindSwitch
		}
		return datapath.KindNIC
	}
	insts := map[string]bool{"a": true, "b": true}
	ev := func(us uint64, node, iface string, out bool) kernel.Event {
		return kernel.Event{Nanos: us * 1000, Node: node, Iface: iface, Out: out}
	}
	request := []kernel.Event{
		ev(0, "a", "eth0", true),
		ev(1, "h1", "p1", false),
		ev(2, "h1", "up", true),
		ev(3, "leaf", "e1", false),
		ev(4, "leaf", "e3", true), // a flood copy towards h3
		ev(5, "leaf", "e2", true),
		ev(6, "h3", "up", false),
		ev(7, "h2", "up", false),
		ev(8, "h2", "vxlan0", false), // decapsulated: no link
		ev(9, "h2", "p1", true),
		ev(10, "b", "eth0", false),
	}
	answer := []kernel.Event{
		ev(20, "b", "eth0", true),
		ev(21, "h2", "p1", false),
		ev(22, "h2", "up", true),
		ev(23, "leaf", "e2", false),
		ev(24, "leaf", "e1", true),
		ev(25, "h1", "up", false),
		ev(26, "h1", "p1", true),
		ev(27, "a", "eth0", false),
	}
	evs := append(append([]kernel.Event{}, request...), answer...)
	o := outcome.Derive(kernelLineage(evs, insts, nil, peerOf, kind, nil), "a", nil)
	want := []string{"a/eth0", "h1/p1", "h1/up", "leaf/e1", "leaf/e2", "h2/up", "h2/vxlan0", "h2/p1", "b/eth0"}
	if got := o.Forward.Devices(); !reflect.DeepEqual(got, want) {
		t.Fatalf("forward %v, want %v", got, want)
	}
	if !o.Delivered || !o.Replied || o.To != "b" {
		t.Fatalf("delivered %v replied %v to %q, want to b and answered", o.Delivered, o.Replied, o.To)
	}
	if o.Forward.Hops() != 8 || o.Forward.SwitchHops() != 1 || o.OneWay != 10*time.Microsecond || o.RTT != 27*time.Microsecond {
		t.Errorf("hops %d, switch hops %d, one way %v, RTT %v; want 8, 1, 10µs, 27µs", o.Forward.Hops(), o.Forward.SwitchHops(), o.OneWay, o.RTT)
	}
	if got := o.Return.Devices(); len(got) != len(answer) || got[0] != "b/eth0" || got[len(got)-1] != "a/eth0" {
		t.Errorf("return %v", got)
	}
	// Dropped by a firewall rule on h2: the kernel's reason, after the
	// last device the packet crossed.
	dropped := append(append([]kernel.Event{}, request[:8]...),
		kernel.Event{Nanos: 8500, Node: "h2", Iface: "p1", Drop: &kernel.Drop{Node: "h2", Iface: "p1", Reason: "NETFILTER_DROP"}})
	o = outcome.Derive(kernelLineage(dropped, insts, nil, peerOf, kind, nil), "a", nil)
	if o.Delivered || o.DropNode != "h2" || o.DropDevice != "p1" || o.Reason != "netfilter-drop" || o.Rule != "kernel:NETFILTER_DROP" {
		t.Errorf("drop: delivered %v at %s/%s %s %s", o.Delivered, o.DropNode, o.DropDevice, o.Reason, o.Rule)
	}
	if got := o.Forward.Devices(); !reflect.DeepEqual(got, want[:6]) {
		t.Errorf("path to the drop %v, want %v", got, want[:6])
	}
	// The leaf failed silently: its drop (FailSilently's, at its link's
	// ingress) is node-down there, as on sim and netns; the rule keeps
	// the kernel's reason. Another node's drop keeps its own.
	silenced := append(append([]kernel.Event{}, request[:4]...),
		kernel.Event{Nanos: 3500, Node: "leaf", Iface: "e1", Drop: &kernel.Drop{Node: "leaf", Iface: "e1", Reason: "TC_INGRESS"}})
	o = outcome.Derive(kernelLineage(silenced, insts, map[string]bool{"leaf": true}, peerOf, kind, nil), "a", nil)
	if o.Delivered || o.DropNode != "leaf" || o.DropDevice != "e1" || o.Reason != datapath.ReasonNodeDown || o.Rule != "kernel:TC_INGRESS" {
		t.Errorf("hung leaf: delivered %v at %s/%s %s %s; want node-down at leaf/e1 by kernel:TC_INGRESS", o.Delivered, o.DropNode, o.DropDevice, o.Reason, o.Rule)
	}
	// h2 hangs and the leaf's ARP towards it failed: the packet it held
	// is lost at h2, node-down, as the models have it.
	unresolved := append(append([]kernel.Event{}, request[:4]...),
		kernel.Event{Nanos: 3500, Node: "leaf", Iface: "e2", Drop: &kernel.Drop{Node: "leaf", Iface: "e2", Reason: "NEIGH_FAILED"}})
	o = outcome.Derive(kernelLineage(unresolved, insts, map[string]bool{"h2": true}, peerOf, kind, nil), "a", nil)
	if o.Delivered || o.DropNode != "h2" || o.DropDevice != "up" || o.Reason != datapath.ReasonNodeDown || o.Rule != "kernel:NEIGH_FAILED" {
		t.Errorf("ARP towards hung h2: delivered %v at %s/%s %s %s; want node-down at h2/up by kernel:NEIGH_FAILED", o.Delivered, o.DropNode, o.DropDevice, o.Reason, o.Rule)
	}
	o = outcome.Derive(kernelLineage(unresolved, insts, nil, peerOf, kind, nil), "a", nil)
	if o.DropNode != "leaf" || o.Reason != "neigh-failed" {
		t.Errorf("ARP towards h2, up: at %s %s, want leaf neigh-failed", o.DropNode, o.Reason)
	}
	o = outcome.Derive(kernelLineage(dropped, insts, map[string]bool{"leaf": true}, peerOf, kind, nil), "a", nil)
	if o.DropNode != "h2" || o.Reason != "netfilter-drop" {
		t.Errorf("drop on h2 with the leaf hung: at %s %s, want h2 netfilter-drop", o.DropNode, o.Reason)
	}
}

// The kernel's sightings become devices as datapath.HopRule counts them:
// a switch once per visit, and a host's devices from its datapath's own
// view where the kernel cannot see them (gen 1's OVS bridges).
func TestDevicePath(t *testing.T) {
	at := func(us int) time.Duration { return time.Duration(us) * time.Microsecond }
	e := func(us int, node, dev string, k datapath.DeviceKind) datapath.Event {
		return datapath.Event{Time: at(us), Node: node, Device: dev, Kind: k}
	}
	obs := datapath.Path{
		e(0, "a", "eth0", datapath.KindNIC),
		e(1, "h1", "tap-a", datapath.KindNIC),
		e(9, "h1", "eth1", datapath.KindNIC),
		e(10, "tor1", "eth1", datapath.KindSwitch),
		e(11, "tor1", "eth3", datapath.KindSwitch),
		e(12, "core1", "eth1", datapath.KindSwitch),
		e(13, "core1", "gw", datapath.KindSwitch),
		e(20, "core1", "eth1", datapath.KindSwitch),
		e(21, "tor1", "eth3", datapath.KindSwitch),
		e(22, "tor1", "eth2", datapath.KindSwitch),
		e(23, "h2", "eth1", datapath.KindNIC),
		e(30, "h2", "tap-b", datapath.KindNIC),
		e(31, "b", "eth0", datapath.KindNIC),
	}
	view := datapath.Path{
		{Node: "a", Device: "eth0"},
		{Node: "h1", Device: "tap-a"}, {Node: "h1", Device: "br-int"}, {Node: "h1", Device: "br-bond"}, {Node: "h1", Device: "eth1"},
		{Node: "tor1"}, {Node: "core1"}, {Node: "tor1"},
		{Node: "h2", Device: "eth1"}, {Node: "h2", Device: "br-bond"}, {Node: "h2", Device: "br-int"}, {Node: "h2", Device: "tap-b"},
		{Node: "b", Device: "eth0"},
	}
	isHost := func(n string) bool { return n == "h1" || n == "h2" }
	got := devicePath(obs, view, isHost)
	want := []string{"a/eth0", "h1/tap-a", "h1/br-int", "h1/br-bond", "h1/eth1", "tor1", "core1", "tor1",
		"h2/eth1", "h2/br-bond", "h2/br-int", "h2/tap-b", "b/eth0"}
	if !reflect.DeepEqual(got.Devices(), want) {
		t.Fatalf("devices %v, want %v", got.Devices(), want)
	}
	if offs := got.Offsets(); offs[1] != at(1) || offs[4] != at(9) || offs[6] != at(12) || offs[11] != at(30) {
		t.Errorf("offsets %v: a host's first device at its first sighting, its last at its last", offs)
	}
	// Without a view (gen 3: the kernel sees every device), the hosts'
	// sightings stay as they are.
	if got := devicePath(obs, nil, isHost).Devices(); len(got) != 9 || got[2] != "h1/eth1" || got[3] != "tor1" {
		t.Errorf("without a view: %v", got)
	}
}

// mtuFabric is a kernel fabric that only has a pod MTU, for podConf.
type mtuFabric struct {
	kernel.Fabric
	mtu int
}

func (m mtuFabric) PodMTU() int { return m.mtu }

// TestPodConfMTU: on the kernel backend a fabric's pod MTU is written
// into the pod's CNI configuration unless it names one; netns and a
// fabric without one leave it as it is. (The real gen 3 fabric's 1450 is
// checked in datapath/kernel/bpf's TestKernelFabricTunnel.)
func TestPodConfMTU(t *testing.T) {
	conf := []byte(`{"cniVersion":"1.1.0","name":"pods","type":"netbed-cni","controllerURL":"unix:///x"}`)
	for _, c := range []struct {
		name string
		k    *kernelFabric
		conf []byte
		want any
	}{
		{"netns, no pod MTU", nil, conf, nil},
		{"no pod MTU", &kernelFabric{f: mtuFabric{}}, conf, nil},
		{"tunnel", &kernelFabric{f: mtuFabric{mtu: 1450}}, conf, 1450.0},
		{"named by the configuration", &kernelFabric{f: mtuFabric{mtu: 1450}}, []byte(`{"type":"netbed-cni","mtu":9000}`), 9000.0},
	} {
		r := &Runtime{k: c.k}
		got, err := r.podConf(c.conf)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatalf("%s: %s: %v", c.name, got, err)
		}
		if m["mtu"] != c.want || m["type"] != "netbed-cni" {
			t.Errorf("%s: %s, want mtu %v", c.name, got, c.want)
		}
	}
	// On netns the model's own: gen 3's tunnel encapsulates on the host.
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	for mode, want := range map[ebpf.Mode]any{ebpf.Tunnel: 1450.0, ebpf.Direct: nil} {
		f, err := ebpf.New(topo, ebpf.Options{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&Runtime{model: f}).podConf(conf)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil || m["mtu"] != want {
			t.Errorf("netns %s: %s (%v), want mtu %v", f.Generation(), got, err, want)
		}
	}
	if _, err := (&Runtime{k: &kernelFabric{f: mtuFabric{mtu: 1450}}}).podConf([]byte("{")); err == nil {
		t.Error("a malformed configuration passed")
	}
}

// A frame for a MAC nobody owns any more (core-failure's gateway, after
// the core failed) is flooded by every OVS switch and dies inside the
// vswitches, where the kernel cannot see it. What the kernel does see is
// its own stack refusing each copy on every port a vswitch reads from
// (OTHERHOST): on the source's tap (or stock OpenStack's qvo) too, where
// the frame went on into OVS. Such a refusal, on a node that sent the
// frame on, is not where the probe was lost: the drop is named where a
// copy went no further.
func TestKernelLineageStackCopies(t *testing.T) {
	links := map[[2]string][2]string{
		{"a", "eth0"}: {"h1", "tap-a"}, {"h1", "tap-a"}: {"a", "eth0"},
		{"h1", "eth1"}: {"tor", "e1"}, {"tor", "e1"}: {"h1", "eth1"},
		{"tor", "e2"}: {"h2", "eth1"}, {"h2", "eth1"}: {"tor", "e2"},
		{"tor", "e3"}: {"agg", "e1"}, {"agg", "e1"}: {"tor", "e3"},
	}
	peerOf := func(n, i string) (string, string, bool) {
		p, ok := links[[2]string{n, i}]
		return p[0], p[1], ok
	}
	kind := func(n string) datapath.DeviceKind {
		if n == "tor" || n == "agg" {
			return datapath.KindSwitch
		}
		return datapath.KindNIC
	}
	insts := map[string]bool{"a": true}
	ev := func(us uint64, node, iface string, out bool) kernel.Event {
		return kernel.Event{Nanos: us * 1000, Node: node, Iface: iface, Out: out}
	}
	otherhost := func(us uint64, node, iface string) kernel.Event {
		return kernel.Event{Nanos: us * 1000, Node: node, Iface: iface, Drop: &kernel.Drop{Node: node, Iface: iface, Reason: "OTHERHOST"}}
	}
	flood := []kernel.Event{
		ev(0, "a", "eth0", true),
		ev(1, "h1", "tap-a", false),
		otherhost(2, "h1", "tap-a"), // the host's stack; OVS takes the frame on
		ev(3, "h1", "eth1", true),
		ev(4, "tor", "e1", false),
		otherhost(5, "tor", "e1"),
		ev(6, "tor", "e2", true), // flooded to h2, which has no port on the VLAN
		ev(7, "h2", "eth1", false),
		otherhost(8, "h2", "eth1"),
		ev(9, "tor", "e3", true),
		ev(10, "agg", "e1", false),
		otherhost(11, "agg", "e1"),
	}
	o := outcome.Derive(kernelLineage(flood, insts, nil, peerOf, kind, nil), "a", nil)
	if o.Delivered || o.DropNode != "h2" || o.DropDevice != "eth1" || o.Reason != datapath.ReasonNotForMe {
		t.Errorf("flooded frame: delivered %v, dropped at %s/%s (%s); want not delivered, dropped at h2/eth1, the nearest copy that went no further",
			o.Delivered, o.DropNode, o.DropDevice, o.Reason)
	}
	if got, want := o.Forward.Devices(), []string{"a/eth0", "h1/tap-a", "h1/eth1", "tor/e1", "tor/e2", "h2/eth1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("path to the drop %v, want %v", got, want)
	}
	// A frame OVS dropped on the source's host: the kernel saw only the
	// stack's refusal on the tap, which is then where it was lost.
	o = outcome.Derive(kernelLineage(flood[:3], insts, nil, peerOf, kind, nil), "a", nil)
	if o.DropNode != "h1" || o.DropDevice != "tap-a" || o.Reason != datapath.ReasonNotForMe {
		t.Errorf("frame lost in the source's host: dropped at %s/%s (%s), want h1/tap-a not-for-me", o.DropNode, o.DropDevice, o.Reason)
	}
}

// explainDrop looks the program's verdict up by the probe's flow and the
// node the kernel saw drop it: an ICMP probe's echo sequence number is no
// port, a TCP probe's destination port is.
func TestExplainDrop(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.2")
	verdicts := map[bpf.DropKey]bpf.FlowEvent{
		{Node: "h2", Proto: ebpf.ProtoICMP, Src: a, Dst: b}:           {Reason: datapath.ReasonPolicy, Rule: "policy:icmp"},
		{Node: "h2", Proto: ebpf.ProtoTCP, Src: a, Dst: b, DPort: 80}: {Reason: datapath.ReasonPolicy, Rule: "policy:tcp/80"},
	}
	lookup := func(k bpf.DropKey) (bpf.FlowEvent, bool) { e, ok := verdicts[k]; return e, ok }
	for _, c := range []struct {
		node string
		key  ktrace.Key
		rule string
	}{
		{"h2", ktrace.ICMPEcho(a, b, 7, 9), "policy:icmp"},
		{"h2", ktrace.Flow(ktrace.ProtoTCP, a, 40000, b, 80), "policy:tcp/80"},
		{"h2", ktrace.Flow(ktrace.ProtoTCP, a, 40000, b, 443), "kernel:TC_EGRESS"},
		{"h1", ktrace.ICMPEcho(a, b, 7, 9), "kernel:TC_EGRESS"},
	} {
		o := outcome.Outcome{DropNode: c.node, Reason: "tc-egress", Rule: "kernel:TC_EGRESS"}
		explainDrop(&o, lookup, c.key)
		if o.Rule != c.rule {
			t.Errorf("%v dropped on %s: rule %q, want %q", c.key, c.node, o.Rule, c.rule)
		}
	}
}

// TestKernelLineagePrograms: on a host whose devices hand packets on with
// tc programs (gen 3), the program a receive ran through is a device of
// the path, as the models trace bpf_lxc and bpf_overlay; the tunnel
// device the source host sent on is one too (its transmit continues as
// the encapsulated packet on the NIC); a drop continues the receive.
func TestKernelLineagePrograms(t *testing.T) {
	links := map[[2]string][2]string{
		{"a", "eth0"}: {"h1", "lxc1"}, {"h1", "lxc1"}: {"a", "eth0"},
		{"h1", "up"}: {"leaf", "e1"}, {"leaf", "e1"}: {"h1", "up"},
		{"leaf", "e2"}: {"h2", "up"}, {"h2", "up"}: {"leaf", "e2"},
		{"h2", "lxc2"}: {"b", "eth0"}, {"b", "eth0"}: {"h2", "lxc2"},
	}
	peerOf := func(n, i string) (string, string, bool) {
		p, ok := links[[2]string{n, i}]
		return p[0], p[1], ok
	}
	kind := func(n string) datapath.DeviceKind {
		if n == "leaf" {
			return datapath.KindSwitch
		}
		return datapath.KindNIC
	}
	progs := map[string]string{"lxc1": "bpf_lxc", "lxc2": "bpf_lxc", "cilium_vxlan": "bpf_overlay"}
	prog := func(_, iface string) string { return progs[iface] }
	insts := map[string]bool{"a": true, "b": true}
	ev := func(us uint64, node, iface string, out bool) kernel.Event {
		return kernel.Event{Nanos: us * 1000, Node: node, Iface: iface, Out: out}
	}
	evs := []kernel.Event{
		ev(0, "a", "eth0", true),
		ev(1, "h1", "lxc1", false),
		ev(2, "h1", "cilium_vxlan", true), // bpf_lxc's redirect
		ev(3, "h1", "up", true),           // the encapsulated packet
		ev(4, "leaf", "e1", false),
		ev(5, "leaf", "e2", true),
		ev(6, "h2", "up", false),
		ev(7, "h2", "cilium_vxlan", false), // decapsulated
		ev(8, "h2", "lxc2", true),          // bpf_overlay's redirect
		ev(9, "b", "eth0", false),
	}
	o := outcome.Derive(kernelLineage(evs, insts, nil, peerOf, kind, prog), "a", nil)
	want := []string{"a/eth0", "h1/lxc1", "h1/bpf_lxc", "h1/cilium_vxlan", "h1/up", "leaf/e1", "leaf/e2",
		"h2/up", "h2/cilium_vxlan", "h2/bpf_overlay", "h2/lxc2", "b/eth0"}
	if got := o.Forward.Devices(); !reflect.DeepEqual(got, want) {
		t.Fatalf("forward %v, want %v", got, want)
	}
	if !o.Delivered {
		t.Fatal("not delivered")
	}
	// Without a program reporter, the tunnel device still is on the path.
	o = outcome.Derive(kernelLineage(evs, insts, nil, peerOf, kind, nil), "a", nil)
	if got := o.Forward.Devices(); !reflect.DeepEqual(got, []string{"a/eth0", "h1/lxc1", "h1/cilium_vxlan", "h1/up", "leaf/e1", "leaf/e2",
		"h2/up", "h2/cilium_vxlan", "h2/lxc2", "b/eth0"}) {
		t.Errorf("forward without programs %v", got)
	}
	// bpf_lxc drops it (policy): the drop comes after lxc1's receive.
	dropped := append(append([]kernel.Event{}, evs[:2]...),
		kernel.Event{Nanos: 1500, Node: "h1", Iface: "lxc1", Drop: &kernel.Drop{Node: "h1", Iface: "lxc1", Reason: "TC_INGRESS"}})
	o = outcome.Derive(kernelLineage(dropped, insts, nil, peerOf, kind, prog), "a", nil)
	if got := o.Forward.Devices(); o.Delivered || o.DropNode != "h1" || !reflect.DeepEqual(got, []string{"a/eth0", "h1/lxc1"}) {
		t.Errorf("drop: delivered %v at %s, path %v", o.Delivered, o.DropNode, got)
	}
}
