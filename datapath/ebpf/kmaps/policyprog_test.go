package kmaps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
)

// TestPolicyProgramDifferential runs the tc policy program in the kernel
// (BPF_PROG_TEST_RUN) on random packets between pods under random
// policies and checks every verdict against the Go model's lookup over the
// same map contents; its egress subtests do the same for the egress
// program followed by the ingress one (egressDifferential).
func TestPolicyProgramDifferential(t *testing.T) {
	testutil.RequireRoot(t)
	total := map[uint32]int{}
	defer func() {
		if !t.Failed() && (total[TCActOK] == 0 || total[TCActShot] == 0) {
			t.Errorf("the runs never saw both verdicts: %v", total)
		}
	}()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			km := testMaps(t)
			load := loader(t)
			prog := load(NewPolicyProgram(km, TCActOK))
			events, rd := testEvents(t)
			evProg := load(NewPolicyProgramWith(km, PolicyConfig{Pass: TCActOK, Events: events}))

			r := rand.New(rand.NewPCG(seed, 3))
			ids := gen3.NewIdentities()
			var labels []map[string]string
			for a := range 4 {
				for e := range 2 {
					labels = append(labels, map[string]string{"app": fmt.Sprint("a", a), "env": fmt.Sprint("e", e)})
				}
			}
			type pod struct {
				ip    netip.Addr
				id    gen3.Identity
				local bool
				ip6   netip.Addr
			}
			var pods []pod
			v6 := map[netip.Addr]netip.Addr{netip.MustParseAddr("192.0.2.7"): netip.MustParseAddr("2001:db8::7")}
			for i := range 16 {
				pods = append(pods, pod{netip.AddrFrom4([4]byte{10, 0, byte(i / 8), byte(2 + i)}), ids.Allocate(labels[i%8]), i%2 == 0,
					netip.AddrFrom16([16]byte{0xfd, 0x10, 14: byte(i / 8), 15: byte(2 + i)})})
				v6[pods[i].ip] = pods[i].ip6
			}
			var ps []gen3.Policy
			protos := []gen3.Proto{gen3.ProtoAny, gen3.ProtoICMP, gen3.ProtoTCP, gen3.ProtoUDP}
			for i := range 3 + r.IntN(8) {
				p := gen3.Policy{Name: fmt.Sprint("p", i), Allow: r.IntN(3) > 0, Proto: protos[r.IntN(4)]}
				if r.IntN(3) > 0 {
					p.From = labels[r.IntN(8)]
				}
				if r.IntN(4) > 0 {
					p.To = map[string]string{"app": labels[r.IntN(8)]["app"]}
				}
				if p.Proto == gen3.ProtoTCP || p.Proto == gen3.ProtoUDP {
					p.Port = uint16(80 + r.IntN(3))
				}
				ps = append(ps, p)
			}
			cp, err := gen3.Compile(ps, ids)
			if err != nil {
				t.Fatal(err)
			}
			m := gen3.NewMaps()
			if _, err := gen3.Install(m.Policy, cp); err != nil {
				t.Fatal(err)
			}
			for i, p := range pods {
				if err := m.IPCache.Update(gen3.IPCacheKey{PrefixLen: 32, IP: p.ip.As4()}, gen3.IPCacheValue{Identity: uint32(p.id)}); err != nil {
					t.Fatal(err)
				}
				if err := m.IPCache6.Update(gen3.IPCacheKey6{PrefixLen: 128, IP: p.ip6.As16()}, gen3.IPCacheValue{Identity: uint32(p.id)}); err != nil {
					t.Fatal(err)
				}
				if p.local {
					info := gen3.EndpointInfo{IfIndex: uint32(10 + i), Identity: uint32(p.id)}
					if cp.Enforced[p.id] {
						info.Flags = gen3.EndpointPolicyEnforced
					}
					if err := m.Endpoints.Update(gen3.EndpointKey{IP: p.ip.As4()}, info); err != nil {
						t.Fatal(err)
					}
					if err := m.Endpoints6.Update(gen3.EndpointKey6{IP: p.ip6.As16()}, info); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := km.Sync(m); err != nil {
				t.Fatal(err)
			}
			// model returns the verdict and, for a local destination,
			// the record the events program must write.
			model := func(src, dst netip.Addr, proto gen3.Proto, port uint16) (uint32, *FlowRecord) {
				ep, ok := m.Endpoints.Lookup(gen3.EndpointKey{IP: dst.As4()})
				if !ok {
					return TCActOK, nil
				}
				sid := gen3.IdentityWorld
				if v, ok := m.IPCache.Lookup(src.As4()); ok {
					sid = gen3.Identity(v.Identity)
				}
				rec := &FlowRecord{Src: src.As4(), Dst: dst.As4(), SrcIdentity: uint32(sid), DstIdentity: ep.Identity,
					Proto: uint8(proto), DPort: [2]byte{byte(port >> 8), byte(port)}, SPort: [2]byte{40000 >> 8, 40000 & 0xff}}
				if proto == gen3.ProtoICMP {
					rec.SPort = [2]byte{0, 1} // the echo ID
				}
				k, e, hit := gen3.PolicyLookup(m.Policy, sid, gen3.Identity(ep.Identity), proto, port)
				switch {
				case hit && e.Action == gen3.PolicyAllow:
					rec.Verdict, rec.Reason, rec.Key = VerdictForwarded, ReasonPolicyAllow, k
					return TCActOK, rec
				case hit:
					rec.Verdict, rec.Reason, rec.Key = VerdictDropped, ReasonPolicyDeny, k
				case ep.Flags&gen3.EndpointPolicyEnforced == 0:
					rec.Verdict, rec.Reason = VerdictForwarded, ReasonNotEnforced
					return TCActOK, rec
				default:
					rec.Verdict, rec.Reason = VerdictDropped, ReasonDefaultDeny
				}
				return TCActShot, rec
			}
			macA, macB := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
			verdicts := map[uint32]int{}
			for range 1500 {
				src := pods[r.IntN(len(pods))].ip
				if r.IntN(8) == 0 {
					src = netip.MustParseAddr("192.0.2.7") // world
				}
				dst := pods[r.IntN(len(pods))].ip
				h := frame.IPv4{SrcMAC: macA, DstMAC: macB, Src: src, Dst: dst}
				port := uint16(79 + r.IntN(4))
				var f []byte
				var proto gen3.Proto
				switch r.IntN(3) {
				case 0:
					f, proto, port = frame.ICMPEcho(h, false, 1, 1, nil), gen3.ProtoICMP, 0
				case 1:
					f, proto = frame.TCP(h, 40000, port, 1, 0, frame.TCPFlags{SYN: true}, nil), gen3.ProtoTCP
				default:
					f, proto = frame.UDP(h, 40000, port, []byte("x")), gen3.ProtoUDP
				}
				got, err := prog.Run(&ebpf.RunOptions{Data: f})
				if err != nil {
					if errors.Is(err, ebpf.ErrNotSupported) {
						testutil.Unavailable(t, "kernel lacks BPF_PROG_TEST_RUN for tc: "+err.Error())
					}
					t.Fatal(err)
				}
				want, wantRec := model(src, dst, proto, port)
				if got != want {
					t.Fatalf("policies %+v\n%v -> %v %s/%d: kernel %d, model %d", ps, src, dst, proto, port, got, want)
				}
				if got, err := evProg.Run(&ebpf.RunOptions{Data: f}); err != nil || got != want {
					t.Fatalf("%v -> %v %s/%d: with events, verdict %d (%v), want %d", src, dst, proto, port, got, err, want)
				}
				checkRecord(t, rd, wantRec)
				verdicts[got]++

				// The same flow over IPv6: identities have no family,
				// so the verdict and the record's fields are the same
				// (ICMPv6 echo is ICMP to policy).
				h6 := frame.IPv4{SrcMAC: macA, DstMAC: macB, Src: v6[src], Dst: v6[dst]}
				switch proto {
				case gen3.ProtoICMP:
					f = frame.ICMPEcho(h6, false, 1, 1, nil)
				case gen3.ProtoTCP:
					f = frame.TCP(h6, 40000, port, 1, 0, frame.TCPFlags{SYN: true}, nil)
				default:
					f = frame.UDP(h6, 40000, port, []byte("x"))
				}
				if got, err := prog.Run(&ebpf.RunOptions{Data: f}); err != nil || got != want {
					t.Fatalf("policies %+v\n%v -> %v %s/%d over IPv6: kernel %d (%v), model %d", ps, h6.Src, h6.Dst, proto, port, got, err, want)
				}
				if got, err := evProg.Run(&ebpf.RunOptions{Data: f}); err != nil || got != want {
					t.Fatalf("%v -> %v %s/%d over IPv6: with events, verdict %d (%v), want %d", h6.Src, h6.Dst, proto, port, got, err, want)
				}
				checkRecord6(t, rd, wantRec, h6.Src, h6.Dst)
			}
			t.Logf("verdicts: %d pass, %d shot", verdicts[TCActOK], verdicts[TCActShot])
			total[TCActOK] += verdicts[TCActOK]
			total[TCActShot] += verdicts[TCActShot]
		})
	}
	reasons := map[[2]uint8]int{}
	defer func() {
		for _, vr := range [][2]uint8{{VerdictForwarded, ReasonCTReply}, {VerdictForwarded, ReasonPolicyAllow},
			{VerdictDropped, ReasonPolicyDeny}, {VerdictDropped, ReasonDefaultDeny}} {
			if !t.Failed() && reasons[vr] == 0 {
				t.Errorf("the egress runs never saw verdict %d with reason %d: %v", vr[0], vr[1], reasons)
			}
		}
	}()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("egress/seed", seed), func(t *testing.T) {
			verdicts := egressDifferential(t, seed, reasons)
			total[TCActOK] += verdicts[TCActOK]
			total[TCActShot] += verdicts[TCActShot]
		})
	}
}

// checkRecord6 is checkRecord for an IPv6 record: its addresses src and
// dst, its other fields want's.
func checkRecord6(t *testing.T, rd *ringbuf.Reader, want *FlowRecord, src, dst netip.Addr) {
	t.Helper()
	raw := nextRecord(t, rd, want, "IPv6 ")
	if raw == nil {
		return
	}
	if len(raw) != flowRecord6Len {
		t.Fatalf("a record of %d bytes for IPv6, want %d", len(raw), flowRecord6Len)
	}
	got, gotSrc, gotDst, err := ParseFlow(raw)
	if err != nil {
		t.Fatal(err)
	}
	if gotSrc != src || gotDst != dst {
		t.Errorf("IPv6 record %v -> %v, want %v -> %v", gotSrc, gotDst, src, dst)
	}
	w := *want
	w.Src, w.Dst = [4]byte{}, [4]byte{}
	sameRecord(t, got, w, "IPv6 ")
}

// checkRecord reads what the events program wrote for one run and
// compares it with want (nil: nothing must have been written). The
// ifindex and time are the test run's and are not compared; the key only
// for reasons that name an entry.
func checkRecord(t *testing.T, rd *ringbuf.Reader, want *FlowRecord) {
	t.Helper()
	raw := nextRecord(t, rd, want, "")
	if raw == nil {
		return
	}
	got, err := ParseFlowRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, *want, "")
}

// nextRecord reads the next record the events program wrote (fam names
// the family in messages): none must be there when want is nil, and it
// returns nil.
func nextRecord(t *testing.T, rd *ringbuf.Reader, want *FlowRecord, fam string) []byte {
	t.Helper()
	rd.SetDeadline(time.Now())
	rec, err := rd.Read()
	if want == nil {
		if err == nil {
			t.Fatalf("%srecord for traffic to no local endpoint: % x", fam, rec.RawSample)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("no %sflow record for %+v: %v", fam, *want, err)
	}
	return rec.RawSample
}

// sameRecord fails t unless got is want but for the ifindex and time
// (the test run's; the time must be set), the key of a verdict no entry
// made, and an ICMP packet's port.
func sameRecord(t *testing.T, got, want FlowRecord, fam string) {
	t.Helper()
	if got.Nanos == 0 {
		t.Errorf("%srecord without a time: %+v", fam, got)
	}
	got.IfIndex, got.Nanos = 0, 0
	if want.Reason != ReasonPolicyAllow && want.Reason != ReasonPolicyDeny {
		got.Key = gen3.PolicyKey{}
	}
	if want.Proto == uint8(gen3.ProtoICMP) {
		got.DPort = [2]byte{}
	}
	if got != want {
		t.Fatalf("%sflow record\n%+v, want\n%+v", fam, got, want)
	}
}

func TestFlowRecordLayout(t *testing.T) {
	if n := binary.Size(FlowRecord{}); n != flowRecordLen {
		t.Fatalf("FlowRecord is %d bytes, the program writes %d", n, flowRecordLen)
	}
	var r FlowRecord
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"Dst", unsafe.Offsetof(r.Dst), evDst}, {"SrcIdentity", unsafe.Offsetof(r.SrcIdentity), evSrcID},
		{"DstIdentity", unsafe.Offsetof(r.DstIdentity), evDstID}, {"IfIndex", unsafe.Offsetof(r.IfIndex), evIfIndex},
		{"Key", unsafe.Offsetof(r.Key), evKey}, {"DPort", unsafe.Offsetof(r.DPort), evDPort},
		{"Proto", unsafe.Offsetof(r.Proto), evProto}, {"Verdict", unsafe.Offsetof(r.Verdict), evVerdict},
		{"Reason", unsafe.Offsetof(r.Reason), evReason}, {"Direction", unsafe.Offsetof(r.Direction), evDirection},
		{"SPort", unsafe.Offsetof(r.SPort), evSPort},
		{"Nanos", unsafe.Offsetof(r.Nanos), evNanos},
	} {
		if c.got != c.off {
			t.Errorf("FlowRecord.%s at %d, the program writes it at %d", c.name, c.got, c.off)
		}
	}
	b := make([]byte, flowRecordLen)
	b[evVerdict], b[evReason], b[evIfIndex] = VerdictDropped, ReasonDefaultDeny, 7
	got, err := ParseFlowRecord(b)
	if err != nil || got.Verdict != VerdictDropped || got.Reason != ReasonDefaultDeny || got.IfIndex != 7 {
		t.Errorf("ParseFlowRecord: %+v, %v", got, err)
	}
	if _, err := ParseFlowRecord(b[:47]); err == nil {
		t.Error("ParseFlowRecord accepted 47 bytes")
	}
}
