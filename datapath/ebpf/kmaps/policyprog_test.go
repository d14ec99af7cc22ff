package kmaps

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
)

// TestPolicyProgramDifferential runs the tc policy program in the kernel
// (BPF_PROG_TEST_RUN) on random packets between pods under random
// policies and checks every verdict against the Go model's lookup over the
// same map contents.
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
			km, err := New()
			if err != nil {
				if errors.Is(err, ebpf.ErrNotSupported) {
					testutil.Unavailable(t, "kernel lacks BPF maps: "+err.Error())
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = km.Close() })
			prog, err := NewPolicyProgram(km, TCActOK)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = prog.Close() })

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
			}
			var pods []pod
			for i := range 16 {
				pods = append(pods, pod{netip.AddrFrom4([4]byte{10, 0, byte(i / 8), byte(2 + i)}), ids.Allocate(labels[i%8]), i%2 == 0})
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
				if p.local {
					info := gen3.EndpointInfo{IfIndex: uint32(10 + i), Identity: uint32(p.id)}
					if cp.Enforced[p.id] {
						info.Flags = gen3.EndpointPolicyEnforced
					}
					if err := m.Endpoints.Update(gen3.EndpointKey{IP: p.ip.As4()}, info); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := km.Sync(m); err != nil {
				t.Fatal(err)
			}
			model := func(src, dst netip.Addr, proto gen3.Proto, port uint16) uint32 {
				ep, ok := m.Endpoints.Lookup(gen3.EndpointKey{IP: dst.As4()})
				if !ok {
					return TCActOK
				}
				sid := gen3.IdentityWorld
				if v, ok := m.IPCache.Lookup(src.As4()); ok {
					sid = gen3.Identity(v.Identity)
				}
				_, e, hit := gen3.PolicyLookup(m.Policy, sid, gen3.Identity(ep.Identity), proto, port)
				switch {
				case hit && e.Action == gen3.PolicyAllow, !hit && ep.Flags&gen3.EndpointPolicyEnforced == 0:
					return TCActOK
				}
				return TCActShot
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
				if want := model(src, dst, proto, port); got != want {
					t.Fatalf("policies %+v\n%v -> %v %s/%d: kernel %d, model %d", ps, src, dst, proto, port, got, want)
				}
				verdicts[got]++
			}
			t.Logf("verdicts: %d pass, %d shot", verdicts[TCActOK], verdicts[TCActShot])
			total[TCActOK] += verdicts[TCActOK]
			total[TCActShot] += verdicts[TCActShot]
		})
	}
}
