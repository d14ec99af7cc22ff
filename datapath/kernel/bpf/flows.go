package bpf

import (
	"fmt"
	"net/netip"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

// Verdicts of a FlowEvent, as Hubble shows them.
const (
	VerdictForwarded = "FORWARDED"
	VerdictDropped   = "DROPPED"
)

// Directions of a FlowEvent, as Hubble's traffic direction.
const (
	DirIngress = "INGRESS"
	DirEgress  = "EGRESS"
)

// FlowEvent is one policy verdict a node's BPF program wrote to its ring
// buffer, as Hubble lists flows.
type FlowEvent struct {
	Node  string // the host whose program decided
	Iface string // the device it ran on: a pod's lxc, cilium_vxlan or a NIC
	Src   netip.Addr
	Dst   netip.Addr
	// SrcIdentity and DstIdentity are the security identities the
	// program used (the ipcache's, world when absent; the endpoint's).
	SrcIdentity, DstIdentity gen3.Identity
	// SrcName and DstName are the pods at those addresses when the
	// fabric knew them at the last Plug or Sync, else "".
	SrcName, DstName string
	Proto            gen3.Proto
	DPort            uint16 // 0 for ICMP
	// SPort is the source port; for ICMP echo, the echo ID (what tells
	// one probe's packets from another's).
	SPort   uint16
	Verdict string // VerdictForwarded or VerdictDropped
	// Direction is DirIngress (the destination's policy, on its node)
	// or DirEgress (the source's, on its node as the packet leaves it).
	Direction string
	// Reason is datapath.ReasonPolicy for a drop, "" otherwise.
	Reason datapath.Reason
	// Rule names what decided, as the model's verdicts do: "ct:reply",
	// "policy:<src>-><dst>:<proto>/<port>" (an entry),
	// "policy:<src>-><dst>:default-deny", or "endpoint:<ip>" (the
	// destination does not enforce policy); an egress verdict's entries
	// and default deny are "policy:egress:…", as ebpf.RuleName and
	// ebpf.EgressDefaultDenyRule name them.
	Rule  string
	Nanos uint64 // the kernel's monotonic clock
}

func (e FlowEvent) String() string {
	name := func(a netip.Addr, n string, id gen3.Identity) string {
		if n != "" {
			return fmt.Sprintf("%s(%s,id %d)", a, n, id)
		}
		return fmt.Sprintf("%s(id %d)", a, id)
	}
	return fmt.Sprintf("%s %s: %s:%d -> %s %s/%d %s %s %s", e.Node, e.Iface, name(e.Src, e.SrcName, e.SrcIdentity), e.SPort,
		name(e.Dst, e.DstName, e.DstIdentity), e.Proto, e.DPort, e.Direction, e.Verdict, e.Rule)
}

// DropKey names the flow a drop verdict was for, on the node whose
// program decided: what a probe's drop, seen by the kernel, is looked up
// by. DPort is 0 for ICMP, as in FlowEvent.
type DropKey struct {
	Node     string
	Proto    gen3.Proto
	Src, Dst netip.Addr
	DPort    uint16
}

// DropKey is e's key (meaningful for a dropped event).
func (e FlowEvent) DropKey() DropKey {
	return DropKey{Node: e.Node, Proto: e.Proto, Src: e.Src, Dst: e.Dst, DPort: e.DPort}
}
