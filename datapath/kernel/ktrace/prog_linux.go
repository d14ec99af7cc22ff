package ktrace

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// maps are the programs' shared state.
type maps struct {
	keys   *ebpf.Map // Key (keyLen bytes) → probe ID
	gate   *ebpf.Map // [0]: how many keys are watched; 0 stops the programs at once
	events *ebpf.Map // ring buffer of records
	lost   *ebpf.Map // [0]: records the ring buffer had no room for
}

// Stack of the programs (offsets from R10).
const (
	fpRec     = -48  // the record (recordLen bytes)
	fpKey     = -88  // the key as seen (keyLen bytes)
	fpRev     = -128 // the key with source and destination swapped
	fpIP      = -168 // IPv4 header (20 bytes) or IPv6 header (40)
	fpL4      = -184 // first 16 bytes after it (TCP's flags are at 13)
	fpScratch = -192 // an EtherType
	fpProto   = -200 // the transport protocol (IPv6: next header), a byte
	fpZero    = -208 // 0, the key of the array maps
)

// Registers kept across helper calls.
const (
	rSkb   = asm.R6 // the sk_buff (a BTF pointer)
	rFlags = asm.R7 // record flags, once the device is read; before, the device
	rAddr  = asm.R8 // kernel address of the header being read
	rCtx   = asm.R9 // the tracepoint's arguments
)

// EtherTypes as a 16-bit load from the packet sees them (network order
// read on a little-endian machine).
func le16be(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

var (
	etherIPv4 = le16be(0x0800)
	etherIPv6 = le16be(0x86dd)
	etherVLAN = le16be(0x8100)
	etherQinQ = le16be(0x88a8)
)

// probeRead copies n bytes from the kernel address in src(+add) to the
// stack at dst and leaves the program on a fault.
func probeRead(dst int16, n int32, src asm.Register, add int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(dst)),
		asm.Mov.Imm(asm.R2, n),
		asm.Mov.Reg(asm.R3, src),
		asm.Add.Imm(asm.R3, add),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"),
	}
}

// parseIP reads the IP header at rAddr (IPv4 or IPv6, by its version)
// into fpIP, its transport protocol into fpProto and the 16 bytes after
// it into fpL4, leaving rAddr at the latter, and sets flagIPv6 for IPv6
// (clears it for IPv4). Anything else ends the program: another version,
// a short IPv4 header, a later fragment. An IPv6 packet's next header is
// taken as its transport (probes carry no extension headers). n makes
// the labels unique.
func parseIP(n string) asm.Instructions {
	ins := probeRead(fpIP, 20, rAddr, 0)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpIP, asm.Byte),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.RSh.Imm(asm.R2, 4),
		asm.JEq.Imm(asm.R2, 6, "v6"+n),
		asm.JNE.Imm(asm.R2, 4, "exit"),
		asm.And.Imm(asm.R1, 0x0f),
		asm.LSh.Imm(asm.R1, 2),
		asm.JLT.Imm(asm.R1, 20, "exit"),
		asm.LoadMem(asm.R2, asm.RFP, fpIP+6, asm.Half), // fragment offset
		asm.And.Imm(asm.R2, 0xff1f),
		asm.JNE.Imm(asm.R2, 0, "exit"),
		asm.Add.Reg(rAddr, asm.R1),
		asm.LoadMem(asm.R1, asm.RFP, fpIP+9, asm.Byte),
		asm.StoreMem(asm.RFP, fpProto, asm.R1, asm.Byte),
		asm.And.Imm(rFlags, ^int32(flagIPv6)),
		asm.Ja.Label("l4"+n),
	)
	ins = append(ins, labelled("v6"+n, probeRead(fpIP+20, 20, rAddr, 20))...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpIP+6, asm.Byte), // next header
		asm.StoreMem(asm.RFP, fpProto, asm.R1, asm.Byte),
		asm.Add.Imm(rAddr, 40),
		setFlag(flagIPv6),
	)
	return append(ins, labelled("l4"+n, probeRead(fpL4, l4Len, rAddr, 0))...)
}

// labelled puts label on the first of ins.
func labelled(label string, ins asm.Instructions) asm.Instructions {
	ins[0] = ins[0].WithSymbol(label)
	return ins
}

// bpf_ringbuf_query and bpf_ringbuf_output flags.
const (
	rbAvailData   = 0 // BPF_RB_AVAIL_DATA
	rbNoWakeup    = 1 // BPF_RB_NO_WAKEUP
	rbForceWakeup = 2 // BPF_RB_FORCE_WAKEUP
)

// l4Len is how much of the transport header is read: ports, ICMP id and
// sequence, TCP flags. A quoted header may hold only 8 bytes of it; the
// rest is then whatever follows, and only TCP flags read it.
const l4Len = 16

// setFlag ors f into the record's flags.
func setFlag(f int32) asm.Instruction { return asm.Or.Imm(rFlags, f) }

// hook is one tracepoint's program.
type hook struct {
	name       string // program name
	tracepoint string
	kind       uint8
}

var hooks = []hook{
	{"ktrace_recv", "netif_receive_skb", kindRecv},
	{"ktrace_xmit", "net_dev_start_xmit", kindXmit},
	{"ktrace_drop", "kfree_skb", kindDrop},
}

// instructions is the program for h: find the IPv4 or IPv6 header
// (inner, behind VXLAN on one of vxlanPorts; quoted, in an ICMP error), build its key and
// the reversed key, look both up and write a record for a watched one.
func instructions(h hook, l layout, m maps, vxlanPorts []uint16, ringBytes int) asm.Instructions {
	ins := asm.Instructions{
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(rSkb, rCtx, 0, asm.DWord),
	}
	if h.kind == kindDrop {
		// Freed, not dropped (SKB_CONSUMED, SKB_NOT_DROPPED_YET).
		ins = append(ins,
			asm.LoadMem(asm.R1, rCtx, 8*l.kfreeReasonArg, asm.DWord),
			asm.LSh.Imm(asm.R1, 32),
			asm.RSh.Imm(asm.R1, 32),
			asm.JLE.Imm(asm.R1, consumed, "exit"),
		)
	}
	// Nothing watched: stop here.
	ins = append(ins,
		asm.StoreImm(asm.RFP, fpZero, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.gate.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpZero),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "exit"),
	)
	// The record: zero, then what the hook knows.
	for off := int16(0); off < recordLen; off += 4 {
		ins = append(ins, asm.StoreImm(asm.RFP, fpRec+off, 0, asm.Word))
	}
	ins = append(ins,
		asm.StoreImm(asm.RFP, fpRec+recKind, int64(h.kind), asm.Byte),
		asm.LoadMem(asm.R1, rSkb, l.skbLen, asm.Word),
		asm.StoreMem(asm.RFP, fpRec+recLen, asm.R1, asm.Word),
	)
	if h.kind == kindDrop {
		ins = append(ins,
			asm.LoadMem(asm.R1, rCtx, 8*l.kfreeReasonArg, asm.DWord),
			asm.StoreMem(asm.RFP, fpRec+recReason, asm.R1, asm.Word),
			asm.LoadMem(asm.R1, rCtx, 8*l.kfreeLocationArg, asm.DWord),
			asm.StoreMem(asm.RFP, fpRec+recLocation, asm.R1, asm.DWord),
		)
	}
	// The device and its namespace.
	if h.kind == kindXmit {
		ins = append(ins, asm.LoadMem(rFlags, rCtx, 8*l.xmitDevArg, asm.DWord))
	} else {
		ins = append(ins, asm.LoadMem(rFlags, rSkb, l.skbDev, asm.DWord))
	}
	ins = append(ins,
		asm.JEq.Imm(rFlags, 0, "nodev"),
		asm.LoadMem(asm.R1, rFlags, l.devIfindex, asm.Word),
		asm.StoreMem(asm.RFP, fpRec+recIfindex, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, rFlags, l.devNet, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "l3"),
		asm.LoadMem(asm.R1, asm.R1, l.netInum, asm.Word),
		asm.StoreMem(asm.RFP, fpRec+recNetns, asm.R1, asm.Word),
		asm.Ja.Label("l3"),
		// No device (a drop in a socket): the socket's namespace.
		asm.LoadMem(asm.R1, rSkb, l.skbSk, asm.DWord).WithSymbol("nodev"),
		asm.JEq.Imm(asm.R1, 0, "l3"),
		asm.LoadMem(asm.R1, asm.R1, l.skNet, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "l3"),
		asm.LoadMem(asm.R1, asm.R1, l.netInum, asm.Word),
		asm.StoreMem(asm.RFP, fpRec+recNetns, asm.R1, asm.Word),
	)
	// Where the IP header is.
	ins = append(ins, asm.Mov.Imm(rFlags, 0).WithSymbol("l3"))
	switch h.kind {
	case kindRecv:
		// eth_type_trans pulled the Ethernet header: data is the
		// network header (after a tag the device did not strip).
		ins = append(ins,
			asm.LoadMem(rAddr, rSkb, l.skbData, asm.DWord),
			asm.LoadMem(asm.R1, rSkb, l.skbProtocol, asm.Half),
			asm.JEq.Imm(asm.R1, etherIPv4, "ip"),
			asm.JEq.Imm(asm.R1, etherIPv6, "ip"),
			asm.JEq.Imm(asm.R1, etherVLAN, "tag"),
			asm.JEq.Imm(asm.R1, etherQinQ, "tag"),
			asm.Ja.Label("exit"),
		)
		ins = append(ins, labelled("tag", probeRead(fpScratch, 2, rAddr, 2))...)
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, fpScratch, asm.Half),
			asm.Add.Imm(rAddr, 4),
			asm.JEq.Imm(asm.R1, etherIPv4, "ip"),
			asm.JNE.Imm(asm.R1, etherIPv6, "exit"),
			asm.Ja.Label("ip"),
		)
	case kindXmit:
		// data is the Ethernet header.
		ins = append(ins, asm.LoadMem(rAddr, rSkb, l.skbData, asm.DWord))
		ins = append(ins, probeRead(fpScratch, 2, rAddr, 12)...)
		ins = append(ins,
			asm.Add.Imm(rAddr, 14),
			asm.LoadMem(asm.R1, asm.RFP, fpScratch, asm.Half),
			asm.JEq.Imm(asm.R1, etherIPv4, "ip"),
			asm.JEq.Imm(asm.R1, etherIPv6, "ip"),
			asm.JEq.Imm(asm.R1, etherVLAN, "tag"),
			asm.JEq.Imm(asm.R1, etherQinQ, "tag"),
			asm.Ja.Label("exit"),
		)
		ins = append(ins, labelled("tag", probeRead(fpScratch, 2, rAddr, 2))...)
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, fpScratch, asm.Half),
			asm.Add.Imm(rAddr, 4),
			asm.JEq.Imm(asm.R1, etherIPv4, "ip"),
			asm.JNE.Imm(asm.R1, etherIPv6, "exit"),
			asm.Ja.Label("ip"),
		)
	case kindDrop:
		// Wherever the packet was freed, its network header is set.
		ins = append(ins,
			asm.LoadMem(rAddr, rSkb, l.skbHead, asm.DWord),
			asm.LoadMem(asm.R1, rSkb, l.skbNetworkHeader, asm.Half),
			asm.Add.Reg(rAddr, asm.R1),
			asm.Ja.Label("ip"),
		)
	}
	ins = append(ins, labelled("ip", parseIP("outer"))...)

	// VXLAN: UDP to one of its ports, an Ethernet header, IPv4 or IPv6.
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpProto, asm.Byte),
		asm.JNE.Imm(asm.R1, ProtoUDP, "icmperr"),
		asm.LoadMem(asm.R1, asm.RFP, fpL4+2, asm.Half),
	)
	for _, p := range vxlanPorts {
		ins = append(ins, asm.JEq.Imm(asm.R1, le16be(p), "vxlan"))
	}
	ins = append(ins, asm.Ja.Label("icmperr"))
	ins = append(ins, labelled("vxlan", probeRead(fpScratch, 2, rAddr, 8+8+12))...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpScratch, asm.Half),
		asm.Add.Imm(rAddr, 8+8+14),
		setFlag(flagEncap),
		asm.JEq.Imm(asm.R1, etherIPv4, "inner"),
		asm.JNE.Imm(asm.R1, etherIPv6, "exit"),
	)
	ins = append(ins, labelled("inner", parseIP("inner"))...)

	// An ICMP error (unreachable, time exceeded, parameter problem;
	// ICMPv6's also packet too big) quotes the packet it is about.
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpProto, asm.Byte).WithSymbol("icmperr"),
		asm.LoadMem(asm.R2, asm.RFP, fpL4, asm.Byte),
		asm.JEq.Imm(asm.R1, ProtoICMP, "icmp4err"),
		asm.JNE.Imm(asm.R1, protoICMPv6, "key"),
		asm.JEq.Imm(asm.R2, 1, "quoted"),
		asm.JEq.Imm(asm.R2, 2, "quoted"),
		asm.JEq.Imm(asm.R2, 3, "quoted"),
		asm.JEq.Imm(asm.R2, 4, "quoted"),
		asm.Ja.Label("key"),
		asm.JEq.Imm(asm.R2, 3, "quoted").WithSymbol("icmp4err"),
		asm.JEq.Imm(asm.R2, 11, "quoted"),
		asm.JEq.Imm(asm.R2, 12, "quoted"),
		asm.Ja.Label("key"),
		asm.Add.Imm(rAddr, 8).WithSymbol("quoted"),
		setFlag(flagICMPErr),
	)
	ins = append(ins, parseIP("quoted")...)

	// The keys: addresses, ports (or ICMP echo id and sequence),
	// protocol, version (both zeroed first: an IPv4 address fills 4 of
	// its 16 bytes).
	for off := int16(0); off < keyLen; off += 4 {
		ins = append(ins, asm.StoreImm(asm.RFP, fpKey+off, 0, asm.Word), asm.StoreImm(asm.RFP, fpRev+off, 0, asm.Word))
	}
	ins[len(ins)-2*keyLen/4] = ins[len(ins)-2*keyLen/4].WithSymbol("key")
	ins = append(ins,
		asm.Mov.Reg(asm.R1, rFlags),
		asm.And.Imm(asm.R1, flagIPv6),
		asm.JNE.Imm(asm.R1, 0, "key6"),
		asm.LoadMem(asm.R1, asm.RFP, fpIP+12, asm.Word),
		asm.LoadMem(asm.R2, asm.RFP, fpIP+16, asm.Word),
		asm.StoreMem(asm.RFP, fpKey+keySrc, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, fpKey+keyDst, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, fpRev+keySrc, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, fpRev+keyDst, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpKey+keyVersion, 4, asm.Byte),
		asm.StoreImm(asm.RFP, fpRev+keyVersion, 4, asm.Byte),
		asm.Ja.Label("proto"),
	)
	// IPv6: source at 8, destination at 24, 16 bytes each.
	for half := int16(0); half < 16; half += 8 {
		ld := asm.LoadMem(asm.R1, asm.RFP, fpIP+8+half, asm.DWord)
		if half == 0 {
			ld = ld.WithSymbol("key6")
		}
		ins = append(ins, ld,
			asm.LoadMem(asm.R2, asm.RFP, fpIP+24+half, asm.DWord),
			asm.StoreMem(asm.RFP, fpKey+keySrc+half, asm.R1, asm.DWord),
			asm.StoreMem(asm.RFP, fpKey+keyDst+half, asm.R2, asm.DWord),
			asm.StoreMem(asm.RFP, fpRev+keySrc+half, asm.R2, asm.DWord),
			asm.StoreMem(asm.RFP, fpRev+keyDst+half, asm.R1, asm.DWord),
		)
	}
	ins = append(ins,
		asm.StoreImm(asm.RFP, fpKey+keyVersion, 6, asm.Byte),
		asm.StoreImm(asm.RFP, fpRev+keyVersion, 6, asm.Byte),
		asm.LoadMem(asm.R3, asm.RFP, fpProto, asm.Byte).WithSymbol("proto"),
		asm.StoreMem(asm.RFP, fpKey+keyProto, asm.R3, asm.Byte),
		asm.StoreMem(asm.RFP, fpRev+keyProto, asm.R3, asm.Byte),
		asm.JEq.Imm(asm.R3, ProtoTCP, "ports"),
		asm.JEq.Imm(asm.R3, ProtoUDP, "ports"),
		asm.LoadMem(asm.R1, asm.RFP, fpL4, asm.Byte),
		asm.JEq.Imm(asm.R3, protoICMPv6, "echo6"),
		asm.JNE.Imm(asm.R3, ProtoICMP, "exit"),
		// ICMP: echo request or reply only; id and sequence as they are.
		asm.JEq.Imm(asm.R1, 0, "echo"),
		asm.JNE.Imm(asm.R1, 8, "exit"),
		asm.Ja.Label("echo"),
		asm.JEq.Imm(asm.R1, 128, "echo").WithSymbol("echo6"),
		asm.JNE.Imm(asm.R1, 129, "exit"),
		asm.LoadMem(asm.R1, asm.RFP, fpL4+4, asm.Word).WithSymbol("echo"),
		asm.StoreMem(asm.RFP, fpKey+keyPorts, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, fpRev+keyPorts, asm.R1, asm.Word),
		asm.Ja.Label("lookup"),
		asm.LoadMem(asm.R1, asm.RFP, fpL4, asm.Half).WithSymbol("ports"),
		asm.LoadMem(asm.R2, asm.RFP, fpL4+2, asm.Half),
		asm.StoreMem(asm.RFP, fpKey+keyPorts, asm.R1, asm.Half),
		asm.StoreMem(asm.RFP, fpKey+keyPorts+2, asm.R2, asm.Half),
		asm.StoreMem(asm.RFP, fpRev+keyPorts, asm.R2, asm.Half),
		asm.StoreMem(asm.RFP, fpRev+keyPorts+2, asm.R1, asm.Half),
		asm.JNE.Imm(asm.R3, ProtoTCP, "lookup"),
		asm.LoadMem(asm.R1, asm.RFP, fpL4+13, asm.Byte),
		asm.StoreMem(asm.RFP, fpRec+recTCPFlags, asm.R1, asm.Byte),

		asm.LoadMapPtr(asm.R1, m.keys.FD()).WithSymbol("lookup"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "emit"),
		asm.LoadMapPtr(asm.R1, m.keys.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpRev),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		setFlag(flagReversed),

		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord).WithSymbol("emit"),
		asm.StoreMem(asm.RFP, fpRec+recProbe, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpRec+recFlags, rFlags, asm.Byte),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, fpRec+recNanos, asm.R0, asm.DWord),
		// Wake the reader only once the ring is half full: Sync
		// flushes the rest, and the reader does not run (and disturb
		// the probe's timing) for every record.
		asm.LoadMapPtr(asm.R1, m.events.FD()),
		asm.Mov.Imm(asm.R2, rbAvailData),
		asm.FnRingbufQuery.Call(),
		asm.Mov.Imm(rFlags, rbNoWakeup),
		asm.JLT.Imm(asm.R0, int32(ringBytes/2), "output"),
		asm.Mov.Imm(rFlags, rbForceWakeup),
		asm.LoadMapPtr(asm.R1, m.events.FD()).WithSymbol("output"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpRec),
		asm.Mov.Imm(asm.R3, recordLen),
		asm.Mov.Reg(asm.R4, rFlags),
		asm.FnRingbufOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		// No room: count it.
		asm.LoadMapPtr(asm.R1, m.lost.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpZero),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),

		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return ins
}

// loadProgram loads h's program for attaching as tp_btf.
func loadProgram(h hook, l layout, m maps, vxlanPorts []uint16, ringBytes int) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         h.name,
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     h.tracepoint,
		License:      "GPL",
		Instructions: instructions(h, l, m, vxlanPorts, ringBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("load %s program for tracepoint %s: %w", h.name, h.tracepoint, err)
	}
	return p, nil
}
