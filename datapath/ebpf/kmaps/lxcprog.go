package kmaps

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// TCActRedirect is what bpf_redirect returns for a tc program.
const TCActRedirect = 7

// skbIfIndex is the offset of ifindex in __sk_buff.
const skbIfIndex = 40

// Offsets in EndpointInfo (see ebpf.EndpointInfo).
const (
	epIfIndex = 0
	epMAC     = 16
	epNodeMAC = 22
)

// le32 and le16 are MAC bytes as the immediates of little-endian stores.
func le32(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
func le16(b []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(b))) }

// copyMAC copies 6 bytes from src+so to dst+do through R0.
// loadPacket loads the packet pointers into R7 (data) and R8 (data_end),
// again after a helper call invalidated them, and jumps to "pass" unless
// the packet has n bytes. R6 holds the skb.
func loadPacket(n int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, n),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
	}
}

// mapLookup looks the key at fp+off up in m: R0 is then the value, or 0.
func mapLookup(m *ebpf.Map, off int16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(off)),
		asm.FnMapLookupElem.Call(),
	}
}

// redirectToEndpoint rewrites the packet's MACs (R7) from the endpoints
// map entry in R9 and redirects it to the endpoint's lxc.
func redirectToEndpoint() asm.Instructions {
	ins := append(copyMAC(asm.R7, 0, asm.R9, epMAC), copyMAC(asm.R7, 6, asm.R9, epNodeMAC)...)
	return append(ins,
		asm.LoadMem(asm.R1, asm.R9, epIfIndex, asm.Word),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
}

func copyMAC(dst asm.Register, do int16, src asm.Register, so int16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R0, src, so, asm.Word),
		asm.StoreMem(dst, do, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, src, so+4, asm.Half),
		asm.StoreMem(dst, do+4, asm.R0, asm.Half),
	}
}

// storeMAC writes mac at dst+off.
func storeMAC(dst asm.Register, off int16, mac net.HardwareAddr) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(dst, off, le32(mac[0:4]), asm.Word),
		asm.StoreImm(dst, off+4, le16(mac[4:6]), asm.Half),
	}
}

// LxcConfig is what bpf_lxc is compiled with on a node.
type LxcConfig struct {
	HostMAC net.HardwareAddr // cilium_host's MAC, the answer to every ARP
	// VXLANIfIndex is cilium_vxlan's ifindex; 0 leaves packets to pods of
	// other nodes to the host stack (direct routing).
	VXLANIfIndex int
	NodeMaskBits int // the node CIDRs' prefix length, for the tunnel map key
	// NodeMaskBits6 is the IPv6 node CIDRs' prefix length, for the IPv6
	// tunnel map key (0: no IPv6 pod crosses nodes).
	NodeMaskBits6 int
}

// ctRecord records the pod's flow in the conntrack map, as the Go model's
// ctTrack does for everything a pod sends: R7/R8 are the packet.
func ctRecord(km *Maps) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R3, asm.R7, 14, asm.Byte),
		asm.And.Imm(asm.R3, 0x0f),
		asm.LSh.Imm(asm.R3, 2),
		asm.JLT.Imm(asm.R3, 20, "pass"),
		asm.LoadMem(asm.R4, asm.R7, 23, asm.Byte),
	}
	ins = append(ins, ctTuple(ipv4(km), "fwd_", false, "pass")...)
	return append(ins, ctUpdate(km.CT, fpCTKey)...)
}

// bpf_tunnel_key layout (struct bpf_tunnel_key, 28 bytes).
const (
	fpTunnelKey  = -80 // 28 bytes, 8-aligned
	tunnelKeyLen = 28
	fpTunnelMap  = -52 // TunnelKey
)

// FromContainerInstructions is bpf_lxc's from-container program of the Go
// model for the kernel (tc ingress on every lxc device); policy runs as its
// own program before it (see PolicyInstructions), and every IPv4 packet's
// flow is recorded in the conntrack map first:
//   - an ARP request from the pod is turned into the reply in place, with
//     cfg.HostMAC (cilium_host's) as the answer, and sent back out of the
//     same lxc (bpf_redirect to skb->ifindex), so pods never ARP each other;
//   - an IPv4 packet to a local endpoint gets the TTL decremented (checksum
//     fixed with bpf_l3_csum_replace), its MACs rewritten from the
//     endpoints map, and is redirected to the endpoint's lxc: lxc → BPF →
//     lxc, no bridge;
//   - with cfg.VXLANIfIndex set, an IPv4 packet whose node CIDR is in the
//     tunnel map gets a tunnel key (remote node IP, the source identity
//     from the ipcache as VNI) and is redirected to cilium_vxlan; without
//     it (direct routing) other IPv4 packets are handed to the host stack
//     to route, marked as addressed to the host;
//   - anything else goes on to the host stack (TC_ACT_OK).
func FromContainerInstructions(km *Maps, cfg LxcConfig) asm.Instructions {
	hostMAC := cfg.HostMAC
	ins := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, loadPacket(14)...)
	ins = append(ins, asm.Instructions{
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
		asm.JEq.Imm(asm.R2, 0x0608, "arp"), // ETH_P_ARP in network order
		asm.JEq.Imm(asm.R2, ethIPv6, "ip6"),
		asm.JNE.Imm(asm.R2, 0x0008, "pass"), // ETH_P_IP

		// IPv4 to a local endpoint?
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 34),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R1, asm.R7, 22, asm.Byte),
		asm.JLE.Imm(asm.R1, 1, "pass"), // TTL would expire: let the stack answer
	}...)
	ins = append(ins, ctRecord(km)...)
	ins = append(ins, asm.Instructions{
		asm.LoadMem(asm.R0, asm.R7, 30, asm.Word),
		asm.StoreMem(asm.RFP, fpEPKey, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.R7, 22, asm.Half), // TTL and protocol, as in memory
		asm.StoreMem(asm.RFP, -48, asm.R0, asm.Half),
	}...)
	ins = append(ins, mapLookup(km.Endpoints, fpEPKey)...)
	ins = append(ins, asm.Instructions{
		asm.JEq.Imm(asm.R0, 0, "remote"),
		asm.Mov.Reg(asm.R9, asm.R0),
		// TTL - 1: fix the checksum first (the helper invalidates packet
		// pointers), then reload them and write.
		asm.LoadMem(asm.R3, asm.RFP, -48, asm.Half),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.Add.Imm(asm.R4, -1), // the TTL is the low byte in memory order
		asm.StoreMem(asm.RFP, -50, asm.R4, asm.Half),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, 14+10),
		asm.Mov.Imm(asm.R5, 2),
		asm.FnL3CsumReplace.Call(),
	}...)
	ins = append(ins, loadPacket(34)...)
	ins = append(ins, asm.Instructions{
		asm.LoadMem(asm.R4, asm.RFP, -50, asm.Half),
		asm.StoreMem(asm.R7, 22, asm.R4, asm.Half),
	}...)
	ins = append(ins, redirectToEndpoint()...)
	ins = append(ins,
		// ARP: answer every request (but gratuitous ones) with hostMAC.
		asm.Mov.Reg(asm.R2, asm.R7).WithSymbol("arp"),
		asm.Add.Imm(asm.R2, 42),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, 20, asm.Half),
		asm.JNE.Imm(asm.R2, 0x0100, "pass"),       // ARPOP_REQUEST
		asm.LoadMem(asm.R3, asm.R7, 38, asm.Word), // target IP
		asm.LoadMem(asm.R4, asm.R7, 28, asm.Word), // sender IP
		asm.JEq.Reg(asm.R3, asm.R4, "pass"),
		asm.StoreImm(asm.R7, 20, 0x0200, asm.Half), // ARPOP_REPLY
	)
	ins = append(ins, copyMAC(asm.R7, 32, asm.R7, 22)...) // target hw = sender hw
	ins = append(ins, copyMAC(asm.R7, 0, asm.R7, 22)...)  // Ethernet dst = sender hw
	ins = append(ins, storeMAC(asm.R7, 22, hostMAC)...)   // sender hw = cilium_host
	ins = append(ins, storeMAC(asm.R7, 6, hostMAC)...)    // Ethernet src = cilium_host
	ins = append(ins,
		asm.StoreMem(asm.R7, 38, asm.R4, asm.Word), // target IP = asker
		asm.StoreMem(asm.R7, 28, asm.R3, asm.Word), // sender IP = what was asked
		asm.LoadMem(asm.R1, asm.R6, skbIfIndex, asm.Word),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
	ins = append(ins, tunnelOut(km, cfg)...)
	ins = append(ins, lxc6(km, cfg)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R0, TCActOK).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, TCActShot).WithSymbol("shot"),
		asm.Return(),
	)
	return ins
}

// tunnelOut is the "remote" branch of bpf_lxc: tunnel map lookup on the
// destination's node CIDR, tunnel key, redirect to cilium_vxlan. The
// destination IP is in the endpoint key slot; packet pointers are stale.
func tunnelOut(km *Maps, cfg LxcConfig) asm.Instructions {
	if cfg.VXLANIfIndex == 0 {
		// Direct routing: the host stack forwards the packet. It was
		// addressed to cilium_host's MAC, not the lxc's, so mark it
		// for this host (bpf_skb_change_type PACKET_HOST).
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("remote"),
			asm.Mov.Imm(asm.R2, 0), // PACKET_HOST
			asm.FnSkbChangeType.Call(),
			asm.Ja.Label("pass"),
		}
	}
	return tunnelTo(ipv4(km), cfg, cfg.NodeMaskBits, "pass", loadPacket(34))
}

// tunnelTo is bpf_lxc's "remote" (with the family's suffix): the
// family's tunnel map entry for the destination's node CIDR (its
// endpoint key masked to bits), else miss; then the source identity
// from the ipcache (the source address is still in the packet: reload
// refreshes the pointers), the tunnel key and the redirect to
// cilium_vxlan (setTunnelKey).
func tunnelTo(f family, cfg LxcConfig, bits int, miss string, reload asm.Instructions) asm.Instructions {
	var ins asm.Instructions
	for i := range f.addrLen / 4 {
		var m [4]byte
		for j := range 4 {
			b := min(max(bits-8*(4*int(i)+j), 0), 8)
			m[j] = byte(0xff << (8 - b))
		}
		off := 4 * i
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, f.dstEP+off, asm.Word),
			asm.Mov.Imm32(asm.R2, int32(binary.LittleEndian.Uint32(m[:]))),
			asm.And.Reg32(asm.R1, asm.R2),
			asm.StoreMem(asm.RFP, f.tunKey+off, asm.R1, asm.Word))
	}
	ins[0] = ins[0].WithSymbol("remote" + f.sfx)
	ins = append(ins, mapLookup(f.tunnel, f.tunKey)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, miss),
		asm.Mov.Reg(asm.R9, asm.R0))
	ins = append(ins, reload...)
	ins = append(ins, asm.StoreImm(asm.RFP, f.srcIPC, int64(8*f.addrLen), asm.Word))
	ins = append(ins, copyWords(asm.R0, asm.RFP, f.srcIPC+4, asm.R7, f.pktSrc, f.addrLen)...)
	ins = append(ins, mapLookup(f.ipcache, f.srcIPC)...)
	return append(ins, setTunnelKey(cfg, f.sfx)...)
}

// setTunnelKey ends both families' tunnel paths: R0 is the source's
// ipcache entry (or 0: world), R9 the tunnel map's value. It sets the
// tunnel key (the identity as VNI, the node's IPv4 address as the
// remote: both families cross the IPv4 underlay) and redirects to
// cilium_vxlan; a failure drops. sfx keeps each family's labels apart.
func setTunnelKey(cfg LxcConfig, sfx string) asm.Instructions {
	var ins asm.Instructions
	for off := int16(0); off < tunnelKeyLen; off += 4 {
		ins = append(ins, asm.StoreImm(asm.RFP, fpTunnelKey+off, 0, asm.Word))
	}
	return append(ins,
		asm.Mov.Imm(asm.R1, 2), // world
		asm.JEq.Imm(asm.R0, 0, "vni"+sfx),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpTunnelKey, asm.R1, asm.Word).WithSymbol("vni"+sfx), // tunnel_id
		asm.LoadMem(asm.R1, asm.R9, 0, asm.Word),                                   // TunnelValue.NodeIP, network order
		asm.HostTo(asm.BE, asm.R1, asm.Word),                                       // remote_ipv4 is in host order
		asm.StoreMem(asm.RFP, fpTunnelKey+4, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpTunnelKey+21, 64, asm.Byte), // tunnel_ttl
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTunnelKey),
		asm.Mov.Imm(asm.R3, tunnelKeyLen),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkbSetTunnelKey.Call(),
		asm.JNE.Imm(asm.R0, 0, "shot"),
		asm.Mov.Imm(asm.R1, int32(cfg.VXLANIfIndex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
}

// OverlayInstructions is bpf_overlay (tc ingress on cilium_vxlan): a
// decapsulated packet for a local endpoint gets its MACs rewritten from
// the endpoints map and is redirected to the endpoint's lxc; anything else
// goes on to the host stack.
func OverlayInstructions(km *Maps) asm.Instructions {
	ins := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, loadPacket(34)...)
	ins = append(ins,
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
		asm.JEq.Imm(asm.R2, ethIPv6, "ip6"),
		asm.JNE.Imm(asm.R2, 0x0008, "pass"))
	ins = append(ins, lookupDst(ipv4(km), "pass")...)
	ins = append(ins, loadPacket(34)...)
	ins = append(ins, redirectToEndpoint()...)
	ins = append(ins, overlay6(km)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R0, TCActOK).WithSymbol("pass"),
		asm.Return(),
	)
	return ins
}

// NewOverlayProgram loads OverlayInstructions as a tc program for
// cilium_vxlan.
func NewOverlayProgram(km *Maps) (*ebpf.Program, error) {
	return newToEndpoint(km, "bpf_overlay")
}

// NewHostProgram loads the same delivery to local endpoints as bpf_host,
// for the NICs in direct-routing mode: packets the leaf routed to a pod of
// this node go straight to its lxc.
func NewHostProgram(km *Maps) (*ebpf.Program, error) {
	return newToEndpoint(km, "bpf_host")
}

func newToEndpoint(km *Maps, name string) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: OverlayInstructions(km)})
	if err != nil {
		return nil, fmt.Errorf("load %s program: %w", name, err)
	}
	return p, nil
}

// NewFromContainerProgram loads FromContainerInstructions as a tc program.
func NewFromContainerProgram(km *Maps, cfg LxcConfig) (*ebpf.Program, error) {
	if len(cfg.HostMAC) != 6 {
		return nil, fmt.Errorf("load from-container program: host MAC %v must be 6 bytes", cfg.HostMAC)
	}
	if cfg.VXLANIfIndex != 0 && (cfg.NodeMaskBits < 1 || cfg.NodeMaskBits > 32) {
		return nil, fmt.Errorf("load from-container program: node mask /%d: want 1 to 32 with a tunnel", cfg.NodeMaskBits)
	}
	if cfg.NodeMaskBits6 < 0 || cfg.NodeMaskBits6 > 128 {
		return nil, fmt.Errorf("load from-container program: IPv6 node mask /%d: want 0 to 128", cfg.NodeMaskBits6)
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf_lxc", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: FromContainerInstructions(km, cfg)})
	if err != nil {
		return nil, fmt.Errorf("load from-container program: %w", err)
	}
	return p, nil
}
