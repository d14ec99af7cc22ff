package bpf

import (
	"fmt"
	"net/netip"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/ebpf/kmaps"
)

// flowEvent turns a record of either family (its addresses src and dst:
// kmaps.ParseFlow) into an event; iface and names resolve ifindexes and
// addresses.
func flowEvent(node string, r kmaps.FlowRecord, src, dst netip.Addr, iface func(uint32) string, names func(netip.Addr) string) FlowEvent {
	e := FlowEvent{Node: node, Iface: iface(r.IfIndex), Src: src, Dst: dst,
		SrcIdentity: gen3.Identity(r.SrcIdentity), DstIdentity: gen3.Identity(r.DstIdentity),
		SrcName: names(src), DstName: names(dst), Proto: gen3.Proto(r.Proto),
		DPort: uint16(r.DPort[0])<<8 | uint16(r.DPort[1]), SPort: uint16(r.SPort[0])<<8 | uint16(r.SPort[1]), Verdict: VerdictForwarded,
		Direction: DirIngress, Nanos: r.Nanos}
	if r.Direction == kmaps.DirEgress {
		e.Direction = DirEgress
	}
	if r.Verdict == kmaps.VerdictDropped {
		e.Verdict, e.Reason = VerdictDropped, datapath.ReasonPolicy
	}
	switch r.Reason {
	case kmaps.ReasonCTReply:
		e.Rule = "ct:reply"
	case kmaps.ReasonPolicyAllow, kmaps.ReasonPolicyDeny:
		e.Rule = gen3.RuleName(r.Key)
	case kmaps.ReasonDefaultDeny:
		e.Rule = gen3.DefaultDenyRule(e.SrcIdentity, e.DstIdentity)
		if e.Direction == DirEgress {
			e.Rule = gen3.EgressDefaultDenyRule(e.SrcIdentity, e.DstIdentity)
		}
	case kmaps.ReasonNotEnforced:
		e.Rule = "endpoint:" + dst.String()
	default:
		e.Rule = fmt.Sprintf("reason(%d)", r.Reason)
	}
	return e
}
