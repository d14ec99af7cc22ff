package evpn

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// slowLeaf is the obvious model of a leaf's lookup tables: it keeps the
// configuration and recomputes every answer from the whole route table.
type slowLeaf struct {
	self     netip.Addr
	nets     map[uint32]Network
	portCfg  map[portVLAN]uint32
	bindings map[macKey]portVLAN
	table    *RouteTable
	routes   []Route // table.Routes(), refreshed by snapshot
}

func (m *slowLeaf) snapshot() { m.routes = m.table.Routes() }

func (m *slowLeaf) l2Imported(vni uint32) bool {
	for _, v := range m.portCfg {
		if v == vni {
			return true
		}
	}
	return false
}

func (m *slowLeaf) l3Imported(l3vni uint32) bool {
	for _, v := range m.portCfg {
		if m.nets[v].L3VNI == l3vni {
			return true
		}
	}
	return false
}

func (m *slowLeaf) lookupMAC(vni uint32, mac MAC) (FDBEntry, bool) {
	if !m.l2Imported(vni) {
		return FDBEntry{}, false
	}
	if pv, ok := m.bindings[macKey{vni, mac}]; ok {
		return FDBEntry{Local: true, Port: pv.port, VLAN: pv.vlan}, true
	}
	for _, r := range m.routes {
		if r.Type == MACIP && r.VNI == vni && r.MAC == mac && r.VTEP != m.self {
			return FDBEntry{VTEP: r.VTEP}, true
		}
	}
	return FDBEntry{}, false
}

func (m *slowLeaf) lookupIP(l3vni uint32, ip netip.Addr) (FIBEntry, bool) {
	if !m.l3Imported(l3vni) {
		return FIBEntry{}, false
	}
	for _, r := range m.routes {
		if r.Type == MACIP && r.L3VNI == l3vni && r.IP == ip {
			e := FIBEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen())}
			if r.VTEP == m.self {
				e.Local, e.VNI, e.MAC = true, r.VNI, r.MAC
			} else {
				e.VTEPs, e.RouterMACs = []netip.Addr{r.VTEP}, []MAC{r.RouterMAC}
			}
			return e, true
		}
	}
	best := FIBEntry{}
	found := false
	better := func(p netip.Prefix) bool { return !found || p.Bits() > best.Prefix.Bits() }
	for _, v := range m.portCfg {
		n := m.nets[v]
		for _, sub := range []netip.Prefix{n.Subnet, n.Subnet6} {
			if n.L3VNI == l3vni && sub.IsValid() && sub.Contains(ip) && (better(sub) || sub == best.Prefix) {
				best, found = FIBEntry{Prefix: sub, Connected: true, VNI: n.VNI}, true
			}
		}
	}
	for _, r := range m.routes { // sorted by VTEP within a prefix
		if r.Type != IPPrefix || r.L3VNI != l3vni || r.VTEP == m.self || !r.Prefix.Contains(ip) {
			continue
		}
		switch {
		case found && best.Prefix == r.Prefix && best.Connected:
		case found && best.Prefix == r.Prefix:
			best.VTEPs = append(best.VTEPs, r.VTEP)
			best.RouterMACs = append(best.RouterMACs, r.RouterMAC)
		case better(r.Prefix):
			best, found = FIBEntry{Prefix: r.Prefix, VTEPs: []netip.Addr{r.VTEP}, RouterMACs: []MAC{r.RouterMAC}}, true
		}
	}
	return best, found
}

func sameFIB(a, b FIBEntry) bool {
	if a.Prefix != b.Prefix || a.Local != b.Local || a.VNI != b.VNI || a.MAC != b.MAC ||
		a.Connected != b.Connected || len(a.VTEPs) != len(b.VTEPs) {
		return false
	}
	for i := range a.VTEPs {
		if a.VTEPs[i] != b.VTEPs[i] || a.RouterMACs[i] != b.RouterMACs[i] {
			return false
		}
	}
	return true
}

// TestLeafLookupDifferential drives a leaf and the slow model with the same
// random route updates, port configurations and bindings, and compares
// every MAC and IP lookup after each step. The networks are dual-stack:
// half the MACs have an IPv4 address, half an IPv6 one, and type-5
// prefixes of both families come and go.
func TestLeafLookupDifferential(t *testing.T) {
	self := vtep1
	vteps := []netip.Addr{self, vtep2, netip.MustParseAddr("10.255.0.3")}
	nets := []Network{
		{VNI: 100, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"),
			Subnet6: netip.MustParsePrefix("fd00:1::/64"), Gateway6: netip.MustParseAddr("fd00:1::1")},
		{VNI: 200, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.2.1"),
			Subnet6: netip.MustParsePrefix("fd00:2::/64"), Gateway6: netip.MustParseAddr("fd00:2::1")},
		{VNI: 300, L3VNI: 50002, Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"),
			Subnet6: netip.MustParsePrefix("fd00:1::/64"), Gateway6: netip.MustParseAddr("fd00:1::1")},
	}
	vlanOf := map[uint32]uint16{100: 10, 200: 20, 300: 30}
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("10.0.1.128/25"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("::/0"), netip.MustParsePrefix("fd00::/16"),
		netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("fd00:1::/80"),
		netip.MustParsePrefix("fd99::/48"),
	}
	macs := make([]MAC, 24)
	ips := make([]netip.Addr, 24)
	for i := range macs {
		macs[i] = MAC{2, 0, 0, 0, 1, byte(i)}
		// MAC i lives in nets[i%3], at an address of its subnet (its
		// IPv4 one for i < 12, its IPv6 one from 12): an IP is unique
		// within a tenant, as the fabric enforces, and a MAC has one IP
		// here, so one type-2 key per (VNI, MAC).
		sub := nets[i%3].Subnet
		if i >= 12 {
			sub = nets[i%3].Subnet6
		}
		ips[i] = sub.Addr().Next()
		for range 10 + (i%12)*20 {
			ips[i] = ips[i].Next()
		}
	}
	probeIPs := append([]netip.Addr{netip.MustParseAddr("10.0.1.200"), netip.MustParseAddr("10.9.9.9"),
		netip.MustParseAddr("192.168.3.4"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.0.2.99"),
		netip.MustParseAddr("fd00:1::99"), netip.MustParseAddr("fd00:1::1:0:0:5"), netip.MustParseAddr("fd00:2::99"),
		netip.MustParseAddr("fd99::1"), netip.MustParseAddr("2001:db8::1")}, ips...)

	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		tb := NewRouteTable()
		cfg := leafCfg
		cfg.VTEP = self
		l, err := NewLeaf(cfg, tb)
		if err != nil {
			t.Fatal(err)
		}
		m := &slowLeaf{self: self, nets: map[uint32]Network{}, portCfg: map[portVLAN]uint32{},
			bindings: map[macKey]portVLAN{}, table: tb}
		for _, n := range nets {
			if err := l.AddNetwork(n); err != nil {
				t.Fatal(err)
			}
			m.nets[n.VNI] = n
		}
		randRoute := func() Route {
			i := rng.IntN(len(macs))
			n := nets[rng.IntN(len(nets))]
			mn := nets[i%3]
			v := vteps[rng.IntN(len(vteps))]
			switch rng.IntN(3) {
			case 0: // type 2; each MAC has one IP, so one key per (VNI, MAC)
				return Route{Type: MACIP, VNI: mn.VNI, L3VNI: mn.L3VNI, MAC: macs[i], IP: ips[i], VTEP: v, RouterMAC: MAC{2, 0xaa, 0, 0, 0, byte(i)}}
			case 1:
				return Route{Type: InclusiveMulticast, VNI: n.VNI, VTEP: v}
			default:
				return Route{Type: IPPrefix, L3VNI: n.L3VNI, Prefix: prefixes[rng.IntN(len(prefixes))], VTEP: v, RouterMAC: MAC{2, 0xaa, 1, 0, 0, byte(v.As4()[3])}}
			}
		}
		for step := range 400 {
			switch op := rng.IntN(10); {
			case op < 4:
				r := randRoute()
				prev, had := tb.Lookup(r.VNI, r.MAC, r.IP)
				_ = tb.Add(r)
				// A newer type-2 from another VTEP moves the MAC away.
				if r.Type == MACIP && r.VTEP != self && (!had || prev != r) && m.l2Imported(r.VNI) {
					delete(m.bindings, macKey{r.VNI, r.MAC})
				}
			case op < 6:
				rs := tb.Routes()
				if len(rs) > 0 {
					_ = tb.Withdraw(rs[rng.IntN(len(rs))])
				}
			case op < 7:
				n := nets[rng.IntN(len(nets))]
				pv := portVLAN{rng.IntN(2), vlanOf[n.VNI]}
				if err := l.ConfigurePort(pv.port, pv.vlan, n.VNI); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
				m.portCfg[pv] = n.VNI
			case op < 8:
				n := nets[rng.IntN(len(nets))]
				pv := portVLAN{rng.IntN(2), vlanOf[n.VNI]}
				err := l.UnconfigurePort(pv.port, pv.vlan)
				if _, ok := m.portCfg[pv]; ok != (err == nil) {
					t.Fatalf("seed %d step %d: unconfigure %v: %v, model has it: %v", seed, step, pv, err, ok)
				}
				delete(m.portCfg, pv)
				for k, b := range m.bindings {
					if b == pv || !m.l2Imported(k.vni) {
						delete(m.bindings, k)
					}
				}
			case op < 9:
				n := nets[rng.IntN(len(nets))]
				pv := portVLAN{rng.IntN(2), vlanOf[n.VNI]}
				mac := macs[rng.IntN(len(macs))]
				err := l.BindLocal(pv.port, pv.vlan, mac)
				if _, ok := m.portCfg[pv]; ok != (err == nil) {
					t.Fatalf("seed %d step %d: bind on %v: %v, model configured: %v", seed, step, pv, err, ok)
				}
				if err == nil {
					m.bindings[macKey{n.VNI, mac}] = pv
				}
			default:
				k := macKey{nets[rng.IntN(len(nets))].VNI, macs[rng.IntN(len(macs))]}
				err := l.UnbindLocal(k.vni, k.mac)
				if _, ok := m.bindings[k]; ok != (err == nil) {
					t.Fatalf("seed %d step %d: unbind %v: %v", seed, step, k, err)
				}
				delete(m.bindings, k)
			}
			m.snapshot()
			for _, n := range nets {
				for _, mac := range macs {
					got, gok := l.LookupMAC(n.VNI, mac)
					want, wok := m.lookupMAC(n.VNI, mac)
					if gok != wok || got != want {
						t.Fatalf("seed %d step %d: LookupMAC(%d, %s) = %+v %v, model %+v %v", seed, step, n.VNI, mac, got, gok, want, wok)
					}
				}
			}
			for _, l3vni := range []uint32{50001, 50002} {
				for _, ip := range probeIPs {
					got, gok := l.LookupIP(l3vni, ip)
					want, wok := m.lookupIP(l3vni, ip)
					if gok != wok || !sameFIB(got, want) {
						t.Fatalf("seed %d step %d: LookupIP(%d, %s) = %+v %v, model %+v %v", seed, step, l3vni, ip, got, gok, want, wok)
					}
				}
			}
		}
	}
}
