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

// FromContainerInstructions is bpf_lxc's from-container program of the Go
// model for the kernel (tc ingress on every lxc device), without policy
// and conntrack:
//   - an ARP request from the pod is turned into the reply in place, with
//     hostMAC (cilium_host's) as the answer, and sent back out of the same
//     lxc (bpf_redirect to skb->ifindex), so pods never ARP each other;
//   - an IPv4 packet to a local endpoint gets the TTL decremented (checksum
//     fixed with bpf_l3_csum_replace), its MACs rewritten from the
//     endpoints map, and is redirected to the endpoint's lxc: lxc → BPF →
//     lxc, no bridge;
//   - anything else goes on to the host stack (TC_ACT_OK).
func FromContainerInstructions(km *Maps, hostMAC net.HardwareAddr) asm.Instructions {
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 14),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
		asm.JEq.Imm(asm.R2, 0x0608, "arp"),  // ETH_P_ARP in network order
		asm.JNE.Imm(asm.R2, 0x0008, "pass"), // ETH_P_IP

		// IPv4 to a local endpoint?
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 34),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R1, asm.R7, 22, asm.Byte),
		asm.JLE.Imm(asm.R1, 1, "pass"), // TTL would expire: let the stack answer
		asm.LoadMem(asm.R0, asm.R7, 30, asm.Word),
		asm.StoreMem(asm.RFP, fpEPKey, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.R7, 22, asm.Half), // TTL and protocol, as in memory
		asm.StoreMem(asm.RFP, -48, asm.R0, asm.Half),
		asm.LoadMapPtr(asm.R1, km.Endpoints.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpEPKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
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
		asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 34),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R4, asm.RFP, -50, asm.Half),
		asm.StoreMem(asm.R7, 22, asm.R4, asm.Half),
	}
	ins = append(ins, copyMAC(asm.R7, 0, asm.R9, epMAC)...)
	ins = append(ins, copyMAC(asm.R7, 6, asm.R9, epNodeMAC)...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.R9, epIfIndex, asm.Word),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),

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

		asm.Mov.Imm(asm.R0, TCActOK).WithSymbol("pass"),
		asm.Return(),
	)
	return ins
}

// NewFromContainerProgram loads FromContainerInstructions as a tc program.
func NewFromContainerProgram(km *Maps, hostMAC net.HardwareAddr) (*ebpf.Program, error) {
	if len(hostMAC) != 6 {
		return nil, fmt.Errorf("load from-container program: host MAC %v must be 6 bytes", hostMAC)
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf_lxc", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
		Instructions: FromContainerInstructions(km, hostMAC)})
	if err != nil {
		return nil, fmt.Errorf("load from-container program: %w", err)
	}
	return p, nil
}
