package kmaps

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// tc verdicts.
const (
	TCActUnspec = -1 // go on with the next filter
	TCActOK     = 0
	TCActShot   = 2
)

// __sk_buff offsets of data and data_end.
const (
	skbData    = 76
	skbDataEnd = 80
)

// Stack slots of the policy program (offsets from the frame pointer).
const (
	fpIPCacheKey = -8  // IPCacheKey: prefix length, then the source IP
	fpEPKey      = -16 // EndpointKey: the destination IP
	fpPolicyKey  = -32 // PolicyKey: src, dst identity, dport, proto, pad
	fpPolicyDst  = fpPolicyKey + 4
	fpPolicyPort = fpPolicyKey + 8
	fpPolicyProt = fpPolicyKey + 10
	fpPolicyPad  = fpPolicyKey + 11
	fpFlags      = -40  // the endpoint's flags
	fpPort       = -44  // the packet's dport, kept for the second round
	fpProto      = -46  // the packet's protocol, kept for the second round
	fpCTKey      = -112 // CTKey, 16 bytes
	fpCTVal      = -152 // CTEntry, 40 bytes
	fpEcho       = -48  // 1 when the packet is an ICMP echo request
	fpRemote     = -56  // egress: the destination's identity
	fpCTFwd      = -72  // CTKey of the packet's own flow, 16 bytes
	fpIPCacheDst = -88  // egress: IPCacheKey of the destination
	fpEPSrc      = -92  // egress: EndpointKey of the source
)

// PolicyConfig is what the policy programs are built with.
type PolicyConfig struct {
	// Pass is the verdict for allowed traffic: TCActOK for a program on
	// its own, TCActUnspec (TCX_NEXT) for one that runs before bpf_lxc or
	// bpf_overlay on the same hook.
	Pass int32
	// Events, if set, is a ring buffer (NewEvents) that receives a
	// FlowRecord for every verdict: the ingress program's on traffic to
	// a local endpoint, the egress program's on traffic from a local
	// endpoint that enforces egress policy.
	Events *ebpf.Map
}

// PolicyInstructions is the ingress policy check of the Go model
// (conntrack replies, ebpf.PolicyLookup, endpoint enforcement) as a tc BPF
// program over the kernel maps: for an IPv4 packet to a local endpoint it
// finds the source identity in the ipcache (world if absent), lets a reply
// to a flow in the conntrack map pass (an ICMP echo request is never a
// reply; entries do not expire here: the agent's GC deletes them), else
// tries the policy map from (src, dst, proto, port) down to (any, dst,
// any, any), and returns TC_ACT_SHOT for a deny entry, or for no entry
// when the endpoint enforces policy; pass otherwise (including traffic
// that is not IPv4 or not for a local endpoint). What it lets in by an
// entry or an open endpoint is recorded in the conntrack map, as the
// model's ingress does, so that the endpoint's replies pass its egress
// policy. pass is TCActOK for a program on its own, TCActUnspec for one
// that runs before bpf_lxc on the same hook.
func PolicyInstructions(km *Maps, pass int32) asm.Instructions {
	return PolicyInstructionsWith(km, PolicyConfig{Pass: pass})
}

// policyRound tries the three keys at fpPolicyKey (port, protocol,
// neither) with both identities already in the key; a hit jumps to
// verdict with the entry in R0.
func policyRound(km *Maps, n, verdict string) asm.Instructions {
	var ins asm.Instructions
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpPolicyPort, asm.Half),
		asm.JEq.Imm(asm.R1, 0, "noport"+n))
	ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
	ins = append(ins, asm.JNE.Imm(asm.R0, 0, verdict))
	ins = append(ins,
		asm.StoreImm(asm.RFP, fpPolicyPort, 0, asm.Half).WithSymbol("noport"+n),
		asm.LoadMem(asm.R1, asm.RFP, fpPolicyProt, asm.Byte),
		asm.JEq.Imm(asm.R1, 0, "noproto"+n))
	ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
	ins = append(ins, asm.JNE.Imm(asm.R0, 0, verdict))
	ins = append(ins, asm.StoreImm(asm.RFP, fpPolicyProt, 0, asm.Byte).WithSymbol("noproto"+n))
	ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
	ins = append(ins, asm.JNE.Imm(asm.R0, 0, verdict))
	return ins
}

// restoreKey puts the packet's port and protocol back into the policy
// key for the second round.
func restoreKey() asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.RFP, fpPort, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyPort, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpProto, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyProt, asm.R1, asm.Byte),
	}
}

// parseL4 reads the IPv4 packet at R7/R8 into the policy key slots: the
// protocol, the destination port for TCP and UDP (0 otherwise), the Egress
// byte, and copies kept for the second round. It jumps to "pass" for what
// is neither IP version or too short, to "ip6" for IPv6 (the program's
// IPv6 half, policy6), and leaves the IHL in R3 and the protocol in
// R4 for ctTuple (the IPv4 family's l4 and proto).
func parseL4(egress uint8) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
		asm.JEq.Imm(asm.R2, ethIPv6, "ip6"),
		asm.JNE.Imm(asm.R2, 0x0008, "pass"), // ETH_P_IP in network order, loaded little-endian
		asm.LoadMem(asm.R3, asm.R7, 14, asm.Byte),
		asm.And.Imm(asm.R3, 0x0f),
		asm.LSh.Imm(asm.R3, 2),
		asm.JLT.Imm(asm.R3, 20, "pass"),
		asm.LoadMem(asm.R4, asm.R7, 23, asm.Byte),
		asm.StoreImm(asm.RFP, fpPolicyPort, 0, asm.Half),
		asm.JEq.Imm(asm.R4, 6, "l4"),
		asm.JEq.Imm(asm.R4, 17, "l4"),
		asm.Ja.Label("keys"),
		asm.Mov.Reg(asm.R5, asm.R7).WithSymbol("l4"),
		asm.Add.Imm(asm.R5, 14),
		asm.Add.Reg(asm.R5, asm.R3),
		asm.Mov.Reg(asm.R0, asm.R5),
		asm.Add.Imm(asm.R0, 4),
		asm.JGT.Reg(asm.R0, asm.R8, "pass"),
		asm.LoadMem(asm.R0, asm.R5, 2, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyPort, asm.R0, asm.Half),
	}
	ins = append(ins, policyKeys("keys", asm.R4, egress)...)
	// Both addresses where emitRecord reads them.
	return append(ins,
		asm.LoadMem(asm.R0, asm.R7, 30, asm.Word),
		asm.StoreMem(asm.RFP, fpEPKey, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.R7, 26, asm.Word),
		asm.StoreMem(asm.RFP, fpIPCacheKey+4, asm.R0, asm.Word),
	)
}

// policyKeys ("keys" of a family's parse) completes the policy key with
// the protocol in proto and the Egress byte (the port is there), and
// keeps the port and protocol for the second round.
func policyKeys(sym string, proto asm.Register, egress uint8) asm.Instructions {
	return asm.Instructions{
		asm.StoreMem(asm.RFP, fpPolicyProt, proto, asm.Byte).WithSymbol(sym),
		asm.StoreImm(asm.RFP, fpPolicyPad, int64(egress), asm.Byte),
		asm.StoreMem(asm.RFP, fpProto, proto, asm.Half),
		asm.LoadMem(asm.R0, asm.RFP, fpPolicyPort, asm.Half),
		asm.StoreMem(asm.RFP, fpPort, asm.R0, asm.Half),
	}
}

// parse4 is the IPv4 family's parse: parseL4, then the ipcache key of
// the source (ingress) or of the destination and the endpoint key of the
// source (egress).
func parse4(egress uint8) asm.Instructions {
	ins := parseL4(egress)
	if egress == 0 {
		return append(ins, asm.StoreImm(asm.RFP, fpIPCacheKey, 32, asm.Word))
	}
	return append(ins,
		asm.LoadMem(asm.R0, asm.RFP, fpIPCacheKey+4, asm.Word),
		asm.StoreMem(asm.RFP, fpEPSrc, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.RFP, fpEPKey, asm.Word),
		asm.StoreMem(asm.RFP, fpIPCacheDst+4, asm.R0, asm.Word),
		asm.StoreImm(asm.RFP, fpIPCacheDst, 32, asm.Word))
}

// decide ends a path with a verdict: with events, it records verdict and
// reason and goes to emit; without, straight to pass or shot. pre runs
// first (the symbol is then on its first instruction). The verdict and
// reason slots are the same for both families' records.
func decide(cfg PolicyConfig, sym, emit string, verdict, reason uint8, pre asm.Instructions) asm.Instructions {
	var ins asm.Instructions
	if cfg.Events == nil {
		to := "pass"
		if verdict == VerdictDropped {
			to = "shot"
		}
		ins = asm.Instructions{asm.Ja.Label(to)}
	} else {
		ins = asm.Instructions{
			asm.StoreImm(asm.RFP, fpEvent+evVerdict, int64(verdict), asm.Byte),
			asm.StoreImm(asm.RFP, fpEvent+evReason, int64(reason), asm.Half), // with the direction byte after it
			asm.Ja.Label(emit),
		}
	}
	ins = append(pre, ins...)
	ins[0] = ins[0].WithSymbol(sym)
	return ins
}

// PolicyInstructionsWith is PolicyInstructions with cfg.Events: every
// verdict on traffic to a local endpoint is also written to the ring
// buffer as a FlowRecord (source and destination address and identity,
// the ifindex it ran on, the policy key last looked up, verdict, reason,
// DirIngress), as Hubble's flow events.
func PolicyInstructionsWith(km *Maps, cfg PolicyConfig) asm.Instructions {
	return policyProgram(km, cfg, ingressBody)
}

// policyProgram is a policy program made of body for each family: the
// IPv4 one (whose parse jumps to "ip6" for IPv6), the IPv6 one, and the
// verdicts "shot" and "pass".
func policyProgram(km *Maps, cfg PolicyConfig, body func(*Maps, PolicyConfig, family) asm.Instructions) asm.Instructions {
	ins := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, loadPacket(34)...)
	ins = append(ins, body(km, cfg, ipv4(km))...)
	ins = append(ins, body(km, cfg, ipv6(km))...)
	return append(ins,
		asm.Mov.Imm(asm.R0, TCActShot).WithSymbol("shot"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, cfg.Pass).WithSymbol("pass"),
		asm.Return(),
	)
}

// ingressBody is PolicyInstructionsWith's check for one family, from
// parsing the packet to the verdict (and its record); the labels carry
// the family's suffix, but for "pass" and "shot".
func ingressBody(km *Maps, cfg PolicyConfig, f family) asm.Instructions {
	l := func(name string) string { return name + f.sfx }
	ins := f.parse(0)
	ins = append(ins, ctTuple(f, l("rev")+"_", true, "pass")...)
	ins = append(ins, mapLookup(f.endpoints, f.dstEP)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Word), // EndpointInfo.Identity
		asm.StoreMem(asm.RFP, fpPolicyDst, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.Word), // EndpointInfo.Flags
		asm.StoreMem(asm.RFP, fpFlags, asm.R1, asm.Word))
	ins = append(ins, mapLookup(f.ipcache, f.srcIPC)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R9, 2), // world
		asm.JEq.Imm(asm.R0, 0, l("src")),
		asm.LoadMem(asm.R9, asm.R0, 0, asm.Word), // IPCacheValue.Identity
		asm.StoreMem(asm.RFP, fpPolicyKey, asm.R9, asm.Word).WithSymbol(l("src")))
	// A reply to a flow the destination started passes (conntrack).
	ins = append(ins, ctLookupReply(f)...)
	ins = append(ins, policyRound(km, f.sfx+"1", l("verdict"))...)
	ins = append(ins,
		asm.JEq.Imm(asm.R9, 0, l("nomatch")),
		asm.StoreImm(asm.RFP, fpPolicyKey, 0, asm.Word))
	ins = append(ins, restoreKey()...)
	ins = append(ins, policyRound(km, f.sfx+"2", l("verdict"))...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpFlags, asm.Word).WithSymbol(l("nomatch")),
		asm.And.Imm(asm.R1, 1), // EndpointPolicyEnforced
		asm.JNE.Imm(asm.R1, 0, l("defaultdeny")))
	ins = append(ins, decide(cfg, l("open"), l("emit"), VerdictForwarded, ReasonNotEnforced, ctTrackFlow(f, ""))...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte).WithSymbol(l("verdict")), // PolicyEntry.Action
		asm.JNE.Imm(asm.R1, 1, l("denied")))
	ins = append(ins, decide(cfg, l("allowed"), l("emit"), VerdictForwarded, ReasonPolicyAllow, ctTrackFlow(f, ""))...)
	ins = append(ins, decide(cfg, l("denied"), l("emit"), VerdictDropped, ReasonPolicyDeny, nil)...)
	ins = append(ins, decide(cfg, l("defaultdeny"), l("emit"), VerdictDropped, ReasonDefaultDeny, nil)...)
	ins = append(ins, decide(cfg, l("ctreply"), l("emit"), VerdictForwarded, ReasonCTReply, nil)...)
	if cfg.Events != nil {
		ins = append(ins, emitRecord(f, cfg.Events, DirIngress, fpPolicyDst)...)
	}
	return ins
}

// EgressInstructions is the egress policy check of the Go model (its
// Node.egress: conntrack replies, ebpf.EgressLookup, egress enforcement),
// made on the source node as the packet leaves the pod: a tc program for
// the lxc's ingress hook, before the ingress check and bpf_lxc. For an
// IPv4 packet from a local endpoint that enforces egress policy it lets a
// reply to a flow in the conntrack map pass (never an echo request), else
// finds the destination's identity in the ipcache (world if absent) and
// tries the policy map's egress entries from (src, dst, proto, port) down
// to (src, any, any, any): an allow entry passes, a deny entry or no entry
// returns TC_ACT_SHOT. Every packet from a local endpoint that it lets
// pass, enforced or not, is recorded in the conntrack map (the model's
// fromContainer tracks the flow before the destination's ingress check).
// Everything else passes untouched. With cfg.Events every verdict on an
// enforcing endpoint's traffic is written to the ring buffer as a
// FlowRecord with DirEgress; a pod without egress policy has no verdict.
func EgressInstructions(km *Maps, cfg PolicyConfig) asm.Instructions {
	return policyProgram(km, cfg, egressBody)
}

// egressBody is EgressInstructions' check for one family, as
// ingressBody is PolicyInstructionsWith's.
func egressBody(km *Maps, cfg PolicyConfig, f family) asm.Instructions {
	l := func(name string) string { return name + f.sfx }
	ins := f.parse(1)
	ins = append(ins, ctTuple(f, l("rev")+"_", true, "pass")...)
	ins = append(ins, mapLookup(f.endpoints, f.srcEP)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.Word), // EndpointInfo.Flags
		asm.And.Imm(asm.R1, 2),                   // EndpointEgressEnforced
		asm.JEq.Imm(asm.R1, 0, l("open")),
		asm.LoadMem(asm.R9, asm.R0, 4, asm.Word), // EndpointInfo.Identity
		asm.StoreMem(asm.RFP, fpPolicyKey, asm.R9, asm.Word))
	ins = append(ins, mapLookup(f.ipcache, f.dstIPC)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R1, 2), // world
		asm.JEq.Imm(asm.R0, 0, l("dst")),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word), // IPCacheValue.Identity
		asm.StoreMem(asm.RFP, fpPolicyDst, asm.R1, asm.Word).WithSymbol(l("dst")),
		asm.StoreMem(asm.RFP, fpRemote, asm.R1, asm.Word))
	// A reply to a flow the destination started passes (conntrack).
	ins = append(ins, ctLookupReply(f)...)
	ins = append(ins, policyRound(km, f.sfx+"1", l("verdict"))...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpRemote, asm.Word),
		asm.JEq.Imm(asm.R1, 0, l("defaultdeny")),
		asm.StoreImm(asm.RFP, fpPolicyDst, 0, asm.Word))
	ins = append(ins, restoreKey()...)
	ins = append(ins, policyRound(km, f.sfx+"2", l("verdict"))...)
	ins = append(ins, asm.Ja.Label(l("defaultdeny")))
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte).WithSymbol(l("verdict")), // PolicyEntry.Action
		asm.JNE.Imm(asm.R1, 1, l("denied")))
	ins = append(ins, decide(cfg, l("allowed"), l("emit"), VerdictForwarded, ReasonPolicyAllow, ctTrackFlow(f, ""))...)
	ins = append(ins, decide(cfg, l("denied"), l("emit"), VerdictDropped, ReasonPolicyDeny, nil)...)
	ins = append(ins, decide(cfg, l("defaultdeny"), l("emit"), VerdictDropped, ReasonDefaultDeny, nil)...)
	ins = append(ins, decide(cfg, l("ctreply"), l("emit"), VerdictForwarded, ReasonCTReply, ctTrackFlow(f, ""))...)
	ins = append(ins, ctTrackFlow(f, l("open"))...)
	ins = append(ins, asm.Ja.Label("pass"))
	if cfg.Events != nil {
		ins = append(ins, emitRecord(f, cfg.Events, DirEgress, fpRemote)...)
	}
	return ins
}

// emitTail fills the fields after the addresses (at the same stack
// slots for both families' records), writes the record of n bytes at
// base to the ring buffer, and ends with the verdict. sport is the stack
// slot of the packet's source port.
func emitTail(events *ebpf.Map, dir uint8, dstID, sport, base int16, n int32) asm.Instructions {
	ins := asm.Instructions{
		asm.StoreMem(asm.RFP, fpEvent+evSrcID, asm.R9, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, dstID, asm.Word),
		asm.StoreMem(asm.RFP, fpEvent+evDstID, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpEvent+evDirection, int64(dir), asm.Byte),
		asm.LoadMem(asm.R1, asm.R6, skbIfIndex, asm.Word),
		asm.StoreMem(asm.RFP, fpEvent+evIfIndex, asm.R1, asm.Word),
	}
	for off := int16(0); off < 12; off += 4 {
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, fpPolicyKey+off, asm.Word),
			asm.StoreMem(asm.RFP, fpEvent+evKey+off, asm.R1, asm.Word))
	}
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpPort, asm.Half),
		asm.StoreMem(asm.RFP, fpEvent+evDPort, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpProto, asm.Half),
		asm.StoreMem(asm.RFP, fpEvent+evProto, asm.R1, asm.Byte),
		asm.LoadMem(asm.R1, asm.RFP, sport, asm.Half),
		asm.StoreMem(asm.RFP, fpEvent+evSPort, asm.R1, asm.Half),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, fpEvent+evNanos, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, events.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(base)),
		asm.Mov.Imm(asm.R3, n),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(), // a full ring loses the record, not the packet
		asm.LoadMem(asm.R1, asm.RFP, fpEvent+evVerdict, asm.Byte),
		asm.JEq.Imm(asm.R1, int32(VerdictDropped), "shot"),
		asm.Ja.Label("pass"),
	)
	return ins
}

// NewPolicyProgram loads PolicyInstructions as a tc (sched_cls) program
// that returns pass for allowed traffic.
func NewPolicyProgram(km *Maps, pass int32) (*ebpf.Program, error) {
	return NewPolicyProgramWith(km, PolicyConfig{Pass: pass})
}

// NewEgressProgram loads EgressInstructions as a tc program for the lxc
// devices' ingress hook (what the pod sends), before the ingress check.
func NewEgressProgram(km *Maps, cfg PolicyConfig) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf_egress", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: EgressInstructions(km, cfg)})
	if err != nil {
		return nil, fmt.Errorf("load egress policy program: %w", err)
	}
	return p, nil
}

// NewPolicyProgramWith loads PolicyInstructionsWith as a tc program.
func NewPolicyProgramWith(km *Maps, cfg PolicyConfig) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf_policy", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: PolicyInstructionsWith(km, cfg)})
	if err != nil {
		return nil, fmt.Errorf("load policy program: %w", err)
	}
	return p, nil
}
