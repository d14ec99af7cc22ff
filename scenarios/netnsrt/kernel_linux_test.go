package netnsrt

import (
	"reflect"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/outcome"
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
	o := outcome.Derive(kernelLineage(evs, insts, peerOf, kind), "a", nil)
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
	o = outcome.Derive(kernelLineage(dropped, insts, peerOf, kind), "a", nil)
	if o.Delivered || o.DropNode != "h2" || o.DropDevice != "p1" || o.Reason != "netfilter-drop" || o.Rule != "kernel:NETFILTER_DROP" {
		t.Errorf("drop: delivered %v at %s/%s %s %s", o.Delivered, o.DropNode, o.DropDevice, o.Reason, o.Rule)
	}
	if got := o.Forward.Devices(); !reflect.DeepEqual(got, want[:6]) {
		t.Errorf("path to the drop %v, want %v", got, want[:6])
	}
}
