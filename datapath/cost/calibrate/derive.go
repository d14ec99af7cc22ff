package calibrate

import (
	"fmt"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/netbed/netbed/datapath/cost"
)

// Method is the calibration's method, recorded in the table.
const Method = "ICMP echo round trips from namespace a to namespace b through paths built for the purpose, " +
	"answered by b's kernel, each timed from just before the send to the kernel's receive timestamp of the " +
	"reply (SO_TIMESTAMPNS), so that no process wakeup is part of it; each path's figure is the median of " +
	"its samples, taken in interleaved rounds. Per direction (half a round trip): direct = a-b over one veth pair; redirect = " +
	"a-m-b with a tc BPF program on each of m's ingresses redirecting to the other veth; bpfK = redirect " +
	"plus K programs (a hash-map lookup each) before it, the slope over K being one program; bridge = a " +
	"Linux bridge in m; routed = m routes, iptN = m's FORWARD chain holds N rules that no packet matches " +
	"(iptables-restore, nft backend), the slope over N being one rule and the intercept less routed the " +
	"chain; vxlan = two bridges joined by VXLAN devices over an underlay veth, vxlan-base = the same bridges " +
	"joined by the underlay veth itself; ovs = Open vSwitch userspace datapath (datapath_type=netdev) bridge " +
	"in m, ovs-patch = two such bridges joined by a patch pair, ovs-bond = one bridge whose b side is an " +
	"active-backup bond of two veths that b bridges. Then: veth pair = redirect - direct - bpf; veth = half " +
	"a pair; instance = (direct - veth pair) / 2 (one kernel stack's send or receive); linux-bridge = bridge - redirect + bpf; vxlan encap = decap = (vxlan - vxlan-base) / 2; " +
	"ovs-bridge = ovs - redirect + bpf; ovs-patch = (ovs-patch - ovs) / 2; bond = ovs-bond - ovs - " +
	"linux-bridge. A difference below zero (noise) is recorded as 0."

// medians are the per-path median round trips.
type medians map[string]time.Duration

// derive turns the paths' median round trips into the table, halving
// round trips into one direction. Figures of OVS paths not measured come
// from prev.
func derive(m medians, samples int, prev *cost.Table) (*cost.Table, error) {
	for _, k := range []string{"direct", "redirect", "bpf8", "bpf16", "bpf32", "bridge", "routed",
		"ipt0", "ipt250", "ipt500", "ipt1000", "vxlan-base", "vxlan"} {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("derive calibration: no measurement of path %q", k)
		}
	}
	one := func(k string) float64 { return float64(m[k]) / 2 }
	t := &cost.Table{Method: Method, Figures: map[cost.Class]cost.Figure{}}
	set := func(c cost.Class, ns float64, how string) {
		f := cost.Figure{Cost: time.Duration(max(ns, 0)), Measured: true, Samples: samples, Method: how}
		if ns < 0 {
			f.Method += fmt.Sprintf(" (measured %.0f ns: below the noise, recorded as 0)", ns)
		}
		t.Figures[c] = f
	}
	bpfSlope := slope([]float64{0, 8, 16, 32}, []float64{one("redirect"), one("bpf8"), one("bpf16"), one("bpf32")})
	bpf := bpfSlope
	pair := one("redirect") - one("direct") - bpf
	set(cost.BPF, bpf, "slope of the redirect path's one-way time over 0, 8, 16, 32 extra tc programs (TCX ingress, one hash-map lookup each)")
	set(cost.Veth, pair/2, "half of (redirect - direct - bpf): one end of a veth pair")
	set(cost.Instance, (one("direct")-pair)/2, "(direct - veth pair) / 2: one kernel stack sending or receiving (ICMP echo)")
	set(cost.LinuxBridge, one("bridge")-one("redirect")+bpf, "bridge - redirect + bpf: a frame through the kernel's bridge")
	rule, icpt := slopeIntercept([]float64{0, 250, 500, 1000}, []float64{one("ipt0"), one("ipt250"), one("ipt500"), one("ipt1000")})
	set(cost.IptablesRule, rule, "slope of the routed path's one-way time over 0, 250, 500, 1000 non-matching FORWARD rules (iptables-nft)")
	set(cost.IptablesChain, icpt-one("routed"), "intercept of that fit less the routed path without iptables: entering the filter chain")
	vx := one("vxlan") - one("vxlan-base")
	set(cost.VXLANEncap, vx/2, "half of (vxlan - vxlan-base): the kernel's VXLAN device encapsulating")
	set(cost.VXLANDecap, vx/2, "half of (vxlan - vxlan-base): the kernel's VXLAN device decapsulating")
	veth := t.Figures[cost.Veth]
	t.Figures[cost.Tap] = cost.Figure{Cost: veth.Cost, Measured: true, Samples: samples,
		Method: "no VM runs here: a tap is costed as a veth end (the kernel's per-device transmit and receive)"}
	t.Figures[cost.NIC] = cost.Figure{Cost: veth.Cost, Measured: true, Samples: samples,
		Method: "no physical NIC here: a host NIC is costed as a veth end (the kernel's per-device transmit and receive); the wire's time is the link's"}
	if _, ok := m["ovs"]; ok {
		set(cost.OVSBridge, one("ovs")-one("redirect")+bpf, "ovs - redirect + bpf: a frame in and out of an Open vSwitch userspace-datapath bridge (datapath_type=netdev)")
		set(cost.OVSPatch, (one("ovs-patch")-one("ovs"))/2, "(ovs-patch - ovs) / 2: one end of a patch pair, the second bridge's pass included")
		set(cost.Bond, one("ovs-bond")-one("ovs")-float64(t.Figures[cost.LinuxBridge].Cost), "ovs-bond - ovs - linux-bridge: an active-backup OVS bond")
	} else {
		for _, c := range []cost.Class{cost.OVSBridge, cost.OVSPatch, cost.Bond} {
			t.Figures[c] = prev.Figures[c]
		}
	}
	for c, f := range documented {
		t.Figures[c] = f
	}
	return t, nil
}

func slope(x, y []float64) float64 {
	b, _ := slopeIntercept(x, y)
	return b
}

// slopeIntercept fits y = a + b·x by least squares.
func slopeIntercept(x, y []float64) (b, a float64) {
	a, b = stat.LinearRegression(x, y, nil, false)
	return b, a
}
