package kmaps

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/internal/testutil"
)

var hostMAC = net.HardwareAddr{0x0a, 1, 2, 3, 4, 5}

func ipChecksumOK(b []byte) bool {
	return inetsum.IPv4Header(b[14:34]) == 0
}

// TestFromContainerRun runs bpf_lxc in the kernel (BPF_PROG_TEST_RUN) and
// checks what it does to frames: the ARP reply built in place, the
// rewrite of a packet to a local endpoint, and pass for the rest.
func TestFromContainerRun(t *testing.T) {
	testutil.RequireRoot(t)
	km := testMaps(t)
	prog := loader(t)(NewFromContainerProgram(km, LxcConfig{HostMAC: hostMAC}))
	podA, podB := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	lxcB := net.HardwareAddr{0x0a, 0, 0, 0, 0, 0xb}
	ipA, ipB, gw := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.1")
	if err := km.Endpoints.Put(gen3.EndpointKey{IP: ipB.As4()}, gen3.EndpointInfo{IfIndex: 1, Identity: 257, MAC: [6]byte(podB), NodeMAC: [6]byte(lxcB)}); err != nil {
		t.Fatal(err)
	}
	ps := frame.NewParser()
	cases := []struct {
		name  string
		in    []byte
		ret   uint32
		check func(t *testing.T, out []byte)
	}{
		{"arp-gateway", frame.ARPRequest(podA, ipA, gw), TCActRedirect, func(t *testing.T, out []byte) {
			want := frame.ARPReply(hostMAC, gw, podA, ipA)
			if !bytes.Equal(out[:len(want)], want) {
				t.Errorf("reply\n% x\nwant\n% x", out, want)
			}
		}},
		{"arp-peer", frame.ARPRequest(podA, ipA, ipB), TCActRedirect, func(t *testing.T, out []byte) {
			p, err := ps.Parse(out)
			if err != nil || p.ARP.Operation != layers.ARPReply || !bytes.Equal(p.ARP.SourceHwAddress, hostMAC) {
				t.Errorf("not a reply from cilium_host: %v %+v", err, p.ARP)
			}
		}},
		{"arp-gratuitous", frame.ARPRequest(podA, ipA, ipA), TCActOK, nil},
		{"to-endpoint", frame.UDP(frame.IPv4{SrcMAC: podA, DstMAC: hostMAC, Src: ipA, Dst: ipB, TTL: 64}, 40000, 7, []byte("hi")), TCActRedirect,
			func(t *testing.T, out []byte) {
				if !bytes.Equal(out[0:6], podB) || !bytes.Equal(out[6:12], lxcB) {
					t.Errorf("MACs %v -> %v, want %v -> %v", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]), lxcB, podB)
				}
				if out[22] != 63 || !ipChecksumOK(out) {
					t.Errorf("TTL %d, checksum ok %v", out[22], ipChecksumOK(out))
				}
			}},
		{"not-local", frame.UDP(frame.IPv4{SrcMAC: podA, DstMAC: hostMAC, Src: ipA, Dst: netip.MustParseAddr("10.0.9.9")}, 1, 7, nil), TCActOK, nil},
		{"ttl-1", frame.UDP(frame.IPv4{SrcMAC: podA, DstMAC: hostMAC, Src: ipA, Dst: ipB, TTL: 1}, 1, 7, nil), TCActOK, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := make([]byte, len(c.in)+64)
			opts := &ebpf.RunOptions{Data: c.in, DataOut: out}
			ret, err := prog.Run(opts)
			if err != nil {
				if errors.Is(err, ebpf.ErrNotSupported) {
					testutil.Unavailable(t, "kernel lacks BPF_PROG_TEST_RUN for tc: "+err.Error())
				}
				t.Fatal(err)
			}
			if ret != c.ret {
				t.Fatalf("returned %d, want %d", ret, c.ret)
			}
			if c.check != nil {
				c.check(t, opts.DataOut)
			}
		})
	}
}
