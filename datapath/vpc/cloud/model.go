package cloud

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// Call is one API call as the model saw it, for a spawn timeline or a
// report: when it arrived, what it was, how long it took, its error code
// ("" on success).
type Call struct {
	At     time.Duration
	Action string
	Took   time.Duration
	Code   Code
}

// Stats counts calls by action.
type Stats struct {
	Calls     map[string]int
	Throttled map[string]int
	Errors    map[Code]int
}

// Model is the in-memory cloud: an implementation of API over Limits and
// a Clock. Safe for concurrent use; every call sleeps its action's latency
// on the clock without holding the model's lock.
type Model struct {
	clock  Clock
	limits *Limits
	// observe, if set, sees every call after it returns.
	observe func(Call)

	mu        sync.Mutex
	seq       int
	subnets   map[SubnetID]*subnet
	instances map[InstanceID]*instance
	enis      map[ENIID]*eni
	attach    map[AttachmentID]ENIID
	addrs     map[AllocationID]*Address
	assoc     map[AssociationID]AllocationID
	public    map[netip.Addr]bool
	buckets   map[string]*bucket
	stats     Stats
}

var _ API = (*Model)(nil)

type subnet struct {
	Subnet
	used map[netip.Addr]ENIID
}

type instance struct {
	Instance
	typ   InstanceType
	index map[int]ENIID
}

type eni struct {
	NetworkInterface
}

type bucket struct {
	Bucket
	tokens float64
	at     time.Duration
}

// take refills b to now and takes a token if there is one.
func (b *bucket) take(now time.Duration) bool {
	if now > b.at {
		b.tokens += b.Refill * (now - b.at).Seconds()
		b.tokens = min(b.tokens, float64(b.Capacity))
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Option configures a Model.
type Option func(*Model)

// WithObserver has f see every call after it returns (from the caller's
// goroutine, without the model's lock held).
func WithObserver(f func(Call)) Option { return func(m *Model) { m.observe = f } }

// New returns an empty cloud with limits (nil: DefaultLimits()) on clock.
func New(clock Clock, limits *Limits, opts ...Option) *Model {
	if limits == nil {
		limits = DefaultLimits()
	}
	m := &Model{
		clock: clock, limits: limits,
		subnets: map[SubnetID]*subnet{}, instances: map[InstanceID]*instance{},
		enis: map[ENIID]*eni{}, attach: map[AttachmentID]ENIID{},
		addrs: map[AllocationID]*Address{}, assoc: map[AssociationID]AllocationID{},
		public: map[netip.Addr]bool{}, buckets: map[string]*bucket{},
		stats: Stats{Calls: map[string]int{}, Throttled: map[string]int{}, Errors: map[Code]int{}},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Limits returns the model's configuration (not to be changed).
func (m *Model) Limits() *Limits { return m.limits }

// Stats returns a copy of the call counts so far.
func (m *Model) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Calls: map[string]int{}, Throttled: map[string]int{}, Errors: map[Code]int{}}
	for k, v := range m.stats.Calls {
		s.Calls[k] = v
	}
	for k, v := range m.stats.Throttled {
		s.Throttled[k] = v
	}
	for k, v := range m.stats.Errors {
		s.Errors[k] = v
	}
	return s
}

// call runs one action: a token from the action's bucket at arrival, the
// action's latency on the clock, then apply under the lock. A throttled
// call also takes the latency (the round trip to the endpoint) and
// changes nothing.
func (m *Model) call(ctx context.Context, action string, apply func() error) error {
	a, ok := m.limits.Actions[action]
	if !ok {
		return fail(action, InvalidParameterValue, "action %s has no entry in the limits' actions", action)
	}
	start := m.clock.Now()
	m.mu.Lock()
	b := m.buckets[action]
	if b == nil {
		b = &bucket{Bucket: a.Bucket, tokens: float64(a.Bucket.Capacity), at: start}
		m.buckets[action] = b
	}
	allowed := b.Capacity <= 0 || b.take(start)
	m.stats.Calls[action]++
	m.mu.Unlock()

	if a.Latency > 0 {
		if err := m.clock.Sleep(ctx, a.Latency); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
	}
	var err error
	if !allowed {
		err = fail(action, RequestLimitExceeded, "request limit exceeded for %s (its bucket holds %d tokens and refills %g per second)", action, b.Capacity, b.Refill)
	} else {
		m.mu.Lock()
		err = apply()
		m.mu.Unlock()
	}
	code := CodeOf(err)
	if code != "" {
		m.mu.Lock()
		m.stats.Errors[code]++
		if code == RequestLimitExceeded {
			m.stats.Throttled[action]++
		}
		m.mu.Unlock()
	}
	if m.observe != nil {
		m.observe(Call{At: start, Action: action, Took: m.clock.Now() - start, Code: code})
	}
	return err
}

func (m *Model) id(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s-%08x", prefix, m.seq)
}

// CreateSubnet implements API.
func (m *Model) CreateSubnet(ctx context.Context, cidr netip.Prefix, zone string) (Subnet, error) {
	const action = "CreateSubnet"
	var out Subnet
	err := m.call(ctx, action, func() error {
		if !cidr.IsValid() || !cidr.Addr().Is4() || cidr.Bits() < 16 || cidr.Bits() > 28 {
			return fail(action, InvalidParameterValue, "subnet CIDR %s: must be an IPv4 prefix from /16 to /28", cidr)
		}
		cidr = cidr.Masked()
		for _, s := range m.sortedSubnets() {
			if s.CIDR.Overlaps(cidr) {
				return fail(action, InvalidSubnetConflict, "CIDR %s conflicts with %s (%s)", cidr, s.ID, s.CIDR)
			}
		}
		s := &subnet{Subnet: Subnet{ID: SubnetID(m.id("subnet")), CIDR: cidr, Zone: zone}, used: map[netip.Addr]ENIID{}}
		m.subnets[s.ID] = s
		out = s.Subnet
		return nil
	})
	return out, err
}

func (m *Model) sortedSubnets() []*subnet {
	out := make([]*subnet, 0, len(m.subnets))
	for _, s := range m.subnets {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// reserved reports whether EC2 keeps a in s: the first four addresses and
// the last.
func (s *subnet) reserved(a netip.Addr) bool {
	first := s.CIDR.Addr()
	for range 4 {
		if a == first {
			return true
		}
		first = first.Next()
	}
	return a == last(s.CIDR)
}

func last(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// free returns n free addresses of s, lowest first.
func (s *subnet) free(n int) ([]netip.Addr, bool) {
	var out []netip.Addr
	for a := s.CIDR.Addr(); s.CIDR.Contains(a) && len(out) < n; a = a.Next() {
		if _, held := s.used[a]; !held && !s.reserved(a) {
			out = append(out, a)
		}
	}
	return out, len(out) == n
}

// size is the number of addresses s can give out.
func (s *subnet) size() int { return 1<<(32-s.CIDR.Bits()) - 5 }

func (m *Model) subnet(action string, id SubnetID) (*subnet, error) {
	s := m.subnets[id]
	if s == nil {
		return nil, fail(action, InvalidSubnetIDNotFound, "the subnet ID '%s' does not exist", id)
	}
	return s, nil
}

func (m *Model) eni(action string, id ENIID) (*eni, error) {
	e := m.enis[id]
	if e == nil {
		return nil, fail(action, InvalidNetworkInterfaceIDNotFound, "the networkInterface ID '%s' does not exist", id)
	}
	return e, nil
}

func (m *Model) instance(action string, id InstanceID) (*instance, error) {
	in := m.instances[id]
	if in == nil {
		return nil, fail(action, InvalidInstanceIDNotFound, "the instance ID '%s' does not exist", id)
	}
	return in, nil
}

// newENI creates an ENI in s with primary (zero: the lowest free) and
// secondaries more addresses, all or nothing.
func (m *Model) newENI(action string, s *subnet, primary netip.Addr, secondaries int, desc string) (*eni, error) {
	if secondaries < 0 {
		return nil, fail(action, InvalidParameterValue, "secondary address count %d is negative", secondaries)
	}
	if most := m.maxPerENI(); 1+secondaries > most {
		return nil, fail(action, PrivateIpAddressLimitExceeded, "%d addresses on one network interface in %s: no instance type allows more than %d", 1+secondaries, s.ID, most)
	}
	want := 1 + secondaries
	var addrs []netip.Addr
	if primary.IsValid() {
		if err := m.checkSpecific(action, s, primary); err != nil {
			return nil, err
		}
		if _, held := s.used[primary]; held {
			return nil, fail(action, InvalidIPAddressInUse, "address %s in %s is in use by %s", primary, s.ID, s.used[primary])
		}
		s.used[primary] = "" // hold it while the rest are picked
		more, ok := s.free(secondaries)
		delete(s.used, primary)
		if !ok {
			return nil, fail(action, InsufficientFreeAddressesInSubnet, "subnet %s (%s) has %d free addresses, %d asked", s.ID, s.CIDR, s.size()-len(s.used), want)
		}
		addrs = append([]netip.Addr{primary}, more...)
	} else {
		var ok bool
		if addrs, ok = s.free(want); !ok {
			return nil, fail(action, InsufficientFreeAddressesInSubnet, "subnet %s (%s) has %d free addresses, %d asked", s.ID, s.CIDR, s.size()-len(s.used), want)
		}
	}
	id := ENIID(m.id("eni"))
	e := &eni{NetworkInterface{ID: id, Subnet: s.ID, CIDR: s.CIDR, Primary: addrs[0], Secondaries: addrs[1:], Description: desc,
		MAC: fmt.Sprintf("02:0e:%02x:%02x:%02x:%02x", byte(m.seq>>24), byte(m.seq>>16), byte(m.seq>>8), byte(m.seq))}}
	for _, a := range addrs {
		s.used[a] = id
	}
	m.enis[id] = e
	return e, nil
}

func (m *Model) maxPerENI() int {
	most := 0
	for _, t := range m.limits.InstanceTypes {
		most = max(most, t.IPv4PerENI)
	}
	return most
}

func (m *Model) checkSpecific(action string, s *subnet, a netip.Addr) error {
	if !a.Is4() || !s.CIDR.Contains(a) {
		return fail(action, InvalidParameterValue, "address %s is not in subnet %s (%s)", a, s.ID, s.CIDR)
	}
	if s.reserved(a) {
		return fail(action, InvalidParameterValue, "address %s is reserved in subnet %s (%s): the first four and the last are the provider's", a, s.ID, s.CIDR)
	}
	return nil
}

// RunInstance implements API: the instance with its primary ENI.
func (m *Model) RunInstance(ctx context.Context, in RunInstanceInput) (Instance, error) {
	const action = "RunInstances"
	var out Instance
	err := m.call(ctx, action, func() error {
		t, ok := m.limits.InstanceType(in.Type)
		if !ok {
			return fail(action, InvalidParameterValue, "instance %q: unknown instance type %q", in.Name, in.Type)
		}
		s, err := m.subnet(action, in.Subnet)
		if err != nil {
			return err
		}
		e, err := m.newENI(action, s, in.PrivateIP, 0, "primary network interface of "+in.Name)
		if err != nil {
			return err
		}
		id := InstanceID(m.id("i"))
		inst := &instance{Instance: Instance{ID: id, Type: t.Name, Name: in.Name, Subnet: s.ID}, typ: t, index: map[int]ENIID{}}
		m.instances[id] = inst
		m.attachENI(inst, e, 0)
		out = inst.public()
		return nil
	})
	return out, err
}

func (in *instance) public() Instance {
	out := in.Instance
	idx := make([]int, 0, len(in.index))
	for i := range in.index {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	out.ENIs = nil
	for _, i := range idx {
		out.ENIs = append(out.ENIs, in.index[i])
	}
	return out
}

func (m *Model) attachENI(in *instance, e *eni, index int) AttachmentID {
	id := AttachmentID(m.id("eni-attach"))
	e.Attachment = &Attachment{ID: id, Instance: in.ID, DeviceIndex: index}
	in.index[index] = e.ID
	m.attach[id] = e.ID
	return id
}

// TerminateInstance implements API: the primary ENI is deleted with the
// instance, the others are detached and stay.
func (m *Model) TerminateInstance(ctx context.Context, id InstanceID) error {
	const action = "TerminateInstances"
	return m.call(ctx, action, func() error {
		in, err := m.instance(action, id)
		if err != nil {
			return err
		}
		for idx, eid := range in.index {
			e := m.enis[eid]
			delete(m.attach, e.Attachment.ID)
			e.Attachment = nil
			if idx == 0 {
				m.deleteENI(e)
			}
		}
		delete(m.instances, id)
		return nil
	})
}

// DescribeInstance implements API.
func (m *Model) DescribeInstance(ctx context.Context, id InstanceID) (Instance, error) {
	const action = "DescribeInstances"
	var out Instance
	err := m.call(ctx, action, func() error {
		in, err := m.instance(action, id)
		if err == nil {
			out = in.public()
		}
		return err
	})
	return out, err
}

// CreateNetworkInterface implements API.
func (m *Model) CreateNetworkInterface(ctx context.Context, in CreateNetworkInterfaceInput) (NetworkInterface, error) {
	const action = "CreateNetworkInterface"
	var out NetworkInterface
	err := m.call(ctx, action, func() error {
		s, err := m.subnet(action, in.Subnet)
		if err != nil {
			return err
		}
		e, err := m.newENI(action, s, in.PrivateIP, in.SecondaryCount, in.Description)
		if err == nil {
			out = e.public()
		}
		return err
	})
	return out, err
}

func (e *eni) public() NetworkInterface {
	out := e.NetworkInterface
	out.Secondaries = slices.Clone(e.Secondaries)
	if e.Attachment != nil {
		a := *e.Attachment
		out.Attachment = &a
	}
	return out
}

// AttachNetworkInterface implements API.
func (m *Model) AttachNetworkInterface(ctx context.Context, in AttachNetworkInterfaceInput) (AttachmentID, error) {
	const action = "AttachNetworkInterface"
	var out AttachmentID
	err := m.call(ctx, action, func() error {
		e, err := m.eni(action, in.ENI)
		if err != nil {
			return err
		}
		inst, err := m.instance(action, in.Instance)
		if err != nil {
			return err
		}
		if e.Attachment != nil {
			return fail(action, InvalidNetworkInterfaceInUse, "interface %s is attached to %s at device index %d", e.ID, e.Attachment.Instance, e.Attachment.DeviceIndex)
		}
		if s := m.subnets[e.Subnet]; s.Zone != m.subnets[inst.Subnet].Zone {
			return fail(action, InvalidParameterValue, "interface %s is in zone %q (%s), instance %s (%s) in zone %q", e.ID, s.Zone, s.ID, inst.ID, inst.Name, m.subnets[inst.Subnet].Zone)
		}
		if len(inst.index) >= inst.typ.ENIs {
			return fail(action, AttachmentLimitExceeded, "interface count %d exceeds the limit for %s (%s, %s: %d network interfaces)", len(inst.index)+1, inst.ID, inst.Name, inst.typ.Name, inst.typ.ENIs)
		}
		if n := 1 + len(e.Secondaries); n > inst.typ.IPv4PerENI {
			return fail(action, PrivateIpAddressLimitExceeded, "interface %s holds %d addresses, %s (%s, %s) allows %d per interface", e.ID, n, inst.ID, inst.Name, inst.typ.Name, inst.typ.IPv4PerENI)
		}
		idx := in.DeviceIndex
		if idx < 0 {
			for idx = 0; inst.index[idx] != ""; idx++ {
			}
		}
		if idx >= inst.typ.ENIs {
			return fail(action, InvalidParameterValue, "device index %d on %s (%s, %s): indexes go from 0 to %d", idx, inst.ID, inst.Name, inst.typ.Name, inst.typ.ENIs-1)
		}
		if held := inst.index[idx]; held != "" {
			return fail(action, InvalidParameterValue, "device index %d on %s (%s) is taken by %s", idx, inst.ID, inst.Name, held)
		}
		out = m.attachENI(inst, e, idx)
		return nil
	})
	return out, err
}

// DetachNetworkInterface implements API.
func (m *Model) DetachNetworkInterface(ctx context.Context, in DetachNetworkInterfaceInput) error {
	const action = "DetachNetworkInterface"
	return m.call(ctx, action, func() error {
		eid, ok := m.attach[in.Attachment]
		if !ok {
			return fail(action, InvalidAttachmentIDNotFound, "the attachment ID '%s' does not exist", in.Attachment)
		}
		e := m.enis[eid]
		if e.Attachment.DeviceIndex == 0 {
			return fail(action, OperationNotPermitted, "interface %s is the primary network interface of %s and cannot be detached", e.ID, e.Attachment.Instance)
		}
		inst := m.instances[e.Attachment.Instance]
		delete(inst.index, e.Attachment.DeviceIndex)
		delete(m.attach, in.Attachment)
		e.Attachment = nil
		return nil
	})
}

// DeleteNetworkInterface implements API: the ENI must be detached; its
// addresses go back to the subnet and their floating IPs are disassociated.
func (m *Model) DeleteNetworkInterface(ctx context.Context, id ENIID) error {
	const action = "DeleteNetworkInterface"
	return m.call(ctx, action, func() error {
		e, err := m.eni(action, id)
		if err != nil {
			return err
		}
		if e.Attachment != nil {
			return fail(action, InvalidNetworkInterfaceInUse, "interface %s is attached to %s at device index %d", e.ID, e.Attachment.Instance, e.Attachment.DeviceIndex)
		}
		m.deleteENI(e)
		return nil
	})
}

func (m *Model) deleteENI(e *eni) {
	s := m.subnets[e.Subnet]
	for _, a := range append([]netip.Addr{e.Primary}, e.Secondaries...) {
		delete(s.used, a)
		m.disassociatePrivate(e.ID, a)
	}
	delete(m.enis, e.ID)
}

// disassociatePrivate drops the floating IP on (id, a), if any.
func (m *Model) disassociatePrivate(id ENIID, a netip.Addr) {
	for _, addr := range m.addrs {
		if addr.ENI == id && addr.PrivateIP == a {
			delete(m.assoc, addr.AssociationID)
			addr.AssociationID, addr.ENI, addr.PrivateIP = "", "", netip.Addr{}
		}
	}
}

// DescribeNetworkInterface implements API.
func (m *Model) DescribeNetworkInterface(ctx context.Context, id ENIID) (NetworkInterface, error) {
	const action = "DescribeNetworkInterfaces"
	var out NetworkInterface
	err := m.call(ctx, action, func() error {
		e, err := m.eni(action, id)
		if err == nil {
			out = e.public()
		}
		return err
	})
	return out, err
}

// perENI is the address limit of e: its instance type's if attached, the
// largest of all types otherwise (EC2 checks again on attach).
func (m *Model) perENI(e *eni) (int, string) {
	if e.Attachment != nil {
		in := m.instances[e.Attachment.Instance]
		return in.typ.IPv4PerENI, fmt.Sprintf("%s (%s, %s)", in.ID, in.Name, in.typ.Name)
	}
	return m.maxPerENI(), "any instance type"
}

// AssignPrivateIpAddresses implements API. A specific address held by
// another ENI of the subnet moves with AllowReassignment, keeping its
// floating IP (as EC2 documents for a reassigned secondary address).
func (m *Model) AssignPrivateIpAddresses(ctx context.Context, in AssignPrivateIPAddressesInput) ([]netip.Addr, error) {
	const action = "AssignPrivateIpAddresses"
	var out []netip.Addr
	err := m.call(ctx, action, func() error {
		e, err := m.eni(action, in.ENI)
		if err != nil {
			return err
		}
		if (in.Count > 0) == (len(in.Addresses) > 0) {
			return fail(action, InvalidParameterCombination, "interface %s: give a secondary address count or addresses, not both or neither (count %d, %d addresses)", e.ID, in.Count, len(in.Addresses))
		}
		if in.Count < 0 {
			return fail(action, InvalidParameterValue, "interface %s: secondary address count %d", e.ID, in.Count)
		}
		s := m.subnets[e.Subnet]
		n := in.Count + len(in.Addresses)
		limit, who := m.perENI(e)
		if have := 1 + len(e.Secondaries); have+n > limit {
			return fail(action, PrivateIpAddressLimitExceeded, "interface %s holds %d addresses, %d more asked: %s allows %d per interface", e.ID, have, n, who, limit)
		}
		if in.Count > 0 {
			addrs, ok := s.free(in.Count)
			if !ok {
				return fail(action, InsufficientFreeAddressesInSubnet, "subnet %s (%s) has %d free addresses, %d asked for interface %s", s.ID, s.CIDR, s.size()-len(s.used), in.Count, e.ID)
			}
			for _, a := range addrs {
				s.used[a] = e.ID
			}
			e.Secondaries = append(e.Secondaries, addrs...)
			out = addrs
			return nil
		}
		seen := map[netip.Addr]bool{}
		for _, a := range in.Addresses {
			if err := m.checkSpecific(action, s, a); err != nil {
				return err
			}
			if seen[a] {
				return fail(action, InvalidParameterValue, "address %s is given twice for interface %s", a, e.ID)
			}
			seen[a] = true
			holder, held := s.used[a]
			switch {
			case !held:
			case holder == e.ID:
				return fail(action, InvalidParameterValue, "address %s is already on interface %s", a, e.ID)
			case !in.AllowReassignment:
				return fail(action, InvalidIPAddressInUse, "address %s in %s is in use by %s", a, s.ID, holder)
			case m.enis[holder].Primary == a:
				return fail(action, InvalidIPAddressInUse, "address %s is the primary address of %s and cannot be reassigned", a, holder)
			}
		}
		for _, a := range in.Addresses {
			if holder, held := s.used[a]; held {
				from := m.enis[holder]
				from.Secondaries = slices.DeleteFunc(from.Secondaries, func(x netip.Addr) bool { return x == a })
				for _, addr := range m.addrs {
					if addr.ENI == holder && addr.PrivateIP == a {
						addr.ENI = e.ID
					}
				}
			}
			s.used[a] = e.ID
			e.Secondaries = append(e.Secondaries, a)
		}
		out = slices.Clone(in.Addresses)
		return nil
	})
	return out, err
}

// UnassignPrivateIpAddresses implements API: the addresses go back to the
// subnet, and a floating IP on one is disassociated.
func (m *Model) UnassignPrivateIpAddresses(ctx context.Context, in UnassignPrivateIPAddressesInput) error {
	const action = "UnassignPrivateIpAddresses"
	return m.call(ctx, action, func() error {
		e, err := m.eni(action, in.ENI)
		if err != nil {
			return err
		}
		if len(in.Addresses) == 0 {
			return fail(action, InvalidParameterValue, "interface %s: no addresses to unassign", e.ID)
		}
		for _, a := range in.Addresses {
			if a == e.Primary {
				return fail(action, OperationNotPermitted, "address %s is the primary address of %s and cannot be unassigned", a, e.ID)
			}
			if !slices.Contains(e.Secondaries, a) {
				return fail(action, InvalidParameterValue, "address %s is not assigned to interface %s", a, e.ID)
			}
		}
		s := m.subnets[e.Subnet]
		for _, a := range in.Addresses {
			delete(s.used, a)
			e.Secondaries = slices.DeleteFunc(e.Secondaries, func(x netip.Addr) bool { return x == a })
			m.disassociatePrivate(e.ID, a)
		}
		return nil
	})
}

// AllocateAddress implements API: the lowest free address of the public
// pool, within the account's quota.
func (m *Model) AllocateAddress(ctx context.Context) (Address, error) {
	const action = "AllocateAddress"
	var out Address
	err := m.call(ctx, action, func() error {
		if len(m.addrs) >= m.limits.ElasticIPs {
			return fail(action, AddressLimitExceeded, "the maximum number of addresses has been reached (%d Elastic IPs)", m.limits.ElasticIPs)
		}
		p := m.limits.PublicPool
		for a := p.Addr().Next(); p.Contains(a) && a != last(p); a = a.Next() {
			if !m.public[a] {
				m.public[a] = true
				addr := &Address{AllocationID: AllocationID(m.id("eipalloc")), PublicIP: a}
				m.addrs[addr.AllocationID] = addr
				out = *addr
				return nil
			}
		}
		return fail(action, AddressLimitExceeded, "the public pool %s has no free address", p)
	})
	return out, err
}

// AssociateAddress implements API.
func (m *Model) AssociateAddress(ctx context.Context, in AssociateAddressInput) (AssociationID, error) {
	const action = "AssociateAddress"
	var out AssociationID
	err := m.call(ctx, action, func() error {
		addr := m.addrs[in.Allocation]
		if addr == nil {
			return fail(action, InvalidAllocationIDNotFound, "the allocation ID '%s' does not exist", in.Allocation)
		}
		e, err := m.eni(action, in.ENI)
		if err != nil {
			return err
		}
		priv := in.PrivateIP
		if !priv.IsValid() {
			priv = e.Primary
		}
		if priv != e.Primary && !slices.Contains(e.Secondaries, priv) {
			return fail(action, InvalidParameterValue, "address %s is not assigned to interface %s", priv, e.ID)
		}
		if addr.AssociationID != "" && !in.AllowReassociation {
			return fail(action, ResourceAlreadyAssociated, "Elastic IP %s (%s) is associated with %s on %s", addr.PublicIP, addr.AllocationID, addr.PrivateIP, addr.ENI)
		}
		for _, other := range m.addrs {
			if other != addr && other.ENI == e.ID && other.PrivateIP == priv {
				return fail(action, ResourceAlreadyAssociated, "address %s on %s already has Elastic IP %s (%s)", priv, e.ID, other.PublicIP, other.AllocationID)
			}
		}
		delete(m.assoc, addr.AssociationID)
		addr.AssociationID = AssociationID(m.id("eipassoc"))
		addr.ENI, addr.PrivateIP = e.ID, priv
		m.assoc[addr.AssociationID] = addr.AllocationID
		out = addr.AssociationID
		return nil
	})
	return out, err
}

// DisassociateAddress implements API.
func (m *Model) DisassociateAddress(ctx context.Context, id AssociationID) error {
	const action = "DisassociateAddress"
	return m.call(ctx, action, func() error {
		alloc, ok := m.assoc[id]
		if !ok {
			return fail(action, InvalidAssociationIDNotFound, "the association ID '%s' does not exist", id)
		}
		addr := m.addrs[alloc]
		delete(m.assoc, id)
		addr.AssociationID, addr.ENI, addr.PrivateIP = "", "", netip.Addr{}
		return nil
	})
}

// ReleaseAddress implements API: an associated address cannot be released.
func (m *Model) ReleaseAddress(ctx context.Context, id AllocationID) error {
	const action = "ReleaseAddress"
	return m.call(ctx, action, func() error {
		addr := m.addrs[id]
		if addr == nil {
			return fail(action, InvalidAllocationIDNotFound, "the allocation ID '%s' does not exist", id)
		}
		if addr.AssociationID != "" {
			return fail(action, InvalidIPAddressInUse, "Elastic IP %s (%s) is associated with %s on %s: disassociate it first", addr.PublicIP, id, addr.PrivateIP, addr.ENI)
		}
		delete(m.public, addr.PublicIP)
		delete(m.addrs, id)
		return nil
	})
}

// DescribeAddress implements API.
func (m *Model) DescribeAddress(ctx context.Context, id AllocationID) (Address, error) {
	const action = "DescribeAddresses"
	var out Address
	err := m.call(ctx, action, func() error {
		addr := m.addrs[id]
		if addr == nil {
			return fail(action, InvalidAllocationIDNotFound, "the allocation ID '%s' does not exist", id)
		}
		out = *addr
		return nil
	})
	return out, err
}
