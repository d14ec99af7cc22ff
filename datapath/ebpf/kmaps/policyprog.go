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
)

// ctTuple writes the conntrack key of the IPv4 packet at R7 (data) /
// R8 (data_end) to fpCTKey: addresses and ports swapped when reverse (the
// key a reply to this packet's flow was recorded under). For TCP and UDP
// the ports; for ICMP echo both ports hold the echo ID, as the Go model's
// flow(). The IHL must be in R3 (bounded, 20 to 60) and the protocol in R4;
// jumps to fail when the packet is too short. R0 and R5 are clobbered.
func ctTuple(prefix string, reverse bool, fail string) asm.Instructions {
	src, dst := int16(26), int16(30)
	sport, dport := int16(fpCTKey+8), int16(fpCTKey+10)
	if reverse {
		src, dst = dst, src
		sport, dport = dport, sport
	}
	return asm.Instructions{
		asm.LoadMem(asm.R0, asm.R7, src, asm.Word),
		asm.StoreMem(asm.RFP, fpCTKey, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.R7, dst, asm.Word),
		asm.StoreMem(asm.RFP, fpCTKey+4, asm.R0, asm.Word),
		asm.StoreImm(asm.RFP, fpCTKey+8, 0, asm.Word),
		asm.StoreImm(asm.RFP, fpCTKey+12, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpCTKey+12, asm.R4, asm.Byte),
		asm.Mov.Reg(asm.R5, asm.R7),
		asm.Add.Imm(asm.R5, 14),
		asm.Add.Reg(asm.R5, asm.R3),
		asm.JEq.Imm(asm.R4, 6, prefix+"ports"),
		asm.JEq.Imm(asm.R4, 17, prefix+"ports"),
		asm.JNE.Imm(asm.R4, 1, prefix+"done"),
		// ICMP echo: the ID in both ports.
		asm.Mov.Reg(asm.R0, asm.R5),
		asm.Add.Imm(asm.R0, 8),
		asm.JGT.Reg(asm.R0, asm.R8, fail),
		asm.LoadMem(asm.R0, asm.R5, 0, asm.Byte),
		asm.JEq.Imm(asm.R0, 8, prefix+"echo"),
		asm.JNE.Imm(asm.R0, 0, prefix+"done"),
		asm.LoadMem(asm.R0, asm.R5, 4, asm.Half).WithSymbol(prefix + "echo"),
		asm.StoreMem(asm.RFP, fpCTKey+8, asm.R0, asm.Half),
		asm.StoreMem(asm.RFP, fpCTKey+10, asm.R0, asm.Half),
		asm.Ja.Label(prefix + "done"),
		asm.Mov.Reg(asm.R0, asm.R5).WithSymbol(prefix + "ports"),
		asm.Add.Imm(asm.R0, 4),
		asm.JGT.Reg(asm.R0, asm.R8, fail),
		asm.LoadMem(asm.R0, asm.R5, 0, asm.Half),
		asm.StoreMem(asm.RFP, sport, asm.R0, asm.Half),
		asm.LoadMem(asm.R0, asm.R5, 2, asm.Half),
		asm.StoreMem(asm.RFP, dport, asm.R0, asm.Half),
		asm.Mov.Imm(asm.R0, 0).WithSymbol(prefix + "done"),
	}
}

// PolicyConfig is what the policy program is built with.
type PolicyConfig struct {
	// Pass is the verdict for allowed traffic: TCActOK for a program on
	// its own, TCActUnspec (TCX_NEXT) for one that runs before bpf_lxc or
	// bpf_overlay on the same hook.
	Pass int32
	// Events, if set, is a ring buffer (NewEvents) that receives a
	// FlowRecord for every verdict on traffic to a local endpoint.
	Events *ebpf.Map
}

// PolicyInstructions is the ingress policy check of the Go model
// (conntrack replies, ebpf.PolicyLookup, endpoint enforcement) as a tc BPF
// program over the kernel maps: for an IPv4 packet to a local endpoint it
// finds the source identity in the ipcache (world if absent), lets a reply
// to a flow in the conntrack map pass (entries do not expire here: the
// agent's GC would delete them), else tries the policy map from (src,
// dst, proto, port) down to (any, dst, any, any), and returns TC_ACT_SHOT
// for a deny entry, or for no entry when the endpoint enforces policy;
// pass otherwise (including traffic that is not IPv4 or not for a local
// endpoint). pass is TCActOK for a program on its own, TCActUnspec for one
// that runs before bpf_lxc on the same hook.
func PolicyInstructions(km *Maps, pass int32) asm.Instructions {
	return PolicyInstructionsWith(km, PolicyConfig{Pass: pass})
}

// PolicyInstructionsWith is PolicyInstructions with cfg.Events: every
// verdict on traffic to a local endpoint is also written to the ring
// buffer as a FlowRecord (source and destination address and identity,
// the ifindex it ran on, the policy key last looked up, verdict, reason),
// as Hubble's flow events.
func PolicyInstructionsWith(km *Maps, cfg PolicyConfig) asm.Instructions {
	// round tries the three keys with the source identity already in the
	// key; a hit jumps to "verdict".
	round := func(n string) asm.Instructions {
		var ins asm.Instructions
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, fpPolicyPort, asm.Half),
			asm.JEq.Imm(asm.R1, 0, "noport"+n))
		ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
		ins = append(ins, asm.JNE.Imm(asm.R0, 0, "verdict"))
		ins = append(ins,
			asm.StoreImm(asm.RFP, fpPolicyPort, 0, asm.Half).WithSymbol("noport"+n),
			asm.LoadMem(asm.R1, asm.RFP, fpPolicyProt, asm.Byte),
			asm.JEq.Imm(asm.R1, 0, "noproto"+n))
		ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
		ins = append(ins, asm.JNE.Imm(asm.R0, 0, "verdict"))
		ins = append(ins, asm.StoreImm(asm.RFP, fpPolicyProt, 0, asm.Byte).WithSymbol("noproto"+n))
		ins = append(ins, mapLookup(km.Policy, fpPolicyKey)...)
		ins = append(ins, asm.JNE.Imm(asm.R0, 0, "verdict"))
		return ins
	}
	// decide ends a path with a verdict: with events, it records verdict
	// and reason and goes to "emit"; without, straight to pass or shot.
	decide := func(sym string, verdict, reason uint8) asm.Instructions {
		if cfg.Events == nil {
			to := "pass"
			if verdict == VerdictDropped {
				to = "shot"
			}
			return asm.Instructions{asm.Ja.Label(to).WithSymbol(sym)}
		}
		return asm.Instructions{
			asm.StoreImm(asm.RFP, fpEvent+evVerdict, int64(verdict), asm.Byte).WithSymbol(sym),
			asm.StoreImm(asm.RFP, fpEvent+evReason, int64(reason), asm.Half), // with the padding byte after it
			asm.Ja.Label("emit"),
		}
	}
	ins := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, loadPacket(34)...)
	ins = append(ins, asm.Instructions{
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
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

		asm.StoreMem(asm.RFP, fpPolicyProt, asm.R4, asm.Byte).WithSymbol("keys"),
		asm.StoreImm(asm.RFP, fpPolicyPad, 0, asm.Byte),
		asm.StoreMem(asm.RFP, fpProto, asm.R4, asm.Half),
		asm.LoadMem(asm.R0, asm.RFP, fpPolicyPort, asm.Half),
		asm.StoreMem(asm.RFP, fpPort, asm.R0, asm.Half),
		asm.LoadMem(asm.R0, asm.R7, 30, asm.Word),
		asm.StoreMem(asm.RFP, fpEPKey, asm.R0, asm.Word),
		asm.StoreImm(asm.RFP, fpIPCacheKey, 32, asm.Word),
		asm.LoadMem(asm.R0, asm.R7, 26, asm.Word),
		asm.StoreMem(asm.RFP, fpIPCacheKey+4, asm.R0, asm.Word),
	}...)
	ins = append(ins, ctTuple("rev_", true, "pass")...)
	ins = append(ins, mapLookup(km.Endpoints, fpEPKey)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Word), // EndpointInfo.Identity
		asm.StoreMem(asm.RFP, fpPolicyDst, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.Word), // EndpointInfo.Flags
		asm.StoreMem(asm.RFP, fpFlags, asm.R1, asm.Word))
	ins = append(ins, mapLookup(km.IPCache, fpIPCacheKey)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R9, 2), // world
		asm.JEq.Imm(asm.R0, 0, "src"),
		asm.LoadMem(asm.R9, asm.R0, 0, asm.Word), // IPCacheValue.Identity
		asm.StoreMem(asm.RFP, fpPolicyKey, asm.R9, asm.Word).WithSymbol("src"))
	// A reply to a flow the destination started passes (conntrack).
	ins = append(ins, mapLookup(km.CT, fpCTKey)...)
	ins = append(ins, asm.JNE.Imm(asm.R0, 0, "ctreply"))
	ins = append(ins, round("1")...)
	ins = append(ins,
		asm.JEq.Imm(asm.R9, 0, "nomatch"),
		asm.StoreImm(asm.RFP, fpPolicyKey, 0, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpPort, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyPort, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpProto, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyProt, asm.R1, asm.Byte))
	ins = append(ins, round("2")...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpFlags, asm.Word).WithSymbol("nomatch"),
		asm.And.Imm(asm.R1, 1), // EndpointPolicyEnforced
		asm.JNE.Imm(asm.R1, 0, "defaultdeny"))
	ins = append(ins, decide("open", VerdictForwarded, ReasonNotEnforced)...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte).WithSymbol("verdict"), // PolicyEntry.Action
		asm.JNE.Imm(asm.R1, 1, "denied"))
	ins = append(ins, decide("allowed", VerdictForwarded, ReasonPolicyAllow)...)
	ins = append(ins, decide("denied", VerdictDropped, ReasonPolicyDeny)...)
	ins = append(ins, decide("defaultdeny", VerdictDropped, ReasonDefaultDeny)...)
	ins = append(ins, decide("ctreply", VerdictForwarded, ReasonCTReply)...)
	if cfg.Events != nil {
		ins = append(ins, emitRecord(cfg.Events)...)
	}
	ins = append(ins,
		asm.Mov.Imm(asm.R0, TCActShot).WithSymbol("shot"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, cfg.Pass).WithSymbol("pass"),
		asm.Return(),
	)
	return ins
}

// emitRecord ("emit") fills the rest of the FlowRecord at fpEvent (verdict
// and reason are already there), writes it to the ring buffer, and ends
// with the verdict. R6 is the skb, R9 the source identity.
func emitRecord(events *ebpf.Map) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R1, asm.RFP, fpIPCacheKey+4, asm.Word).WithSymbol("emit"),
		asm.StoreMem(asm.RFP, fpEvent+evSrc, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpEPKey, asm.Word),
		asm.StoreMem(asm.RFP, fpEvent+evDst, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, fpEvent+evSrcID, asm.R9, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpPolicyDst, asm.Word),
		asm.StoreMem(asm.RFP, fpEvent+evDstID, asm.R1, asm.Word),
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
		// The reversed conntrack key holds the packet's source port
		// (or echo ID) in its DPort.
		asm.LoadMem(asm.R1, asm.RFP, fpCTKey+10, asm.Half),
		asm.StoreMem(asm.RFP, fpEvent+evSPort, asm.R1, asm.Half),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, fpEvent+evNanos, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, events.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpEvent),
		asm.Mov.Imm(asm.R3, flowRecordLen),
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

// NewPolicyProgramWith loads PolicyInstructionsWith as a tc program.
func NewPolicyProgramWith(km *Maps, cfg PolicyConfig) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf_policy", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: PolicyInstructionsWith(km, cfg)})
	if err != nil {
		return nil, fmt.Errorf("load policy program: %w", err)
	}
	return p, nil
}
