package kmaps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
)

// run6 runs prog on in (BPF_PROG_TEST_RUN) and returns its verdict and
// the frame it left.
func run6(t *testing.T, prog *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+64)
	opts := &ebpf.RunOptions{Data: in, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			testutil.Unavailable(t, "kernel lacks BPF_PROG_TEST_RUN for tc: "+err.Error())
		}
		t.Fatal(err)
	}
	return ret, opts.DataOut
}

var (
	pod6A, pod6B = netip.MustParseAddr("fd10::2"), netip.MustParseAddr("fd10::3")
	gw6          = netip.MustParseAddr("fd10::1")
	remote6      = netip.MustParseAddr("fd10::105") // node CIDR fd10::100/120
)

// TestFromContainerRun6 runs bpf_lxc's IPv6 half: the neighbour
// advertisement it builds in place is the model's byte for byte, a
// packet to a local endpoint is rewritten and redirected with its hop
// limit decremented, one to another node's pod CIDR is tunnelled, and
// multicast, an expiring hop limit, other neighbour discovery and an
// unknown node are dropped.
func TestFromContainerRun6(t *testing.T) {
	testutil.RequireRoot(t)
	km := testMaps(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	prog := loader(t)(NewFromContainerProgram(km, LxcConfig{HostMAC: hostMAC, VXLANIfIndex: lo.Index, NodeMaskBits: 24, NodeMaskBits6: 120}))
	podA, podB := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	lxcB := net.HardwareAddr{0x0a, 0, 0, 0, 0, 0xb}
	if err := km.Endpoints6.Put(gen3.EndpointKey6{IP: pod6B.As16()}, gen3.EndpointInfo{IfIndex: 1, Identity: 257, MAC: [6]byte(podB), NodeMAC: [6]byte(lxcB)}); err != nil {
		t.Fatal(err)
	}
	node := netip.MustParseAddr("fd10::100")
	if err := km.Tunnel6.Put(gen3.TunnelKey6{IP: node.As16()}, gen3.TunnelValue{NodeIP: [4]byte{172, 16, 0, 2}}); err != nil {
		t.Fatal(err)
	}
	h := func(dst netip.Addr, hop uint8) frame.IPv4 {
		return frame.IPv4{SrcMAC: podA, DstMAC: hostMAC, Src: pod6A, Dst: dst, TTL: hop}
	}
	na := func(target netip.Addr) func(t *testing.T, out []byte) {
		return func(t *testing.T, out []byte) {
			want := frame.NeighborAdvertisement(hostMAC, target, podA, pod6A, frame.NARouter|frame.NASolicited|frame.NAOverride)
			if !bytes.Equal(out[:len(want)], want) {
				t.Errorf("advertisement\n% x\nwant\n% x", out[:len(want)], want)
			}
		}
	}
	cases := []struct {
		name  string
		in    []byte
		ret   uint32
		check func(t *testing.T, out []byte)
	}{
		{"ns-gateway", frame.NeighborSolicitation(podA, pod6A, gw6), TCActRedirect, na(gw6)},
		{"ns-peer", frame.NeighborSolicitation(podA, pod6A, pod6B), TCActRedirect, na(pod6B)},
		{"ns-own-address", frame.NeighborSolicitation(podA, pod6A, pod6A), TCActShot, nil},
		{"ns-dad", frame.NeighborSolicitation(podA, netip.IPv6Unspecified(), pod6A), TCActShot, nil},
		{"unsolicited-na", frame.UnsolicitedNA(podA, pod6A), TCActShot, nil},
		{"to-endpoint", frame.UDP(h(pod6B, 64), 40000, 7, []byte("hi")), TCActRedirect, func(t *testing.T, out []byte) {
			if !bytes.Equal(out[0:6], podB) || !bytes.Equal(out[6:12], lxcB) {
				t.Errorf("MACs %v -> %v, want %v -> %v", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]), lxcB, podB)
			}
			if out[21] != 63 {
				t.Errorf("hop limit %d, want 63", out[21])
			}
		}},
		{"tunnel", frame.UDP(h(remote6, 64), 40000, 7, nil), TCActRedirect, nil},
		{"no-tunnel", frame.UDP(h(netip.MustParseAddr("fd10::2:5"), 64), 40000, 7, nil), TCActShot, nil},
		{"multicast", frame.UDP(h(netip.MustParseAddr("ff02::16"), 1), 1, 7, nil), TCActShot, nil},
		{"hop-limit-1", frame.UDP(h(pod6B, 1), 1, 7, nil), TCActShot, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, out := run6(t, prog, c.in)
			if ret != c.ret {
				t.Fatalf("returned %d, want %d", ret, c.ret)
			}
			if c.check != nil {
				c.check(t, out)
			}
		})
	}
}

// TestOverlayRun6: bpf_overlay hands a decapsulated IPv6 packet to its
// local endpoint's lxc and lets the rest pass.
func TestOverlayRun6(t *testing.T) {
	testutil.RequireRoot(t)
	km := testMaps(t)
	prog := loader(t)(NewOverlayProgram(km))
	podB, lxcB := net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, net.HardwareAddr{0x0a, 0, 0, 0, 0, 0xb}
	if err := km.Endpoints6.Put(gen3.EndpointKey6{IP: pod6B.As16()}, gen3.EndpointInfo{IfIndex: 1, Identity: 257, MAC: [6]byte(podB), NodeMAC: [6]byte(lxcB)}); err != nil {
		t.Fatal(err)
	}
	in := frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: hostMAC, Src: remote6, Dst: pod6B}, 1, 7, nil)
	ret, out := run6(t, prog, in)
	if ret != TCActRedirect || !bytes.Equal(out[0:6], podB) || !bytes.Equal(out[6:12], lxcB) {
		t.Errorf("to a local endpoint: returned %d, MACs %v -> %v", ret, net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]))
	}
	in = frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: hostMAC, Src: remote6, Dst: pod6A}, 1, 7, nil)
	if ret, _ := run6(t, prog, in); ret != TCActOK {
		t.Errorf("to no local endpoint: returned %d, want pass", ret)
	}
}

// TestPolicyRun6 runs the ingress and egress checks on IPv6 packets:
// an open endpoint, an allow entry (ICMPv6 matching an ICMP rule), a
// deny entry, default deny, and a reply to a flow the egress program
// recorded in the IPv6 conntrack map (but never an echo request); and
// an egress-enforcing pod's allow, deny, default deny and world entries;
// each verdict with its IPv6 flow record and direction.
func TestPolicyRun6(t *testing.T) {
	testutil.RequireRoot(t)
	km := testMaps(t)
	events, rd := testEvents(t)
	load := loader(t)
	ingress := load(NewPolicyProgramWith(km, PolicyConfig{Pass: TCActOK, Events: events}))
	egress := load(NewEgressProgram(km, PolicyConfig{Pass: TCActOK, Events: events}))

	// A (256, local, open), B (257, local, enforcing) and C (259, local,
	// enforcing egress); R (258) remote.
	const idA, idB, idR, idC = 256, 257, 258, 259
	podC, world6 := netip.MustParseAddr("fd10::4"), netip.MustParseAddr("2001:db8::1")
	put := func(m *ebpf.Map, k, v any) {
		t.Helper()
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	put(km.Endpoints6, gen3.EndpointKey6{IP: pod6A.As16()}, gen3.EndpointInfo{IfIndex: 1, Identity: idA})
	put(km.Endpoints6, gen3.EndpointKey6{IP: pod6B.As16()}, gen3.EndpointInfo{IfIndex: 2, Identity: idB, Flags: gen3.EndpointPolicyEnforced})
	put(km.Endpoints6, gen3.EndpointKey6{IP: podC.As16()}, gen3.EndpointInfo{IfIndex: 3, Identity: idC, Flags: gen3.EndpointEgressEnforced})
	for a, id := range map[netip.Addr]uint32{pod6A: idA, pod6B: idB, remote6: idR, podC: idC} {
		put(km.IPCache6, gen3.IPCacheKey6{PrefixLen: 128, IP: a.As16()}, gen3.IPCacheValue{Identity: id})
	}
	allowICMP := gen3.PolicyKey{SrcIdentity: idA, DstIdentity: idB, Proto: uint8(gen3.ProtoICMP)}
	denyUDP := gen3.PolicyKey{SrcIdentity: idR, DstIdentity: idB, Proto: uint8(gen3.ProtoUDP), DPort: [2]byte{0, 53}}
	put(km.Policy, allowICMP, gen3.PolicyEntry{Action: gen3.PolicyAllow})
	put(km.Policy, denyUDP, gen3.PolicyEntry{Action: gen3.PolicyDeny})
	egAllow := gen3.NewEgressKey(idC, idR, gen3.ProtoUDP, 53)
	egDeny := gen3.NewEgressKey(idC, idB, gen3.ProtoTCP, 80)
	egWorld := gen3.NewEgressKey(idC, gen3.IdentityWorld, gen3.ProtoAny, 0)
	put(km.Policy, egAllow, gen3.PolicyEntry{Action: gen3.PolicyAllow})
	put(km.Policy, egDeny, gen3.PolicyEntry{Action: gen3.PolicyDeny})
	put(km.Policy, egWorld, gen3.PolicyEntry{Action: gen3.PolicyAllow})

	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	hdr := func(src, dst netip.Addr) frame.IPv4 { return frame.IPv4{SrcMAC: mac, DstMAC: mac, Src: src, Dst: dst} }
	type rec struct {
		verdict, reason uint8
		key             gen3.PolicyKey
		dir             uint8
	}
	cases := []struct {
		name string
		prog *ebpf.Program
		in   []byte
		ret  uint32
		want *rec // nil: no record
	}{
		{"open-endpoint", ingress, frame.UDP(hdr(pod6B, pod6A), 1000, 7, nil), TCActOK, &rec{VerdictForwarded, ReasonNotEnforced, gen3.PolicyKey{}, DirIngress}},
		{"allow-icmpv6-by-icmp-rule", ingress, frame.ICMPEcho(hdr(pod6A, pod6B), false, 9, 1, nil), TCActOK, &rec{VerdictForwarded, ReasonPolicyAllow, allowICMP, DirIngress}},
		{"deny-entry", ingress, frame.UDP(hdr(remote6, pod6B), 1000, 53, nil), TCActShot, &rec{VerdictDropped, ReasonPolicyDeny, denyUDP, DirIngress}},
		{"default-deny", ingress, frame.UDP(hdr(remote6, pod6B), 1000, 7, nil), TCActShot, &rec{VerdictDropped, ReasonDefaultDeny, gen3.PolicyKey{}, DirIngress}},
		// B starts a flow to R: its egress (not enforced) records it;
		// R's reply then passes B's ingress as a conntrack reply.
		{"egress-records", egress, frame.UDP(hdr(pod6B, remote6), 4000, 7, nil), TCActOK, nil},
		{"ct-reply", ingress, frame.UDP(hdr(remote6, pod6B), 7, 4000, nil), TCActOK, &rec{VerdictForwarded, ReasonCTReply, gen3.PolicyKey{}, DirIngress}},
		{"egress-records-echo", egress, frame.ICMPEcho(hdr(pod6B, remote6), false, 77, 1, nil), TCActOK, nil},
		{"ct-echo-reply", ingress, frame.ICMPEcho(hdr(remote6, pod6B), true, 77, 1, nil), TCActOK, &rec{VerdictForwarded, ReasonCTReply, gen3.PolicyKey{}, DirIngress}},
		{"echo-request-never-a-reply", ingress, frame.ICMPEcho(hdr(remote6, pod6B), false, 77, 1, nil), TCActShot, &rec{VerdictDropped, ReasonDefaultDeny, gen3.PolicyKey{}, DirIngress}},
		{"not-local", ingress, frame.UDP(hdr(pod6A, remote6), 1, 7, nil), TCActOK, nil},
		// C's egress policy, on its own node as the packet leaves it.
		{"egress-allow", egress, frame.UDP(hdr(podC, remote6), 5000, 53, nil), TCActOK, &rec{VerdictForwarded, ReasonPolicyAllow, egAllow, DirEgress}},
		{"egress-deny", egress, frame.TCP(hdr(podC, pod6B), 5000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil), TCActShot, &rec{VerdictDropped, ReasonPolicyDeny, egDeny, DirEgress}},
		{"egress-default-deny", egress, frame.UDP(hdr(podC, remote6), 5000, 54, nil), TCActShot, &rec{VerdictDropped, ReasonDefaultDeny, gen3.PolicyKey{}, DirEgress}},
		{"egress-world", egress, frame.UDP(hdr(podC, world6), 5000, 9, nil), TCActOK, &rec{VerdictForwarded, ReasonPolicyAllow, egWorld, DirEgress}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, _ := run6(t, c.prog, c.in)
			if ret != c.ret {
				t.Errorf("returned %d, want %d", ret, c.ret)
			}
			rd.SetDeadline(time.Now())
			sample, err := rd.Read()
			if c.want == nil {
				if err == nil {
					t.Fatalf("unexpected record % x", sample.RawSample)
				}
				return
			}
			if err != nil {
				t.Fatalf("no flow record: %v", err)
			}
			if len(sample.RawSample) != flowRecord6Len {
				t.Fatalf("record of %d bytes, want the IPv6 record's %d", len(sample.RawSample), flowRecord6Len)
			}
			r, src, dst, err := ParseFlow(sample.RawSample)
			if err != nil {
				t.Fatal(err)
			}
			wantSrc, wantDst := netip.AddrFrom16([16]byte(c.in[22:38])), netip.AddrFrom16([16]byte(c.in[38:54]))
			if src != wantSrc || dst != wantDst {
				t.Errorf("record %v -> %v, want %v -> %v", src, dst, wantSrc, wantDst)
			}
			if r.Verdict != c.want.verdict || r.Reason != c.want.reason || r.Direction != c.want.dir || r.Nanos == 0 {
				t.Errorf("record %+v, want verdict %d reason %d", r, c.want.verdict, c.want.reason)
			}
			if (c.want.reason == ReasonPolicyAllow || c.want.reason == ReasonPolicyDeny) && r.Key != c.want.key {
				t.Errorf("record's key %+v, want %+v", r.Key, c.want.key)
			}
		})
	}
	var k gen3.CTKey6
	var v gen3.CTEntry
	n := 0
	for it := km.CT6.Iterate(); it.Next(&k, &v); {
		n++
	}
	if n == 0 {
		t.Error("nothing in the IPv6 conntrack map")
	}
	if err := km.CT.Iterate().Err(); err != nil {
		t.Fatal(err)
	}
}

// TestFlowRecord6Layout: the IPv6 record is its addresses, then the
// IPv4 record's fields after its own at the same stack slots (the
// programs write both through emitTail), and ParseFlow tells the two
// apart by their length.
func TestFlowRecord6Layout(t *testing.T) {
	if n := binary.Size(flowRecord6{}); n != flowRecord6Len {
		t.Fatalf("flowRecord6 is %d bytes, the programs write %d", n, flowRecord6Len)
	}
	if fpEvent6+flowRecord6Len != fpEvent+flowRecordLen {
		t.Fatalf("the IPv6 record ends at %d, the IPv4 one at %d: their tails must share slots", fpEvent6+flowRecord6Len, fpEvent+flowRecordLen)
	}
	var r6 flowRecord6
	var r FlowRecord
	if got, want := unsafe.Offsetof(r6.SrcIdentity), unsafe.Offsetof(r.SrcIdentity)+24; got != want {
		t.Errorf("flowRecord6.SrcIdentity at %d, want %d", got, want)
	}
	if got, want := unsafe.Offsetof(r6.Nanos), unsafe.Offsetof(r.Nanos)+24; got != want {
		t.Errorf("flowRecord6.Nanos at %d, want %d", got, want)
	}
	b := make([]byte, flowRecord6Len)
	copy(b, pod6A.AsSlice())
	copy(b[ev6Dst:], pod6B.AsSlice())
	b[24+evVerdict], b[24+evReason], b[24+evProto] = VerdictDropped, ReasonDefaultDeny, 1
	got, src, dst, err := ParseFlow(b)
	if err != nil || src != pod6A || dst != pod6B || got.Verdict != VerdictDropped || got.Reason != ReasonDefaultDeny || got.Proto != 1 {
		t.Errorf("ParseFlow: %+v %v -> %v, %v", got, src, dst, err)
	}
	b4 := make([]byte, flowRecordLen)
	copy(b4, []byte{10, 0, 0, 2, 10, 0, 0, 3})
	if _, src, dst, err := ParseFlow(b4); err != nil || src != netip.MustParseAddr("10.0.0.2") || dst != netip.MustParseAddr("10.0.0.3") {
		t.Errorf("ParseFlow of an IPv4 record: %v -> %v, %v", src, dst, err)
	}
}
