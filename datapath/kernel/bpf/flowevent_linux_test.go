package bpf

import (
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/ebpf/kmaps"
)

// TestFlowEvent: each reason of a record becomes the rule name the model
// gives the same verdict.
func TestFlowEvent(t *testing.T) {
	rec := kmaps.FlowRecord{Src: [4]byte{10, 0, 0, 2}, Dst: [4]byte{10, 0, 1, 2}, SrcIdentity: 256, DstIdentity: 257,
		IfIndex: 9, DPort: [2]byte{0x1e, 0x61}, SPort: [2]byte{0x9c, 0x40}, Proto: 17}
	iface := func(i uint32) string {
		if i == 9 {
			return "cilium_vxlan"
		}
		return ""
	}
	names := func(a netip.Addr) string {
		if a == netip.MustParseAddr("10.0.1.2") {
			return "db"
		}
		return ""
	}
	key := gen3.NewPolicyKey(256, 257, gen3.ProtoUDP, 7777)
	egKey := gen3.NewEgressKey(256, 257, gen3.ProtoUDP, 7777)
	cases := []struct {
		verdict, reason, dir uint8
		key                  gen3.PolicyKey
		want                 FlowEvent
	}{
		{kmaps.VerdictForwarded, kmaps.ReasonPolicyAllow, kmaps.DirIngress, key, FlowEvent{Verdict: VerdictForwarded, Rule: "policy:256->257:udp/7777"}},
		{kmaps.VerdictDropped, kmaps.ReasonPolicyDeny, kmaps.DirIngress, key, FlowEvent{Verdict: VerdictDropped, Reason: datapath.ReasonPolicy, Rule: "policy:256->257:udp/7777"}},
		{kmaps.VerdictDropped, kmaps.ReasonDefaultDeny, kmaps.DirIngress, gen3.PolicyKey{}, FlowEvent{Verdict: VerdictDropped, Reason: datapath.ReasonPolicy, Rule: gen3.DefaultDenyRule(256, 257)}},
		{kmaps.VerdictForwarded, kmaps.ReasonCTReply, kmaps.DirIngress, gen3.PolicyKey{}, FlowEvent{Verdict: VerdictForwarded, Rule: "ct:reply"}},
		{kmaps.VerdictForwarded, kmaps.ReasonNotEnforced, kmaps.DirIngress, gen3.PolicyKey{}, FlowEvent{Verdict: VerdictForwarded, Rule: "endpoint:10.0.1.2"}},
		// Egress: the source's policy, named as the model names it.
		{kmaps.VerdictForwarded, kmaps.ReasonPolicyAllow, kmaps.DirEgress, egKey, FlowEvent{Verdict: VerdictForwarded, Rule: "policy:egress:256->257:udp/7777"}},
		{kmaps.VerdictDropped, kmaps.ReasonPolicyDeny, kmaps.DirEgress, egKey, FlowEvent{Verdict: VerdictDropped, Reason: datapath.ReasonPolicy, Rule: gen3.RuleName(egKey)}},
		{kmaps.VerdictDropped, kmaps.ReasonDefaultDeny, kmaps.DirEgress, gen3.PolicyKey{}, FlowEvent{Verdict: VerdictDropped, Reason: datapath.ReasonPolicy, Rule: gen3.EgressDefaultDenyRule(256, 257)}},
		{kmaps.VerdictForwarded, kmaps.ReasonCTReply, kmaps.DirEgress, gen3.PolicyKey{}, FlowEvent{Verdict: VerdictForwarded, Rule: "ct:reply"}},
	}
	for _, c := range cases {
		r := rec
		r.Verdict, r.Reason, r.Key, r.Direction = c.verdict, c.reason, c.key, c.dir
		got := flowEvent("host2", r, netip.AddrFrom4(r.Src), netip.AddrFrom4(r.Dst), iface, names)
		want := c.want
		want.Direction = DirIngress
		if c.dir == kmaps.DirEgress {
			want.Direction = DirEgress
		}
		want.Node, want.Iface, want.Src, want.Dst = "host2", "cilium_vxlan", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.2")
		want.SrcIdentity, want.DstIdentity, want.DstName, want.Proto, want.DPort, want.SPort = 256, 257, "db", gen3.ProtoUDP, 7777, 40000
		if got != want {
			t.Errorf("reason %d direction %d:\n got %+v\nwant %+v", c.reason, c.dir, got, want)
		}
	}
}

// TestLastDrop: a drop verdict is found by its flow and node, the latest
// of several, and a forwarded verdict or one past MaxFlows is not.
func TestLastDrop(t *testing.T) {
	f := New(Options{MaxFlows: 4})
	a, b := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.2")
	ev := func(node, verdict, rule string, dport uint16) FlowEvent {
		return FlowEvent{Node: node, Src: a, Dst: b, Proto: gen3.ProtoTCP, DPort: dport, Verdict: verdict, Rule: rule}
	}
	f.record(ev("h2", VerdictDropped, "policy:old", 80))
	f.record(ev("h2", VerdictForwarded, "policy:allow", 80))
	f.record(ev("h2", VerdictDropped, "policy:new", 80))
	f.record(ev("h1", VerdictDropped, "policy:egress:h1", 80))
	f.record(ev("h2", VerdictDropped, "policy:lost", 80)) // past MaxFlows
	k := DropKey{Node: "h2", Proto: gen3.ProtoTCP, Src: a, Dst: b, DPort: 80}
	if e, ok := f.LastDrop(k); !ok || e.Rule != "policy:new" {
		t.Errorf("LastDrop(%v) = %v, %v; want the latest kept drop, policy:new", k, e.Rule, ok)
	}
	if e, ok := f.LastDrop(DropKey{Node: "h1", Proto: gen3.ProtoTCP, Src: a, Dst: b, DPort: 80}); !ok || e.Rule != "policy:egress:h1" {
		t.Errorf("on h1: %v, %v; want policy:egress:h1", e.Rule, ok)
	}
	k.DPort = 443
	if e, ok := f.LastDrop(k); ok {
		t.Errorf("LastDrop(%v) = %v; want none for another port", k, e)
	}
	if f.LostFlows() != 1 {
		t.Errorf("lost %d, want 1", f.LostFlows())
	}
}
