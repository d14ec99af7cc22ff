package evpn

import (
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
)

// LeafState is what a leaf's tables hold, in a stable order: what an
// agent programs into a real VTEP (bridges, FDB and neighbour entries,
// routes), as FRR's zebra does from its BGP routes.
type LeafState struct {
	Name      string
	VTEP      netip.Addr
	RouterMAC MAC
	// GatewayMAC is the anycast gateway's MAC.
	GatewayMAC MAC
	// Networks are the L2 VNIs the leaf carries (some access port
	// mapped to them), by VNI.
	Networks []NetworkState
	// VRFs are the tenants' L3 VNIs the leaf carries, by L3 VNI.
	VRFs []VRFState
}

// AccessVLAN is one access port's VLAN mapped to a network.
type AccessVLAN struct {
	Port int // index in the leaf's ports
	VLAN uint16
}

// RemoteMAC is a MAC behind another VTEP (type 2).
type RemoteMAC struct {
	MAC  MAC
	VTEP netip.Addr
}

// Neighbor is an ARP- or ND-suppression binding (type 2 with an IP).
type Neighbor struct {
	IP  netip.Addr
	MAC MAC
}

// NetworkState is one L2 VNI on a leaf.
type NetworkState struct {
	Network
	Access []AccessVLAN // by port, then VLAN
	// Flood are the other VTEPs that announced the VNI (type 3), sorted:
	// head-end replication's list.
	Flood []netip.Addr
	// Remote are the MACs behind other VTEPs, by MAC.
	Remote []RemoteMAC
	// Local are the MACs bound (or learnt) on access ports, by MAC.
	Local []LocalMAC
	// ARP are the ARP and ND suppression bindings (local and remote), by
	// IP (IPv4 first).
	ARP []Neighbor
}

// LocalMAC is a MAC behind one of the leaf's access (port, VLAN)s.
type LocalMAC struct {
	MAC MAC
	AccessVLAN
}

// RemoteHost is a /32 or /128 host route over the L3 VNI (symmetric IRB).
type RemoteHost struct {
	IP        netip.Addr
	VTEP      netip.Addr
	RouterMAC MAC
}

// RemotePrefix is a type-5 prefix with ECMP over VTEPs.
type RemotePrefix struct {
	Prefix     netip.Prefix
	VTEPs      []netip.Addr
	RouterMACs []MAC
}

// VRFState is one tenant's routing on a leaf.
type VRFState struct {
	L3VNI uint32
	// Connected are the subnets with their SVI here (L2 VNI), by prefix.
	Connected []ConnectedSubnet
	// Hosts are the remote host routes, by IP.
	Hosts []RemoteHost
	// Prefixes are the remote type-5 prefixes, by prefix.
	Prefixes []RemotePrefix
	// RouterMACs are the router MACs of the remote VTEPs the VRF routes
	// to, by VTEP.
	RouterMACs []RemoteMAC
}

// ConnectedSubnet is a local subnet of a VRF.
type ConnectedSubnet struct {
	Prefix netip.Prefix
	VNI    uint32
}

// State returns a snapshot of the leaf's tables.
func (l *Leaf) State() LeafState {
	s := LeafState{Name: l.cfg.Name, VTEP: l.cfg.VTEP, RouterMAC: l.cfg.RouterMAC, GatewayMAC: l.cfg.GatewayMAC}
	for _, n := range l.bds {
		if len(n.ports) == 0 {
			continue
		}
		ns := NetworkState{Network: n.Network, Flood: slices.Clone(n.flood)}
		for _, pv := range n.ports {
			ns.Access = append(ns.Access, AccessVLAN{Port: pv.port, VLAN: pv.vlan})
		}
		for k, vtep := range l.remote {
			if k.bd() == n.bd {
				ns.Remote = append(ns.Remote, RemoteMAC{MAC: k.mac(), VTEP: vtep})
			}
		}
		slices.SortFunc(ns.Remote, func(a, b RemoteMAC) int { return compareMAC(a.MAC, b.MAC) })
		for k, pv := range l.local {
			if k.bd() == n.bd {
				ns.Local = append(ns.Local, LocalMAC{MAC: k.mac(), AccessVLAN: AccessVLAN{Port: pv.port, VLAN: pv.vlan}})
			}
		}
		slices.SortFunc(ns.Local, func(a, b LocalMAC) int { return compareMAC(a.MAC, b.MAC) })
		for k, mac := range l.arp {
			if k.vni == n.VNI {
				ns.ARP = append(ns.ARP, Neighbor{IP: k.ip, MAC: mac})
			}
		}
		slices.SortFunc(ns.ARP, func(a, b Neighbor) int { return a.IP.Compare(b.IP) })
		s.Networks = append(s.Networks, ns)
	}
	slices.SortFunc(s.Networks, func(a, b NetworkState) int { return int(a.VNI) - int(b.VNI) })
	for _, v := range l.vrfs {
		vs := VRFState{L3VNI: v.l3vni}
		rmacs := map[netip.Addr]MAC{}
		for ip, h := range v.hosts {
			if h.local {
				continue
			}
			vs.Hosts = append(vs.Hosts, RemoteHost{IP: netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}),
				VTEP: h.vtep, RouterMAC: h.rmac})
			rmacs[h.vtep] = h.rmac
		}
		for ip, h := range v.hosts6 {
			if !h.local {
				vs.Hosts = append(vs.Hosts, RemoteHost{IP: ip, VTEP: h.vtep, RouterMAC: h.rmac})
				rmacs[h.vtep] = h.rmac
			}
		}
		slices.SortFunc(vs.Hosts, func(a, b RemoteHost) int { return a.IP.Compare(b.IP) })
		walk := func(p netip.Prefix, pr *prefixRoute) bool {
			if pr.connected != 0 {
				vs.Connected = append(vs.Connected, ConnectedSubnet{Prefix: p, VNI: pr.connected})
			}
			if len(pr.vteps) > 0 {
				rp := RemotePrefix{Prefix: p}
				for _, rv := range pr.vteps {
					rp.VTEPs = append(rp.VTEPs, rv.vtep)
					rp.RouterMACs = append(rp.RouterMACs, rv.rmac)
					rmacs[rv.vtep] = rv.rmac
				}
				vs.Prefixes = append(vs.Prefixes, rp)
			}
			return true
		}
		v.prefix.Walk(walk)
		v.prefix6.Walk(walk)
		slices.SortFunc(vs.Connected, func(a, b ConnectedSubnet) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
		slices.SortFunc(vs.Prefixes, func(a, b RemotePrefix) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
		for vtep, mac := range rmacs {
			vs.RouterMACs = append(vs.RouterMACs, RemoteMAC{MAC: mac, VTEP: vtep})
		}
		slices.SortFunc(vs.RouterMACs, func(a, b RemoteMAC) int { return a.VTEP.Compare(b.VTEP) })
		s.VRFs = append(s.VRFs, vs)
	}
	slices.SortFunc(s.VRFs, func(a, b VRFState) int { return int(a.L3VNI) - int(b.L3VNI) })
	return s
}

func compareMAC(a, b MAC) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// UnderlayRoutes returns a spine's or leaf's underlay routes as they are
// now (ECMP shortest paths to every loopback over the links that are
// up; its own loopback with next hop l3.LocalPort), by prefix.
func (f *Fabric) UnderlayRoutes(node string) []l3.Route {
	return f.graph.routes(f.linkDown)[node]
}

// Network returns the network called name.
func (f *Fabric) Network(name string) (datapath.NetworkSpec, bool) {
	n, ok := f.networks[name]
	if !ok {
		return datapath.NetworkSpec{}, false
	}
	return n.spec, true
}

// InstanceNetwork returns the network an attached instance is on (a pod
// attached by the CNI plugin arrives with its port's network unnamed).
func (f *Fabric) InstanceNetwork(instance string) (datapath.NetworkSpec, bool) {
	in, ok := f.instances[instance]
	if !ok {
		return datapath.NetworkSpec{}, false
	}
	return in.net.spec, true
}
