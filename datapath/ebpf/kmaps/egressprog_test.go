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

// egressDifferential is TestPolicyProgramDifferential's egress half: the
// egress program, then the ingress program, as they run on an lxc hook,
// on random packets and replies between pods, the host and the world,
// under random ingress policies and random egress entries (allow and
// deny, world, host and any destinations, ports and port ranges, and for
// some an ingress entry that differs only in direction). Every verdict and
// flow record is checked against the Go model's lookups (ebpf.EgressLookup,
// ebpf.PolicyLookup) over the same maps, with conntrack as the model keeps
// it: a flow is recorded when a pod sends it (egress passed) and when an
// ingress check lets it in, and a reply to a recorded flow passes both
// ways, an echo request never. Each packet is sent again between the
// addresses' IPv6 twins (same identities) and must get the same verdicts
// and records from the programs' IPv6 halves, and the IPv6 conntrack map
// must end as the twin of the model's. It returns the verdicts it saw
// and counts the egress records' (verdict, reason) in reasons.
func egressDifferential(t *testing.T, seed uint64, reasons map[[2]uint8]int) map[uint32]int {
	km := testMaps(t)
	events, rd := testEvents(t)
	load := loader(t)
	egress := load(NewEgressProgram(km, PolicyConfig{Pass: TCActOK}))
	egressEv := load(NewEgressProgram(km, PolicyConfig{Pass: TCActOK, Events: events}))
	ingress := load(NewPolicyProgram(km, TCActOK))
	ingressEv := load(NewPolicyProgramWith(km, PolicyConfig{Pass: TCActOK, Events: events}))

	r := rand.New(rand.NewPCG(seed, 16))
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
	for i := range 12 {
		pods = append(pods, pod{netip.AddrFrom4([4]byte{10, 0, byte(i / 6), byte(2 + i)}), ids.Allocate(labels[i%8]), i%2 == 0})
	}
	hostIP, worldIP := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("192.0.2.9")

	// Ingress policies as the existing half compiles them.
	var ps []gen3.Policy
	protos := []gen3.Proto{gen3.ProtoAny, gen3.ProtoICMP, gen3.ProtoTCP, gen3.ProtoUDP}
	for i := range 2 + r.IntN(5) {
		p := gen3.Policy{Name: fmt.Sprint("in", i), Allow: r.IntN(3) > 0, Proto: protos[r.IntN(4)]}
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
	in, err := gen3.Compile(ps, ids)
	if err != nil {
		t.Fatal(err)
	}
	// Egress entries, as scenarios/policycompile emits them: per port
	// for a range, world for an ipBlock of everything, any for a rule
	// without peers.
	rules := in.Rules
	egressEnforced := map[gen3.Identity]bool{}
	for _, id := range ids.All() {
		if r.IntN(3) > 0 {
			egressEnforced[id] = true
		}
	}
	for i := range 10 + r.IntN(16) {
		src := pods[r.IntN(len(pods))].id
		var dst gen3.Identity
		switch r.IntN(5) {
		case 0:
			dst = gen3.IdentityAny
		case 1:
			dst = gen3.IdentityWorld
		case 2:
			dst = gen3.IdentityHost
		default:
			dst = pods[r.IntN(len(pods))].id
		}
		proto := protos[r.IntN(4)]
		lo, hi := uint16(0), uint16(0)
		if proto == gen3.ProtoTCP || proto == gen3.ProtoUDP {
			switch r.IntN(3) {
			case 0: // the whole protocol
			case 1:
				lo = uint16(79 + r.IntN(4))
				hi = lo
			default: // a range, one entry per port
				lo = uint16(79 + r.IntN(2))
				hi = lo + 2
			}
		}
		act := gen3.PolicyAllow
		if r.IntN(3) == 0 {
			act = gen3.PolicyDeny
		}
		for port := lo; ; port++ {
			k := gen3.NewEgressKey(src, dst, proto, port)
			rules = append(rules, gen3.PolicyRule{Key: k, Action: act, From: fmt.Sprint("eg", i)})
			if r.IntN(4) == 0 {
				// The same fields as an ingress entry, the other action.
				twin := k
				twin.Egress = 0
				rules = append(rules, gen3.PolicyRule{Key: twin, Action: 3 - act, From: fmt.Sprint("twin", i)})
			}
			if port >= hi {
				break
			}
		}
	}
	cp := gen3.CompileRules(rules, in.Enforced, egressEnforced)
	m := gen3.NewMaps()
	if _, err := gen3.Install(m.Policy, cp); err != nil {
		t.Fatal(err)
	}
	if err := m.IPCache.Update(gen3.IPCacheKey{PrefixLen: 32, IP: hostIP.As4()}, gen3.IPCacheValue{Identity: uint32(gen3.IdentityHost)}); err != nil {
		t.Fatal(err)
	}
	for i, p := range pods {
		if err := m.IPCache.Update(gen3.IPCacheKey{PrefixLen: 32, IP: p.ip.As4()}, gen3.IPCacheValue{Identity: uint32(p.id)}); err != nil {
			t.Fatal(err)
		}
		if p.local {
			info := gen3.EndpointInfo{IfIndex: uint32(10 + i), Identity: uint32(p.id)}
			if cp.Enforced[p.id] {
				info.Flags |= gen3.EndpointPolicyEnforced
			}
			if cp.EgressEnforced[p.id] {
				info.Flags |= gen3.EndpointEgressEnforced
			}
			if err := m.Endpoints.Update(gen3.EndpointKey{IP: p.ip.As4()}, info); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every address has an IPv6 twin with the same identity: each packet
	// is also sent over IPv6 and must get the same verdicts and records,
	// the IPv6 conntrack map keeping the twin of the IPv4 one.
	six := map[netip.Addr]netip.Addr{hostIP: netip.MustParseAddr("fd10:9::1"), worldIP: netip.MustParseAddr("2001:db8::9")}
	for i, p := range pods {
		six[p.ip] = netip.AddrFrom16([16]byte{0xfd, 0x10, 14: byte(i / 6), 15: byte(2 + i)})
	}
	if err := m.IPCache6.Update(gen3.IPCacheKey6{PrefixLen: 128, IP: six[hostIP].As16()}, gen3.IPCacheValue{Identity: uint32(gen3.IdentityHost)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := m.IPCache6.Update(gen3.IPCacheKey6{PrefixLen: 128, IP: six[p.ip].As16()}, gen3.IPCacheValue{Identity: uint32(p.id)}); err != nil {
			t.Fatal(err)
		}
		if info, ok := m.Endpoints.Lookup(gen3.EndpointKey{IP: p.ip.As4()}); ok {
			if err := m.Endpoints6.Update(gen3.EndpointKey6{IP: six[p.ip].As16()}, info); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := km.Sync(m); err != nil {
		t.Fatal(err)
	}

	type packet struct {
		src, dst     netip.Addr
		proto        gen3.Proto
		sport, dport uint16 // the echo ID in both for ICMP
		echoReply    bool
	}
	key := func(p packet) gen3.CTKey {
		return gen3.CTKey{Src: p.src.As4(), Dst: p.dst.As4(), SPort: [2]byte{byte(p.sport >> 8), byte(p.sport)},
			DPort: [2]byte{byte(p.dport >> 8), byte(p.dport)}, Proto: uint8(p.proto)}
	}
	rev := func(k gen3.CTKey) gen3.CTKey {
		k.Src, k.Dst, k.SPort, k.DPort = k.Dst, k.Src, k.DPort, k.SPort
		return k
	}
	ct := map[gen3.CTKey]bool{} // the model's conntrack
	record := func(p packet, src, dst gen3.Identity, dir uint8) *FlowRecord {
		rec := &FlowRecord{Src: p.src.As4(), Dst: p.dst.As4(), SrcIdentity: uint32(src), DstIdentity: uint32(dst),
			Proto: uint8(p.proto), SPort: [2]byte{byte(p.sport >> 8), byte(p.sport)}, Direction: dir}
		if p.proto != gen3.ProtoICMP {
			rec.DPort = [2]byte{byte(p.dport >> 8), byte(p.dport)}
		}
		return rec
	}
	identity := func(a netip.Addr) gen3.Identity {
		if v, ok := m.IPCache.Lookup(a.As4()); ok {
			return gen3.Identity(v.Identity)
		}
		return gen3.IdentityWorld
	}
	port := func(p packet) uint16 {
		if p.proto == gen3.ProtoICMP {
			return 0
		}
		return p.dport
	}
	echoRequest := func(p packet) bool { return p.proto == gen3.ProtoICMP && !p.echoReply }
	// egressModel is Node.egress over the maps: nil record when the
	// source is not a local endpoint enforcing egress.
	egressModel := func(p packet) (uint32, *FlowRecord) {
		ep, ok := m.Endpoints.Lookup(gen3.EndpointKey{IP: p.src.As4()})
		if !ok {
			return TCActOK, nil
		}
		if ep.Flags&gen3.EndpointEgressEnforced == 0 {
			ct[key(p)] = true
			return TCActOK, nil
		}
		remote := identity(p.dst)
		rec := record(p, gen3.Identity(ep.Identity), remote, DirEgress)
		if ct[rev(key(p))] && !echoRequest(p) {
			ct[key(p)] = true
			rec.Verdict, rec.Reason = VerdictForwarded, ReasonCTReply
			return TCActOK, rec
		}
		k, e, hit := gen3.EgressLookup(m.Policy, gen3.Identity(ep.Identity), remote, p.proto, port(p))
		switch {
		case hit && e.Action == gen3.PolicyAllow:
			ct[key(p)] = true
			rec.Verdict, rec.Reason, rec.Key = VerdictForwarded, ReasonPolicyAllow, k
			return TCActOK, rec
		case hit:
			rec.Verdict, rec.Reason, rec.Key = VerdictDropped, ReasonPolicyDeny, k
		default:
			rec.Verdict, rec.Reason = VerdictDropped, ReasonDefaultDeny
		}
		return TCActShot, rec
	}
	// ingressModel is Node.ingress over the maps: nil record when the
	// destination is not a local endpoint.
	ingressModel := func(p packet) (uint32, *FlowRecord) {
		ep, ok := m.Endpoints.Lookup(gen3.EndpointKey{IP: p.dst.As4()})
		if !ok {
			return TCActOK, nil
		}
		sid := identity(p.src)
		rec := record(p, sid, gen3.Identity(ep.Identity), DirIngress)
		if ct[rev(key(p))] && !echoRequest(p) {
			rec.Verdict, rec.Reason = VerdictForwarded, ReasonCTReply
			return TCActOK, rec
		}
		k, e, hit := gen3.PolicyLookup(m.Policy, sid, gen3.Identity(ep.Identity), p.proto, port(p))
		switch {
		case hit && e.Action == gen3.PolicyAllow:
			ct[key(p)] = true
			rec.Verdict, rec.Reason, rec.Key = VerdictForwarded, ReasonPolicyAllow, k
			return TCActOK, rec
		case hit:
			rec.Verdict, rec.Reason, rec.Key = VerdictDropped, ReasonPolicyDeny, k
		case ep.Flags&gen3.EndpointPolicyEnforced == 0:
			ct[key(p)] = true
			rec.Verdict, rec.Reason = VerdictForwarded, ReasonNotEnforced
			return TCActOK, rec
		default:
			rec.Verdict, rec.Reason = VerdictDropped, ReasonDefaultDeny
		}
		return TCActShot, rec
	}
	build := func(p packet, v6 bool) []byte {
		h := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Src: p.src, Dst: p.dst}
		if v6 {
			h.Src, h.Dst = six[p.src], six[p.dst]
		}
		switch p.proto {
		case gen3.ProtoICMP:
			return frame.ICMPEcho(h, p.echoReply, p.sport, 1, nil)
		case gen3.ProtoTCP:
			return frame.TCP(h, p.sport, p.dport, 1, 0, frame.TCPFlags{SYN: true}, nil)
		}
		return frame.UDP(h, p.sport, p.dport, []byte("x"))
	}
	run := func(prog *ebpf.Program, f []byte) uint32 {
		t.Helper()
		got, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				testutil.Unavailable(t, "kernel lacks BPF_PROG_TEST_RUN for tc: "+err.Error())
			}
			t.Fatal(err)
		}
		return got
	}

	verdicts := map[uint32]int{}
	var passed []packet
	for range 1500 {
		var p packet
		if len(passed) > 0 && r.IntN(3) == 0 {
			// A reply to a packet that got through, or an echo
			// request with its echo ID (never a reply).
			q := passed[r.IntN(len(passed))]
			p = packet{src: q.dst, dst: q.src, proto: q.proto, sport: q.dport, dport: q.sport, echoReply: q.proto == gen3.ProtoICMP && r.IntN(3) > 0}
		} else {
			p = packet{src: pods[r.IntN(len(pods))].ip, dst: pods[r.IntN(len(pods))].ip,
				proto: protos[1+r.IntN(3)], sport: uint16(40000 + r.IntN(2)), dport: uint16(79 + r.IntN(4))}
			switch r.IntN(10) {
			case 0:
				p.dst = worldIP
			case 1:
				p.dst = hostIP
			case 2:
				p.src = worldIP
			}
			if p.proto == gen3.ProtoICMP {
				p.sport = uint16(1 + r.IntN(2))
				p.dport = p.sport
			}
		}
		if p.src == p.dst {
			continue
		}
		f := build(p, false)
		// The lxc hook: egress (for a local source), then ingress.
		wantEg, recEg := egressModel(p)
		want, recIn := wantEg, (*FlowRecord)(nil)
		if wantEg == TCActOK {
			want, recIn = ingressModel(p)
		}
		name := fmt.Sprintf("%v:%d -> %v:%d %s (echo reply %v)", p.src, p.sport, p.dst, p.dport, p.proto, p.echoReply)
		gotEg := run(egress, f)
		if gotEg != wantEg {
			t.Fatalf("rules %+v\n%s: egress program %d, model %d", cp.Rules, name, gotEg, wantEg)
		}
		if got := run(egressEv, f); got != wantEg {
			t.Fatalf("%s: egress program with events %d, model %d", name, got, wantEg)
		}
		checkRecord(t, rd, recEg)
		if gotEg == TCActOK {
			if got := run(ingress, f); got != want {
				t.Fatalf("rules %+v\n%s: ingress program after egress %d, model %d", cp.Rules, name, got, want)
			}
			if got := run(ingressEv, f); got != want {
				t.Fatalf("%s: ingress program with events %d, model %d", name, got, want)
			}
			checkRecord(t, rd, recIn)
		}
		checkRecord(t, rd, nil)
		// The same over IPv6.
		f = build(p, true)
		if got := run(egress, f); got != wantEg {
			t.Fatalf("rules %+v\n%s over IPv6: egress program %d, model %d", cp.Rules, name, got, wantEg)
		}
		if got := run(egressEv, f); got != wantEg {
			t.Fatalf("%s over IPv6: egress program with events %d, model %d", name, got, wantEg)
		}
		checkRecord6(t, rd, recEg, six[p.src], six[p.dst])
		if wantEg == TCActOK {
			if got := run(ingress, f); got != want {
				t.Fatalf("rules %+v\n%s over IPv6: ingress program after egress %d, model %d", cp.Rules, name, got, want)
			}
			if got := run(ingressEv, f); got != want {
				t.Fatalf("%s over IPv6: ingress program with events %d, model %d", name, got, want)
			}
			checkRecord6(t, rd, recIn, six[p.src], six[p.dst])
		}
		checkRecord(t, rd, nil)
		if want == TCActOK {
			passed = append(passed, p)
		}
		verdicts[want]++
		if recEg != nil {
			reasons[[2]uint8{recEg.Verdict, recEg.Reason}]++
		}
	}
	// The kernel's conntrack holds what the model's does.
	var k gen3.CTKey
	var v gen3.CTEntry
	it := km.CT.Iterate()
	n := 0
	for it.Next(&k, &v) {
		if !ct[k] {
			t.Errorf("kernel conntrack has %+v, the model does not", k)
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(ct) {
		t.Errorf("kernel conntrack has %d flows, the model %d", n, len(ct))
	}
	var k6 gen3.CTKey6
	n6 := 0
	for it := km.CT6.Iterate(); it.Next(&k6, &v); {
		k4 := gen3.CTKey{SPort: k6.SPort, DPort: k6.DPort, Proto: k6.Proto}
		for a4, a6 := range six {
			if a6.As16() == k6.Src {
				k4.Src = a4.As4()
			}
			if a6.As16() == k6.Dst {
				k4.Dst = a4.As4()
			}
		}
		if k4.Proto == 58 {
			k4.Proto = uint8(gen3.ProtoICMP)
		}
		if !ct[k4] {
			t.Errorf("kernel IPv6 conntrack has %+v, the model has no twin of it", k6)
		}
		n6++
	}
	if n6 != len(ct) {
		t.Errorf("kernel IPv6 conntrack has %d flows, the model %d", n6, len(ct))
	}
	t.Logf("verdicts: %d pass, %d shot; egress (verdict, reason) so far: %v", verdicts[TCActOK], verdicts[TCActShot], reasons)
	return verdicts
}
