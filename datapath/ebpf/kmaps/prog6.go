package kmaps

import "github.com/cilium/ebpf/asm"

// IPv6 in the programs: each program has an IPv6 half beside its IPv4
// one, entered at "ip6" on ETH_P_IPV6, over the model's IPv6 maps
// (Endpoints6, IPCache6, Tunnel6, CT6) and the one policy map keyed by
// identities, as the Go model's node6.go does. The header is read as
// fixed: no extension headers (the next header is the transport), as
// the model's flow6. ICMPv6 is ICMP to policy (the model's policyProto),
// so a rule naming ICMP holds for both families; the conntrack key keeps
// the real next header.
//
// Neighbour discovery is answered in BPF, as the model's bpf_lxc does:
// a pod's neighbour solicitation for any address but its own gets a
// neighbour advertisement with cilium_host's MAC (router, solicited,
// override), built in place and sent back out of the lxc, so a pod only
// ever resolves to its node. The kernel is not asked: the host's
// namespace keeps IPv6 off (it routes no IPv6: every IPv6 packet is
// redirected by the programs), so the pods' IPv6 needs nothing of the
// host's stack, and a pod's view of its neighbours is the model's.
// Other neighbour and router discovery, and multicast (MLD reports),
// are dropped, as the model drops them.

// ethIPv6 is ETH_P_IPV6 as a little-endian half-word load reads it.
const ethIPv6 = 0xdd86

// Stack slots of the IPv6 halves, below the IPv4 ones. The IPv6 flow
// record ends where the IPv4 one ends: its fields after the addresses
// lie at the IPv4 record's slots, so decide and emitTail serve both.
const (
	fpEvent6   = fpEvent - 24 // FlowRecord6, 72 bytes
	fp6CTKey   = -264         // CTKey6, 40 bytes
	fp6CTFwd   = -304         // CTKey6 of the packet's own flow
	fp6Src     = -328         // IPCacheKey6 of the source: /128, then the address
	fp6Dst     = -352         // IPCacheKey6 of the destination
	fp6TunKey  = fp6CTKey     // bpf_lxc: TunnelKey6 (no conntrack key there)
	fpNDPseudo = fpTunnelKey  // bpf_lxc: the ICMPv6 pseudo-header's length and next header
)

// FlowRecord6 is the IPv6 record of the ring buffer (72 bytes): the
// addresses, then FlowRecord's fields after its own.
const (
	flowRecord6Len = 72
	ev6Dst         = 16
)

// copy16 copies 16 bytes from src+so to dst+do through R0.
func copy16(dst asm.Register, do int16, src asm.Register, so int16) asm.Instructions {
	return copyWords(asm.R0, dst, do, src, so, 16)
}

// parse6 reads the IPv6 packet at R7/R8 ("ip6") into the policy key
// slots as parseL4 does IPv4's, the addresses into fp6Src and fp6Dst
// (IPCacheKey6: their endpoint keys at +4) and into the flow record. It
// leaves the next header in R4 for ctTuple; too short a packet passes.
func parse6(egress uint8) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word).WithSymbol("ip6"),
		asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 54),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R4, asm.R7, 20, asm.Byte),
		asm.StoreImm(asm.RFP, fpPolicyPort, 0, asm.Half),
		asm.Mov.Reg(asm.R3, asm.R4),
		asm.JEq.Imm(asm.R4, 6, "l4_6"),
		asm.JEq.Imm(asm.R4, 17, "l4_6"),
		asm.JNE.Imm(asm.R4, 58, "keys6"),
		asm.Mov.Imm(asm.R3, 1), // ICMPv6 is ICMP to policy
		asm.Ja.Label("keys6"),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol("l4_6"),
		asm.Add.Imm(asm.R0, 58),
		asm.JGT.Reg(asm.R0, asm.R8, "pass"),
		asm.LoadMem(asm.R0, asm.R7, 56, asm.Half),
		asm.StoreMem(asm.RFP, fpPolicyPort, asm.R0, asm.Half),
	}
	ins = append(ins, policyKeys("keys6", asm.R3, egress)...)
	ins = append(ins,
		asm.StoreImm(asm.RFP, fp6Src, 128, asm.Word),
		asm.StoreImm(asm.RFP, fp6Dst, 128, asm.Word))
	ins = append(ins, copy16(asm.RFP, fp6Src+4, asm.R7, 22)...)
	ins = append(ins, copy16(asm.RFP, fp6Dst+4, asm.R7, 38)...)
	ins = append(ins, copy16(asm.RFP, fpEvent6, asm.R7, 22)...)
	return append(ins, copy16(asm.RFP, fpEvent6+ev6Dst, asm.R7, 38)...)
}

// loadPacket6 reloads the packet pointers ("ip6" entry of bpf_lxc and
// bpf_overlay) and drops (shot) what is too short for an IPv6 header.
func loadPacket6(sym string, n int32, short string) asm.Instructions {
	first := asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word)
	if sym != "" {
		first = first.WithSymbol(sym)
	}
	return asm.Instructions{
		first,
		asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, n),
		asm.JGT.Reg(asm.R2, asm.R8, short),
	}
}

// lxc6 is bpf_lxc's IPv6 half ("ip6"): neighbour solicitations answered
// (nd6), multicast and an expiring hop limit dropped, a packet to a local
// endpoint redirected to its lxc with the hop limit decremented (IPv6
// has no header checksum), one to another node's pod CIDR tunnelled as
// IPv4's (the ipcache's source identity as VNI, the node's IPv4 address
// as the remote), and the rest dropped: the model's bpf_lxc has no IPv6
// route beyond the cluster's pods, nor across nodes in direct routing.
// The flow is recorded in the IPv6 conntrack map by the egress program,
// which runs first on every lxc.
func lxc6(km *Maps, cfg LxcConfig) asm.Instructions {
	ins := loadPacket6("ip6", 54, "shot")
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R7, 20, asm.Byte),
		asm.JNE.Imm(asm.R1, 58, "notnd6"),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 58),
		asm.JGT.Reg(asm.R2, asm.R8, "notnd6"),
		asm.LoadMem(asm.R1, asm.R7, 54, asm.Byte),
		asm.JLT.Imm(asm.R1, 133, "notnd6"),
		asm.JLE.Imm(asm.R1, 137, "nd6"),
		asm.LoadMem(asm.R1, asm.R7, 38, asm.Byte).WithSymbol("notnd6"),
		asm.JEq.Imm(asm.R1, 0xff, "shot"), // multicast
		asm.LoadMem(asm.R1, asm.R7, 21, asm.Byte),
		asm.JLE.Imm(asm.R1, 1, "shot"), // the hop limit would expire
		asm.StoreImm(asm.RFP, fp6Dst, 128, asm.Word),
	)
	ins = append(ins, lookupDst(ipv6(km), "remote6")...)
	ins = append(ins, loadPacket6("", 54, "shot")...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R7, 21, asm.Byte),
		asm.Add.Imm(asm.R1, -1),
		asm.StoreMem(asm.R7, 21, asm.R1, asm.Byte))
	ins = append(ins, redirectToEndpoint()...)
	ins = append(ins, tunnelOut6(km, cfg)...)
	return append(ins, ndResponder(cfg)...)
}

// tunnelOut6 is lxc6's "remote6": the IPv6 tunnel map's entry for the
// destination's node CIDR (the address masked to NodeMaskBits6), then
// the tunnel key and the redirect to cilium_vxlan as for IPv4.
func tunnelOut6(km *Maps, cfg LxcConfig) asm.Instructions {
	if cfg.VXLANIfIndex == 0 {
		return asm.Instructions{asm.Ja.Label("shot").WithSymbol("remote6")}
	}
	return tunnelTo(ipv6(km), cfg, cfg.NodeMaskBits6, "shot", loadPacket6("", 54, "shot"))
}

// ndResponder is lxc6's "nd6": a neighbour solicitation with its source
// link-layer address option (what Linux sends; 32 bytes of ICMPv6) from
// an address that is not unspecified, for a target that is not the
// sender's own, becomes in place the advertisement the model's
// ndpResponder sends (frame.NeighborAdvertisement: from the target, hop
// limit 255, flags router|solicited|override, cilium_host's MAC as the
// target link-layer address), with its checksum computed afresh
// (bpf_csum_diff over the addresses, the message and the pseudo-header's
// length and next header), and goes back out of the lxc. Everything else
// of neighbour and router discovery is dropped.
func ndResponder(cfg LxcConfig) asm.Instructions {
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R2, asm.R7).WithSymbol("nd6"),
		asm.Add.Imm(asm.R2, 86),
		asm.JGT.Reg(asm.R2, asm.R8, "shot"),
		asm.LoadMem(asm.R1, asm.R7, 54, asm.Byte),
		asm.JNE.Imm(asm.R1, 135, "shot"),
		asm.LoadMem(asm.R1, asm.R7, 18, asm.Half),
		asm.JNE.Imm(asm.R1, 0x2000, "shot"), // payload length 32
		asm.LoadMem(asm.R1, asm.R7, 78, asm.Half),
		asm.JNE.Imm(asm.R1, 0x0101, "shot"), // source link-layer address, 8 bytes
		// The source is not unspecified (duplicate address detection).
		asm.LoadMem(asm.R1, asm.R7, 22, asm.Word),
		asm.LoadMem(asm.R2, asm.R7, 26, asm.Word),
		asm.Or.Reg(asm.R1, asm.R2),
		asm.LoadMem(asm.R2, asm.R7, 30, asm.Word),
		asm.Or.Reg(asm.R1, asm.R2),
		asm.LoadMem(asm.R2, asm.R7, 34, asm.Word),
		asm.Or.Reg(asm.R1, asm.R2),
		asm.JEq.Imm(asm.R1, 0, "shot"),
	}
	// The target is not the sender's own address.
	for off := int16(0); off < 16; off += 4 {
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.R7, 22+off, asm.Word),
			asm.LoadMem(asm.R2, asm.R7, 62+off, asm.Word),
			asm.JNE.Reg(asm.R1, asm.R2, "answer6"))
	}
	ins = append(ins, asm.Ja.Label("shot"))
	mac := copyMAC(asm.R7, 0, asm.R7, 80) // Ethernet dst = the asker's link-layer address
	mac[0] = mac[0].WithSymbol("answer6")
	ins = append(ins, mac...)
	ins = append(ins, storeMAC(asm.R7, 6, cfg.HostMAC)...)
	ins = append(ins, copy16(asm.R7, 38, asm.R7, 22)...) // IPv6 dst = the asker
	ins = append(ins, copy16(asm.R7, 22, asm.R7, 62)...) // IPv6 src = the target
	ins = append(ins,
		asm.StoreImm(asm.R7, 21, 255, asm.Byte),    // hop limit
		asm.StoreImm(asm.R7, 54, 136, asm.Byte),    // neighbour advertisement
		asm.StoreImm(asm.R7, 55, 0, asm.Byte),      // code
		asm.StoreImm(asm.R7, 56, 0, asm.Half),      // checksum, computed below
		asm.StoreImm(asm.R7, 58, 0xe0, asm.Word),   // router, solicited, override
		asm.StoreImm(asm.R7, 78, 0x0102, asm.Half), // target link-layer address, 8 bytes
	)
	ins = append(ins, storeMAC(asm.R7, 80, cfg.HostMAC)...)
	sum := func(ptr asm.Register, off int32, n int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R1, 0),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Reg(asm.R3, ptr),
			asm.Add.Imm(asm.R3, off),
			asm.Mov.Imm(asm.R4, n),
			asm.FnCsumDiff.Call(),
			asm.Mov.Reg32(asm.R5, asm.R0),
		}
	}
	ins = append(ins,
		// The pseudo-header's upper-layer length (32) and next header
		// (58), as 32-bit big-endian words.
		asm.StoreImm(asm.RFP, fpNDPseudo, 0x20000000, asm.Word),
		asm.StoreImm(asm.RFP, fpNDPseudo+4, 0x3a000000, asm.Word),
		asm.Mov.Imm(asm.R5, 0))
	ins = append(ins, sum(asm.R7, 22, 32)...)
	ins = append(ins, sum(asm.R7, 54, 32)...)
	ins = append(ins, sum(asm.RFP, fpNDPseudo, 8)...)
	ins = append(ins,
		// Fold to 16 bits, complement.
		asm.Mov.Reg(asm.R1, asm.R5),
		asm.And.Imm(asm.R1, 0xffff),
		asm.RSh.Imm(asm.R5, 16),
		asm.Add.Reg(asm.R5, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R5),
		asm.And.Imm(asm.R1, 0xffff),
		asm.RSh.Imm(asm.R5, 16),
		asm.Add.Reg(asm.R5, asm.R1),
		asm.Xor.Imm(asm.R5, 0xffff),
	)
	ins = append(ins, loadPacket6("", 86, "shot")...)
	return append(ins,
		asm.StoreMem(asm.R7, 56, asm.R5, asm.Half),
		asm.LoadMem(asm.R1, asm.R6, skbIfIndex, asm.Word),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
}

// overlay6 is bpf_overlay's (and bpf_host's) IPv6 half: a packet for a
// local IPv6 endpoint is redirected to its lxc, the rest passes.
func overlay6(km *Maps) asm.Instructions {
	ins := loadPacket6("ip6", 54, "pass")
	ins = append(ins, lookupDst(ipv6(km), "pass")...)
	ins = append(ins, loadPacket6("", 54, "pass")...)
	return append(ins, redirectToEndpoint()...)
}
