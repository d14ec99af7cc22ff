package ebpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"
)

// TestMapLayout checks that every key and value marshals to exactly its Go
// size (no implicit padding) and to the size the C structs will have.
func TestMapLayout(t *testing.T) {
	cases := []struct {
		name string
		v    any
		size uintptr
		want int
	}{
		{"EndpointKey", EndpointKey{}, unsafe.Sizeof(EndpointKey{}), 4},
		{"EndpointInfo", EndpointInfo{}, unsafe.Sizeof(EndpointInfo{}), 28},
		{"IPCacheKey", IPCacheKey{}, unsafe.Sizeof(IPCacheKey{}), 8},
		{"IPCacheValue", IPCacheValue{}, unsafe.Sizeof(IPCacheValue{}), 8},
		{"TunnelKey", TunnelKey{}, unsafe.Sizeof(TunnelKey{}), 4},
		{"TunnelValue", TunnelValue{}, unsafe.Sizeof(TunnelValue{}), 4},
		{"PolicyKey", PolicyKey{}, unsafe.Sizeof(PolicyKey{}), 12},
		{"PolicyEntry", PolicyEntry{}, unsafe.Sizeof(PolicyEntry{}), 24},
		{"CTKey", CTKey{}, unsafe.Sizeof(CTKey{}), 16},
		{"CTEntry", CTEntry{}, unsafe.Sizeof(CTEntry{}), 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := binary.Size(c.v); got != c.want || int(c.size) != c.want {
				t.Errorf("binary.Size %d, unsafe.Sizeof %d, want %d", got, c.size, c.want)
			}
		})
	}
	// Byte layout of a policy key as the kernel reads it.
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, NewPolicyKey(0x0102, 0x0304, ProtoTCP, 80)); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x02, 0x01, 0, 0, 0x04, 0x03, 0, 0, 0, 80, 6, 0}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("policy key bytes % x, want % x", buf.Bytes(), want)
	}
}

func TestHashMapLimits(t *testing.T) {
	m := NewHashMap[EndpointKey, EndpointInfo](MapSpec{"test", 2})
	for i := range 2 {
		if err := m.Update(EndpointKey{[4]byte{10, 0, 0, byte(i)}}, EndpointInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Update(EndpointKey{[4]byte{10, 0, 0, 9}}, EndpointInfo{}); !errors.Is(err, ErrMapFull) {
		t.Errorf("third insert: %v, want ErrMapFull", err)
	}
	if err := m.Update(EndpointKey{[4]byte{10, 0, 0, 1}}, EndpointInfo{Identity: 7}); err != nil {
		t.Errorf("replace in a full map: %v", err)
	}
	if err := m.Delete(EndpointKey{[4]byte{1, 1, 1, 1}}); !errors.Is(err, ErrKeyNotExist) {
		t.Errorf("delete missing: %v, want ErrKeyNotExist", err)
	}
	tr := NewLPMTrie[IPCacheValue](MapSpec{"lpm", 0})
	if err := tr.Update(IPCacheKey{24, [4]byte{10, 0, 1, 0}}, IPCacheValue{Identity: 5}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Update(IPCacheKey{32, [4]byte{10, 0, 1, 7}}, IPCacheValue{Identity: 6}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip   [4]byte
		want uint32
		ok   bool
	}{{[4]byte{10, 0, 1, 7}, 6, true}, {[4]byte{10, 0, 1, 8}, 5, true}, {[4]byte{10, 0, 2, 1}, 0, false}} {
		v, ok := tr.Lookup(c.ip)
		if ok != c.ok || v.Identity != c.want {
			t.Errorf("lookup %v = %d %v, want %d %v", c.ip, v.Identity, ok, c.want, c.ok)
		}
	}
	if err := tr.Update(IPCacheKey{33, [4]byte{}}, IPCacheValue{}); err == nil {
		t.Error("prefix length 33 accepted")
	}
}

func TestIdentities(t *testing.T) {
	a := NewIdentities()
	web := a.Allocate(map[string]string{"app": "web", "env": "prod"})
	db := a.Allocate(map[string]string{"app": "db"})
	again := a.Allocate(map[string]string{"env": "prod", "app": "web"})
	if web != FirstPodIdentity || db != FirstPodIdentity+1 || again != web {
		t.Errorf("identities web %d db %d web again %d", web, db, again)
	}
	if LabelsKey(map[string]string{"b": "2", "a": "1"}) != "a=1,b=2" {
		t.Errorf("LabelsKey not canonical")
	}
	b := NewIdentities()
	if b.Allocate(map[string]string{"app": "web", "env": "prod"}) != web {
		t.Error("allocation not deterministic across allocators")
	}
}

// randomPolicy draws policies over a few labels so that they overlap.
func randomPolicy(r *rand.Rand, i int) Policy {
	sel := func() map[string]string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]string{"app": fmt.Sprint("a", r.IntN(4))}
		case 2:
			return map[string]string{"env": fmt.Sprint("e", r.IntN(2))}
		}
		return map[string]string{"app": fmt.Sprint("a", r.IntN(4)), "env": fmt.Sprint("e", r.IntN(2))}
	}
	p := Policy{Name: fmt.Sprint("p", i), From: sel(), To: sel(), Allow: r.IntN(3) > 0}
	switch r.IntN(4) {
	case 0:
	case 1:
		p.Proto = ProtoICMP
	case 2:
		p.Proto, p.Port = ProtoTCP, uint16(80+r.IntN(3))
	case 3:
		p.Proto = ProtoUDP
		if r.IntN(2) == 0 {
			p.Port = 53
		}
	}
	return p
}

// modelVerdict is the obvious reading of the policy semantics: any matching
// deny denies; else any matching allow allows; else the destination is
// denied if some allow policy selects it.
func modelVerdict(ps []Policy, src, dst map[string]string, srcIsPod bool, proto Proto, port uint16) bool {
	matches := func(p Policy) bool {
		fromOK := len(p.From) == 0 || srcIsPod && Selects(p.From, src)
		return fromOK && Selects(p.To, dst) && (p.Proto == ProtoAny || p.Proto == proto) && (p.Port == 0 || p.Port == port)
	}
	allowed, enforced := false, false
	for _, p := range ps {
		if p.Allow && Selects(p.To, dst) {
			enforced = true
		}
		if matches(p) {
			if !p.Allow {
				return false
			}
			allowed = true
		}
	}
	return allowed || !enforced
}

// TestPolicyDifferential checks the O(1) map lookup against the O(n) chain
// (same verdict and same rule) and both against the obvious model of the
// policies themselves.
func TestPolicyDifferential(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			ids := NewIdentities()
			var labels []map[string]string
			for a := range 4 {
				for e := range 2 {
					l := map[string]string{"app": fmt.Sprint("a", a), "env": fmt.Sprint("e", e)}
					labels = append(labels, l)
					ids.Allocate(l)
				}
			}
			var ps []Policy
			for i := range 2 + r.IntN(12) {
				ps = append(ps, randomPolicy(r, i))
			}
			cp, err := Compile(ps, ids)
			if err != nil {
				t.Fatal(err)
			}
			m := NewHashMap[PolicyKey, PolicyEntry](MapSpec{"policy", 0})
			tab, err := Install(m, cp)
			if err != nil {
				t.Fatal(err)
			}
			chain := NewChain(cp.Rules)
			protos := []Proto{ProtoICMP, ProtoTCP, ProtoUDP}
			for range 3000 {
				si := r.IntN(len(labels) + 1) // the last one is the world
				di := r.IntN(len(labels))
				src := IdentityWorld
				var srcLabels map[string]string
				if si < len(labels) {
					srcLabels = labels[si]
					src, _ = ids.Lookup(srcLabels)
				}
				dst, _ := ids.Lookup(labels[di])
				proto := protos[r.IntN(3)]
				var port uint16
				if proto != ProtoICMP {
					port = uint16(52 + r.IntN(32))
				}
				_, e, hit := PolicyLookup(m, src, dst, proto, port)
				cr, chit := chain.Match(src, dst, proto, port)
				if hit != chit || hit && (e.Action != cr.Action || tab.Names[e.RuleID] != cr.Name) {
					t.Fatalf("%d->%d %s/%d: map (%v %d %q), chain (%v %d %q)", src, dst, proto, port,
						hit, e.Action, tab.Names[e.RuleID], chit, cr.Action, cr.Name)
				}
				got := hit && e.Action == PolicyAllow || !hit && !cp.Enforced[dst]
				want := modelVerdict(ps, srcLabels, labels[di], si < len(labels), proto, port)
				if got != want {
					t.Fatalf("policies %+v\n%d->%d %s/%d: map allows=%v, model %v (hit %v rule %q)", ps, src, dst, proto, port, got, want, hit, tab.Names[e.RuleID])
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		p  Policy
		ok bool
	}{
		{Policy{Name: "a", Proto: ProtoTCP, Port: 80, Allow: true}, true},
		{Policy{Name: "b", Port: 80}, false},
		{Policy{Name: "c", Proto: ProtoICMP, Port: 1}, false},
		{Policy{Proto: ProtoTCP}, false},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%+v: err %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

func TestNextPrefix(t *testing.T) {
	if got := nextPrefix(netip.MustParsePrefix("10.0.255.0/24")); got != netip.MustParsePrefix("10.1.0.0/24") {
		t.Errorf("next of 10.0.255.0/24 = %v", got)
	}
}

// TestPrefix4 checks the word matcher against netip.Prefix.Contains.
func TestPrefix4(t *testing.T) {
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.2.0/24"),
		netip.MustParsePrefix("10.1.2.77/24"), netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("fd00::/8"), {},
	}
	addrs := []string{"10.1.2.3", "10.1.3.3", "11.0.0.1", "0.0.0.0", "255.255.255.255", "10.255.255.255"}
	for _, p := range prefixes {
		m := newPrefix4(p)
		for _, s := range addrs {
			a := netip.MustParseAddr(s)
			if got, want := m.contains(a.As4()), p.Contains(a); got != want {
				t.Errorf("%v contains %v = %v, want %v", p, a, got, want)
			}
		}
	}
}
