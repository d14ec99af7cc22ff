package evpn

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// MAC is an Ethernet address usable as a map key.
type MAC [6]byte

// MACOf converts hw (6 bytes) to a MAC; anything else gives the zero MAC.
func MACOf(hw net.HardwareAddr) MAC {
	var m MAC
	if len(hw) == 6 {
		copy(m[:], hw)
	}
	return m
}

// HardwareAddr returns m as a net.HardwareAddr.
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// RouteType is the EVPN route type (RFC 7432, RFC 9136).
type RouteType uint8

// The EVPN route types netbed models.
const (
	// MACIP (type 2) binds a MAC, and optionally an IP, in an L2 VNI to the
	// VTEP behind which it lives. With an IP it also carries the tenant's
	// L3 VNI and the VTEP's router MAC, for symmetric IRB.
	MACIP RouteType = 2
	// InclusiveMulticast (type 3) says that a VTEP wants the BUM traffic of
	// an L2 VNI; VTEPs replicate BUM frames to every such VTEP (ingress
	// replication).
	InclusiveMulticast RouteType = 3
	// IPPrefix (type 5) announces a prefix in a tenant's L3 VNI.
	IPPrefix RouteType = 5
)

func (t RouteType) String() string {
	switch t {
	case MACIP:
		return "type-2"
	case InclusiveMulticast:
		return "type-3"
	case IPPrefix:
		return "type-5"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Route is one EVPN route. Which fields matter depends on Type:
//
//	type 2: VNI, MAC, IP (optional), L3VNI and RouterMAC (with an IP), VTEP
//	type 3: VNI, VTEP
//	type 5: L3VNI, Prefix, VTEP, RouterMAC
type Route struct {
	Type      RouteType
	VNI       uint32 // L2 VNI (types 2 and 3)
	L3VNI     uint32 // tenant L3 VNI (type 2 with an IP, type 5)
	MAC       MAC
	IP        netip.Addr
	Prefix    netip.Prefix
	VTEP      netip.Addr // next hop: the originating VTEP's loopback
	RouterMAC MAC        // the originating VTEP's router MAC (inner dst MAC for IRB)
}

func (r Route) String() string {
	switch r.Type {
	case MACIP:
		if r.IP.IsValid() {
			return fmt.Sprintf("type-2 vni %d %s %s l3vni %d via %s", r.VNI, r.MAC, r.IP, r.L3VNI, r.VTEP)
		}
		return fmt.Sprintf("type-2 vni %d %s via %s", r.VNI, r.MAC, r.VTEP)
	case InclusiveMulticast:
		return fmt.Sprintf("type-3 vni %d vtep %s", r.VNI, r.VTEP)
	case IPPrefix:
		return fmt.Sprintf("type-5 l3vni %d %s via %s", r.L3VNI, r.Prefix, r.VTEP)
	}
	return fmt.Sprintf("%s (invalid)", r.Type)
}

// Errors returned by the route table.
var (
	ErrInvalidRoute = errors.New("invalid EVPN route")
	ErrNotFound     = errors.New("not found")
)

// Validate reports what is missing from r for its type.
func (r Route) Validate() error {
	if !r.VTEP.Is4() {
		return fmt.Errorf("%w: %s: next-hop VTEP must be an IPv4 address", ErrInvalidRoute, r)
	}
	switch r.Type {
	case MACIP:
		if r.VNI == 0 || r.VNI >= 1<<24 {
			return fmt.Errorf("%w: %s: L2 VNI must be 1..16777215", ErrInvalidRoute, r)
		}
		if r.MAC == (MAC{}) {
			return fmt.Errorf("%w: %s: MAC is zero", ErrInvalidRoute, r)
		}
		if r.IP.IsValid() && (r.L3VNI == 0 || r.L3VNI >= 1<<24) {
			return fmt.Errorf("%w: %s: a type-2 route with an IP needs the tenant's L3 VNI", ErrInvalidRoute, r)
		}
	case InclusiveMulticast:
		if r.VNI == 0 || r.VNI >= 1<<24 {
			return fmt.Errorf("%w: %s: L2 VNI must be 1..16777215", ErrInvalidRoute, r)
		}
	case IPPrefix:
		if r.L3VNI == 0 || r.L3VNI >= 1<<24 || !r.Prefix.IsValid() {
			return fmt.Errorf("%w: %s: a type-5 route needs an L3 VNI and a prefix", ErrInvalidRoute, r)
		}
	default:
		return fmt.Errorf("%w: unsupported route type %d", ErrInvalidRoute, uint8(r.Type))
	}
	return nil
}

// key identifies a route in the table. A type-2 route's key leaves out the
// VTEP: a MAC lives behind one VTEP at a time, and a newer advertisement from
// another VTEP replaces the older one (MAC mobility).
type key struct {
	typ    RouteType
	vni    uint32
	l3vni  uint32
	mac    MAC
	ip     netip.Addr
	prefix netip.Prefix
	vtep   netip.Addr
}

func (r Route) key() key {
	k := key{typ: r.Type}
	switch r.Type {
	case MACIP:
		k.vni, k.mac, k.ip = r.VNI, r.MAC, r.IP
	case InclusiveMulticast:
		k.vni, k.vtep = r.VNI, r.VTEP
	case IPPrefix:
		k.l3vni, k.prefix, k.vtep = r.L3VNI, r.Prefix.Masked(), r.VTEP
	}
	return k
}

// Op is what an Update does.
type Op uint8

// Update operations.
const (
	OpAdd Op = iota + 1
	OpWithdraw
)

func (o Op) String() string {
	if o == OpAdd {
		return "add"
	}
	return "withdraw"
}

// Update is one change to the table, as subscribers see it. A type-2 route
// that moves to another VTEP is a withdraw of the old route followed by an
// add of the new one.
type Update struct {
	Op    Op
	Route Route
}

// Counts are the number of routes of each type.
type Counts struct {
	MACIP, InclusiveMulticast, IPPrefix int
}

// Total is the number of routes.
func (c Counts) Total() int { return c.MACIP + c.InclusiveMulticast + c.IPPrefix }

func (c *Counts) add(t RouteType, d int) {
	switch t {
	case MACIP:
		c.MACIP += d
	case InclusiveMulticast:
		c.InclusiveMulticast += d
	case IPPrefix:
		c.IPPrefix += d
	}
}

// RouteTable is the fabric's EVPN routes, as every VTEP would see them after
// BGP has converged. It does no I/O: the fabric fills it directly when it
// attaches an instance (as the controller would), a BGP speaker can fill it
// from received routes. Subscribers (the leaves) are told of every change
// and import the routes of the VNIs they carry.
//
// A RouteTable is not safe for concurrent use; subscribers run inside Add
// and Withdraw and must not change the table.
type RouteTable struct {
	routes map[key]Route
	byMAC  map[macKey][]netip.Addr // type-2 keys by (VNI, MAC): their IPs
	// byVNI holds the keys Import(vni) returns: every route under its
	// VNI, and a type 5 or a type 2 with an IP under its L3 VNI too.
	byVNI  map[uint32]map[key]struct{}
	subs   map[int]func(Update)
	order  []int // subs' IDs, ascending: the order subscribers are called in
	nextID int
	moves  int
}

// NewRouteTable returns an empty table.
func NewRouteTable() *RouteTable {
	return &RouteTable{routes: map[key]Route{}, byMAC: map[macKey][]netip.Addr{},
		byVNI: map[uint32]map[key]struct{}{}, subs: map[int]func(Update){}}
}

// index adds k (r's key) to, or (add false) removes it from, the sets
// Import reads: r's VNI's, and its L3 VNI's for a type 5 or a type 2 with
// an IP.
func (t *RouteTable) index(k key, r Route, add bool) {
	vnis := []uint32{r.VNI}
	if r.Type == IPPrefix || r.IP.IsValid() {
		vnis = append(vnis, r.L3VNI)
	}
	for _, n := range vnis {
		set := t.byVNI[n]
		switch {
		case add && set == nil:
			t.byVNI[n] = map[key]struct{}{k: {}}
		case add:
			set[k] = struct{}{}
		case set != nil:
			delete(set, k)
			if len(set) == 0 {
				delete(t.byVNI, n)
			}
		}
	}
}

// Add installs or replaces r and notifies subscribers. Adding a route that
// is already present unchanged notifies no one.
func (t *RouteTable) Add(r Route) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("add route: %w", err)
	}
	if r.Type == IPPrefix {
		r.Prefix = r.Prefix.Masked()
	}
	k := r.key()
	if old, ok := t.routes[k]; ok {
		if old == r {
			return nil
		}
		if old.VTEP != r.VTEP {
			t.moves++
		}
		t.remove(old)
		t.notify(Update{OpWithdraw, old})
	}
	t.put(r)
	t.notify(Update{OpAdd, r})
	return nil
}

// Withdraw removes r. A type-2 route is removed only if it still points at
// r.VTEP, so a late withdraw from the VTEP a MAC moved away from does not
// remove the newer route; it returns ErrNotFound then.
func (t *RouteTable) Withdraw(r Route) error {
	if r.Type == IPPrefix {
		r.Prefix = r.Prefix.Masked()
	}
	k := r.key()
	old, ok := t.routes[k]
	if !ok || old.VTEP != r.VTEP {
		return fmt.Errorf("withdraw %s: %w", r, ErrNotFound)
	}
	t.remove(old)
	t.notify(Update{OpWithdraw, old})
	return nil
}

func (t *RouteTable) put(r Route) {
	k := r.key()
	t.routes[k] = r
	t.index(k, r, true)
	if r.Type == MACIP {
		mk := macKey{r.VNI, r.MAC}
		t.byMAC[mk] = append(t.byMAC[mk], r.IP)
	}
}

func (t *RouteTable) remove(r Route) {
	k := r.key()
	delete(t.routes, k)
	t.index(k, r, false)
	if r.Type == MACIP {
		mk := macKey{r.VNI, r.MAC}
		ips := slices.DeleteFunc(t.byMAC[mk], func(a netip.Addr) bool { return a == r.IP })
		if len(ips) == 0 {
			delete(t.byMAC, mk)
		} else {
			t.byMAC[mk] = ips
		}
	}
}

// LookupMAC returns the type-2 routes of mac in vni (MAC-only and with
// each of its IPs), in a stable order.
func (t *RouteTable) LookupMAC(vni uint32, mac MAC) []Route {
	var out []Route
	for _, ip := range t.byMAC[macKey{vni, mac}] {
		out = append(out, t.routes[key{typ: MACIP, vni: vni, mac: mac, ip: ip}])
	}
	slices.SortFunc(out, compareRoutes)
	return out
}

// WithdrawVTEP removes every route whose next hop is vtep (the VTEP's BGP
// session went down) and returns how many there were.
func (t *RouteTable) WithdrawVTEP(vtep netip.Addr) int {
	var gone []Route
	for _, r := range t.routes {
		if r.VTEP == vtep {
			gone = append(gone, r)
		}
	}
	slices.SortFunc(gone, compareRoutes)
	for _, r := range gone {
		t.remove(r)
		t.notify(Update{OpWithdraw, r})
	}
	return len(gone)
}

func (t *RouteTable) notify(u Update) {
	// A subscriber may cancel itself or another meanwhile: walk a copy
	// only then (cancel replaces t.order).
	for _, id := range t.order {
		if f, ok := t.subs[id]; ok {
			f(u)
		}
	}
}

// Subscribe calls f for every later change, in order, and returns a
// function that ends the subscription. Subscribers are called in the order
// they subscribed.
func (t *RouteTable) Subscribe(f func(Update)) (cancel func()) {
	id := t.nextID
	t.nextID++
	t.subs[id] = f
	t.order = append(t.order, id)
	return func() {
		if _, ok := t.subs[id]; !ok {
			return
		}
		delete(t.subs, id)
		t.order = slices.DeleteFunc(slices.Clone(t.order), func(x int) bool { return x == id })
	}
}

// Routes returns every route in a stable order (type, VNI, key).
func (t *RouteTable) Routes() []Route {
	out := make([]Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, compareRoutes)
	return out
}

// Import returns, in a stable order, the routes a VTEP that carries vni
// imports for it: type-2 and type-3 routes whose L2 VNI is vni, and type-2
// (with an IP) and type-5 routes whose L3 VNI is vni.
func (t *RouteTable) Import(vni uint32) []Route {
	set := t.byVNI[vni]
	if len(set) == 0 {
		return nil
	}
	out := make([]Route, 0, len(set))
	for k := range set {
		out = append(out, t.routes[k])
	}
	slices.SortFunc(out, compareRoutes)
	return out
}

// Lookup returns the type-2 route for (vni, mac, ip); ip may be the zero
// Addr for a MAC-only route.
func (t *RouteTable) Lookup(vni uint32, mac MAC, ip netip.Addr) (Route, bool) {
	r, ok := t.routes[key{typ: MACIP, vni: vni, mac: mac, ip: ip}]
	return r, ok
}

// Counts returns the number of routes of each type.
func (t *RouteTable) Counts() Counts {
	var c Counts
	for _, r := range t.routes {
		c.add(r.Type, 1)
	}
	return c
}

// CountsByVTEP returns the route counts per originating VTEP.
func (t *RouteTable) CountsByVTEP() map[netip.Addr]Counts {
	out := map[netip.Addr]Counts{}
	for _, r := range t.routes {
		c := out[r.VTEP]
		c.add(r.Type, 1)
		out[r.VTEP] = c
	}
	return out
}

// Moves is how many times a type-2 route moved to another VTEP.
func (t *RouteTable) Moves() int { return t.moves }

func compareRoutes(a, b Route) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.VNI, b.VNI),
		cmp.Compare(a.L3VNI, b.L3VNI),
		slices.Compare(a.MAC[:], b.MAC[:]),
		a.IP.Compare(b.IP),
		a.Prefix.Addr().Compare(b.Prefix.Addr()),
		cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
		a.VTEP.Compare(b.VTEP),
	)
}
