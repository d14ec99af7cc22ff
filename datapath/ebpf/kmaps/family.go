package kmaps

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// family is what the programs' shared parts need to know of an IP
// version: each of them (the policy bodies ingressBody and egressBody,
// ctTuple, ctTrackFlow, emitRecord, lookupDst, bpf_lxc's tunnelTo) is
// written once and emitted for IPv4 and again for IPv6, with the
// family's labels, maps, stack slots and packet layout.
type family struct {
	// sfx keeps the family's labels apart: "" for IPv4, "6" for IPv6.
	sfx string
	// The family's endpoints map, ipcache, conntrack map and tunnel map,
	// and the stack slot of bpf_lxc's tunnel map key.
	endpoints, ipcache, ct, tunnel *ebpf.Map
	tunKey                         int16
	// addrLen is the address length in bytes: the conntrack key holds
	// the source and destination addresses, then the ports at
	// 2*addrLen and 2*addrLen+2, then the protocol.
	addrLen int16
	// Stack slots of the endpoint keys and the ipcache keys of the
	// packet's source and destination, as parse leaves them.
	srcEP, dstEP, srcIPC, dstIPC int16
	// ctKey and ctFwd are the stack slots of the conntrack key the
	// tuple writes and of the packet's own flow's key (ctTrackFlow).
	ctKey, ctFwd int16
	// event and recordLen are the flow record's stack slot and length;
	// recordAddrs puts the addresses into it (nil when parse did).
	event       int16
	recordLen   int32
	recordAddrs asm.Instructions
	// parse reads the packet (R7/R8) into the policy key slots and the
	// source and destination keys, leaving what tuple needs in R3/R4;
	// egress is the policy key's Egress byte.
	parse func(egress uint8) asm.Instructions
	// The packet's layout for ctTuple: the offsets of the source and
	// destination addresses; l4 points R5 at the transport header; the
	// ICMP protocol number and its echo request and reply types.
	pktSrc, pktDst           int16
	l4                       asm.Instructions
	icmp, echoReq, echoReply int32
}

// ipv4 is the IPv4 family: its keys lie where parseL4 puts them.
func ipv4(km *Maps) family {
	return family{
		endpoints: km.Endpoints, ipcache: km.IPCache, ct: km.CT, tunnel: km.Tunnel, tunKey: fpTunnelMap,
		addrLen: 4,
		srcEP:   fpEPSrc, dstEP: fpEPKey, srcIPC: fpIPCacheKey, dstIPC: fpIPCacheDst,
		ctKey: fpCTKey, ctFwd: fpCTFwd,
		event: fpEvent, recordLen: flowRecordLen,
		recordAddrs: asm.Instructions{
			asm.LoadMem(asm.R1, asm.RFP, fpIPCacheKey+4, asm.Word),
			asm.StoreMem(asm.RFP, fpEvent+evSrc, asm.R1, asm.Word),
			asm.LoadMem(asm.R1, asm.RFP, fpEPKey, asm.Word),
			asm.StoreMem(asm.RFP, fpEvent+evDst, asm.R1, asm.Word),
		},
		parse:  parse4,
		pktSrc: 26, pktDst: 30,
		l4: asm.Instructions{ // the IHL is in R3
			asm.Mov.Reg(asm.R5, asm.R7),
			asm.Add.Imm(asm.R5, 14),
			asm.Add.Reg(asm.R5, asm.R3),
		},
		icmp: 1, echoReq: 8, echoReply: 0,
	}
}

// ipv6 is the IPv6 family (the programs' halves entered at "ip6").
func ipv6(km *Maps) family {
	return family{
		sfx:       "6",
		endpoints: km.Endpoints6, ipcache: km.IPCache6, ct: km.CT6, tunnel: km.Tunnel6, tunKey: fp6TunKey,
		addrLen: 16,
		srcEP:   fp6Src + 4, dstEP: fp6Dst + 4, srcIPC: fp6Src, dstIPC: fp6Dst,
		ctKey: fp6CTKey, ctFwd: fp6CTFwd,
		event: fpEvent6, recordLen: flowRecord6Len,
		parse:  parse6,
		pktSrc: 22, pktDst: 38,
		l4: asm.Instructions{ // no extension headers
			asm.Mov.Reg(asm.R5, asm.R7),
			asm.Add.Imm(asm.R5, 54),
		},
		icmp: 58, echoReq: 128, echoReply: 129,
	}
}

// copyWords copies n bytes (a multiple of 4) from src+so to dst+do
// through reg.
func copyWords(reg, dst asm.Register, do int16, src asm.Register, so, n int16) asm.Instructions {
	var ins asm.Instructions
	for off := int16(0); off < n; off += 4 {
		ins = append(ins, asm.LoadMem(reg, src, so+off, asm.Word), asm.StoreMem(dst, do+off, reg, asm.Word))
	}
	return ins
}

// ctTuple writes the conntrack key of the family's packet at R7 (data)
// / R8 (data_end) to its ctKey: addresses and ports swapped when reverse
// (the key a reply to this packet's flow was recorded under). For TCP
// and UDP the ports; for ICMP echo both ports hold the echo ID, as the Go
// model's flow(). What the family's l4 needs must be in R3 (IPv4: the
// IHL, bounded, 20 to 60) and the protocol in R4; jumps to fail when the
// packet is too short. R0 and R5 are clobbered. The reverse tuple also
// sets fpEcho for an ICMP echo request, which is never a reply whatever
// its echo ID (the model's echoRequest).
func ctTuple(f family, prefix string, reverse bool, fail string) asm.Instructions {
	a, key := f.addrLen, f.ctKey
	src, dst := f.pktSrc, f.pktDst
	sport, dport := key+2*a, key+2*a+2
	if reverse {
		src, dst = dst, src
		sport, dport = dport, sport
	}
	echo := asm.Instructions{
		asm.LoadMem(asm.R0, asm.R5, 0, asm.Byte),
		asm.JEq.Imm(asm.R0, f.echoReq, prefix+"echo"),
		asm.JNE.Imm(asm.R0, f.echoReply, prefix+"done"),
	}
	var ins asm.Instructions
	if reverse {
		echo = asm.Instructions{
			asm.LoadMem(asm.R0, asm.R5, 0, asm.Byte),
			asm.JEq.Imm(asm.R0, f.echoReply, prefix+"echo"),
			asm.JNE.Imm(asm.R0, f.echoReq, prefix+"done"),
			asm.StoreImm(asm.RFP, fpEcho, 1, asm.Byte),
		}
		ins = append(ins, asm.StoreImm(asm.RFP, fpEcho, 0, asm.Byte))
	}
	ins = append(ins, copyWords(asm.R0, asm.RFP, key, asm.R7, src, a)...)
	ins = append(ins, copyWords(asm.R0, asm.RFP, key+a, asm.R7, dst, a)...)
	ins = append(ins,
		asm.StoreImm(asm.RFP, key+2*a, 0, asm.Word),
		asm.StoreImm(asm.RFP, key+2*a+4, 0, asm.Word),
		asm.StoreMem(asm.RFP, key+2*a+4, asm.R4, asm.Byte))
	ins = append(ins, f.l4...)
	ins = append(ins,
		asm.JEq.Imm(asm.R4, 6, prefix+"ports"),
		asm.JEq.Imm(asm.R4, 17, prefix+"ports"),
		asm.JNE.Imm(asm.R4, f.icmp, prefix+"done"),
		// ICMP echo: the ID in both ports.
		asm.Mov.Reg(asm.R0, asm.R5),
		asm.Add.Imm(asm.R0, 8),
		asm.JGT.Reg(asm.R0, asm.R8, fail))
	ins = append(ins, echo...)
	return append(ins,
		asm.LoadMem(asm.R0, asm.R5, 4, asm.Half).WithSymbol(prefix+"echo"),
		asm.StoreMem(asm.RFP, key+2*a, asm.R0, asm.Half),
		asm.StoreMem(asm.RFP, key+2*a+2, asm.R0, asm.Half),
		asm.Ja.Label(prefix+"done"),
		asm.Mov.Reg(asm.R0, asm.R5).WithSymbol(prefix+"ports"),
		asm.Add.Imm(asm.R0, 4),
		asm.JGT.Reg(asm.R0, asm.R8, fail),
		asm.LoadMem(asm.R0, asm.R5, 0, asm.Half),
		asm.StoreMem(asm.RFP, sport, asm.R0, asm.Half),
		asm.LoadMem(asm.R0, asm.R5, 2, asm.Half),
		asm.StoreMem(asm.RFP, dport, asm.R0, asm.Half),
		asm.Mov.Imm(asm.R0, 0).WithSymbol(prefix+"done"),
	)
}

// lookupDst looks the packet's destination (R7) up in the family's
// endpoints map, through its endpoint key slot: R9 is then the entry;
// jumps to miss for no local endpoint. The packet pointers are stale
// after it.
func lookupDst(f family, miss string) asm.Instructions {
	ins := copyWords(asm.R0, asm.RFP, f.dstEP, asm.R7, f.pktDst, f.addrLen)
	ins = append(ins, mapLookup(f.endpoints, f.dstEP)...)
	return append(ins,
		asm.JEq.Imm(asm.R0, 0, miss),
		asm.Mov.Reg(asm.R9, asm.R0))
}

// ctLookupReply jumps to "ctreply" (with the family's suffix) when the
// packet is a reply to a flow in the family's conntrack map (its ctKey
// holds the reverse tuple): never for an echo request.
func ctLookupReply(f family) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R1, asm.RFP, fpEcho, asm.Byte),
		asm.JNE.Imm(asm.R1, 0, "noct"+f.sfx),
	}
	ins = append(ins, mapLookup(f.ct, f.ctKey)...)
	return append(ins,
		asm.JNE.Imm(asm.R0, 0, "ctreply"+f.sfx),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("noct"+f.sfx))
}

// ctTrackFlow records the packet's own flow (ctKey reversed back into
// ctFwd) in the family's conntrack map, as the model's ctTrack: the
// first instruction carries sym. R1 to R5 and R0 are clobbered.
func ctTrackFlow(f family, sym string) asm.Instructions {
	a := f.addrLen
	ins := copyWords(asm.R1, asm.RFP, f.ctFwd+a, asm.RFP, f.ctKey, a)
	ins[0] = ins[0].WithSymbol(sym)
	ins = append(ins, copyWords(asm.R1, asm.RFP, f.ctFwd, asm.RFP, f.ctKey+a, a)...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, f.ctKey+2*a, asm.Half),
		asm.StoreMem(asm.RFP, f.ctFwd+2*a+2, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, f.ctKey+2*a+2, asm.Half),
		asm.StoreMem(asm.RFP, f.ctFwd+2*a, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, f.ctKey+2*a+4, asm.Word),
		asm.StoreMem(asm.RFP, f.ctFwd+2*a+4, asm.R1, asm.Word))
	return append(ins, ctUpdate(f.ct, f.ctFwd)...)
}

// ctUpdate writes a new CTEntry (one packet, created and last seen now)
// under the key at fp+key into the conntrack map m.
func ctUpdate(m *ebpf.Map, key int16) asm.Instructions {
	var ins asm.Instructions
	for off := int16(0); off < 40; off += 4 {
		ins = append(ins, asm.StoreImm(asm.RFP, fpCTVal+off, 0, asm.Word))
	}
	return append(ins,
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, fpCTVal+16, asm.R0, asm.DWord), // Created
		asm.StoreMem(asm.RFP, fpCTVal+24, asm.R0, asm.DWord), // LastSeen
		asm.StoreImm(asm.RFP, fpCTVal, 1, asm.Word),          // Packets
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpCTVal),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY
		asm.FnMapUpdateElem.Call(),
	)
}

// emitRecord ("emit" with the family's suffix) fills the rest of the
// family's FlowRecord (verdict and reason are already there), writes it
// to the ring buffer, and ends with the verdict. R6 is the skb, R9 the
// source identity; dstID is the stack slot of the destination identity.
func emitRecord(f family, events *ebpf.Map, dir uint8, dstID int16) asm.Instructions {
	// The reversed conntrack key holds the packet's source port (or
	// echo ID) in its DPort.
	ins := append(append(asm.Instructions(nil), f.recordAddrs...),
		emitTail(events, dir, dstID, f.ctKey+2*f.addrLen+2, f.event, f.recordLen)...)
	ins[0] = ins[0].WithSymbol("emit" + f.sfx)
	return ins
}
