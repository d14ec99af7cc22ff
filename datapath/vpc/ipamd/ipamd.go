package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// Config holds the pool's targets, named and meant as the AWS VPC CNI's
// environment variables (https://github.com/aws/amazon-vpc-cni-k8s#cni-configuration-variables).
type Config struct {
	// WarmENITarget whole ENIs' worth of free addresses are kept (the
	// CNI's default is 1). Ignored when WarmIPTarget or MinimumIPTarget
	// is set.
	WarmENITarget int
	// WarmIPTarget free addresses are kept.
	WarmIPTarget int
	// MinimumIPTarget addresses (free or taken) are kept at least.
	MinimumIPTarget int
	// Interval is the reconciler's period (ipamd's ipPoolMonitorInterval,
	// 5 s). Zero: 5 s.
	Interval time.Duration
	// RetryBase and RetryMax bound the exponential backoff after a
	// throttled call made on a pod's behalf (pool off). Zero: 100 ms and
	// 20 s, the AWS SDKs' standard retry mode's base and cap.
	RetryBase, RetryMax time.Duration
}

// Off reports whether the pool keeps nothing warm.
func (c Config) Off() bool {
	return c.WarmENITarget == 0 && c.WarmIPTarget == 0 && c.MinimumIPTarget == 0
}

func (c Config) ipMode() bool { return c.WarmIPTarget > 0 || c.MinimumIPTarget > 0 }

func (c Config) String() string {
	switch {
	case c.Off():
		return "no warm pool"
	case c.ipMode():
		return fmt.Sprintf("WARM_IP_TARGET=%d MINIMUM_IP_TARGET=%d", c.WarmIPTarget, c.MinimumIPTarget)
	}
	return fmt.Sprintf("WARM_ENI_TARGET=%d", c.WarmENITarget)
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 20 * time.Second
	}
}

// ErrNoFreeAddress is a pod's spawn finding the pool empty (the CNI's
// "failed to assign an IP address to container"): the kubelet tries the
// pod again later, by when the reconciler may have refilled it.
var ErrNoFreeAddress = errors.New("no free address in the warm pool")

// ErrNodeFull is a node with its instance type's largest number of ENIs
// and addresses: no more pods fit (the max-pods limit).
var ErrNodeFull = errors.New("node is at its instance type's ENI and address limits")

// errBusy: another caller is attaching an ENI; wait for it.
var errBusy = errors.New("an ENI is being attached")

// Pool is one node's warm pool. Safe for concurrent use; no lock is held
// across an API call (so it runs on cloud.Sched's actors).
type Pool struct {
	api   cloud.API
	clock cloud.Clock
	cfg   Config
	inst  cloud.InstanceID
	name  string
	typ   cloud.InstanceType
	sub   cloud.SubnetID

	mu    sync.Mutex
	enis  []*eni
	owner map[netip.Addr]string // taken addresses: the pod
	// creating: an ENI is being created and attached.
	creating bool
	// pending: addresses being assigned per ENI by calls in flight.
	stats Stats
}

type eni struct {
	id          cloud.ENIID
	attachment  cloud.AttachmentID
	index       int
	primary     netip.Addr
	secondaries []netip.Addr
	pending     int
}

// Stats are a pool's counts.
type Stats struct {
	ENIs, Addresses, Taken int
	// Calls and Throttled count the API calls the pool made.
	Calls, Throttled int
}

// New returns the pool of the instance inst (described by the API: its
// primary ENI is the pool's first) of instance type typ.
func New(ctx context.Context, api cloud.API, clock cloud.Clock, inst cloud.Instance, typ cloud.InstanceType, cfg Config) (*Pool, error) {
	cfg.defaults()
	if len(inst.ENIs) == 0 {
		return nil, fmt.Errorf("ipamd: instance %s (%s) has no ENI", inst.ID, inst.Name)
	}
	p := &Pool{api: api, clock: clock, cfg: cfg, inst: inst.ID, name: inst.Name, typ: typ, sub: inst.Subnet, owner: map[netip.Addr]string{}}
	for i, id := range inst.ENIs {
		var e cloud.NetworkInterface
		err := p.retry(ctx, func() (err error) { e, err = api.DescribeNetworkInterface(ctx, id); return err })
		if err != nil {
			return nil, fmt.Errorf("ipamd %s: %w", inst.Name, err)
		}
		p.enis = append(p.enis, &eni{id: id, index: i, primary: e.Primary, secondaries: e.Secondaries})
	}
	return p, nil
}

// Config returns the pool's configuration, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Stats returns the pool's counts now.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.ENIs = len(p.enis)
	for _, e := range p.enis {
		s.Addresses += len(e.secondaries)
	}
	s.Taken = len(p.owner)
	return s
}

// count runs one API call, counting it.
func (p *Pool) count(err error) error {
	p.mu.Lock()
	p.stats.Calls++
	if cloud.Throttled(err) {
		p.stats.Throttled++
	}
	p.mu.Unlock()
	return err
}

// retry calls f until it is not throttled, backing off exponentially.
func (p *Pool) retry(ctx context.Context, f func() error) error {
	wait := p.cfg.RetryBase
	for {
		err := p.count(f())
		if !cloud.Throttled(err) {
			return err
		}
		if err := p.clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, p.cfg.RetryMax)
	}
}

// free returns the free addresses, lowest ENI first. Under mu.
func (p *Pool) free() []netip.Addr {
	var out []netip.Addr
	for _, e := range p.enis {
		for _, a := range e.secondaries {
			if _, taken := p.owner[a]; !taken {
				out = append(out, a)
			}
		}
	}
	return out
}

func (p *Pool) perENI() int { return p.typ.IPv4PerENI - 1 }

// Capacity is the largest number of pod addresses the node can hold.
func (p *Pool) Capacity() int { return p.typ.ENIs * p.perENI() }

// shortage is how many more addresses the targets want. Under mu.
func (p *Pool) shortage() int {
	free, total := len(p.free()), 0
	for _, e := range p.enis {
		total += len(e.secondaries) + e.pending
	}
	var need int
	switch {
	case p.cfg.ipMode():
		need = max(p.cfg.WarmIPTarget-free, p.cfg.MinimumIPTarget-total, 0)
	case p.cfg.WarmENITarget > 0:
		need = max(p.cfg.WarmENITarget*p.perENI()-free, 0)
	}
	return min(need, p.Capacity()-total)
}

// Reconcile is one pass of ipamd's pool manager: it assigns addresses to
// ENIs with room and creates and attaches ENIs until the targets are met,
// and gives back what is over them. It stops at the first error (a
// throttled call: the next pass goes on).
func (p *Pool) Reconcile(ctx context.Context) error {
	for {
		p.mu.Lock()
		need := p.shortage()
		p.mu.Unlock()
		if need <= 0 {
			break
		}
		if err := p.grow(ctx, need, !p.cfg.ipMode()); err != nil {
			return err
		}
	}
	return p.shrink(ctx)
}

// grow adds up to need addresses in one or two calls: on the ENI with
// room, or on a new ENI. whole fills an ENI (WARM_ENI_TARGET's way).
func (p *Pool) grow(ctx context.Context, need int, whole bool) error {
	p.mu.Lock()
	var room *eni
	for _, e := range p.enis {
		if len(e.secondaries)+e.pending < p.perENI() {
			room = e
			break
		}
	}
	if room != nil {
		n := p.perENI() - len(room.secondaries) - room.pending
		if !whole {
			n = min(n, need)
		}
		room.pending += n
		p.mu.Unlock()
		got, err := p.assign(ctx, room.id, n)
		p.mu.Lock()
		room.pending -= n
		room.secondaries = append(room.secondaries, got...)
		p.mu.Unlock()
		return err
	}
	if p.creating {
		p.mu.Unlock()
		return errBusy
	}
	if len(p.enis) >= p.typ.ENIs {
		p.mu.Unlock()
		return fmt.Errorf("ipamd %s: %w", p.name, ErrNodeFull)
	}
	p.creating = true
	p.mu.Unlock()
	n := p.perENI()
	if !whole {
		n = min(n, need)
	}
	e, err := p.attach(ctx, n)
	p.mu.Lock()
	p.creating = false
	if e != nil {
		p.enis = append(p.enis, e)
	}
	p.mu.Unlock()
	return err
}

func (p *Pool) assign(ctx context.Context, id cloud.ENIID, n int) ([]netip.Addr, error) {
	got, err := p.api.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: id, Count: n})
	if err := p.count(err); err != nil {
		return nil, fmt.Errorf("ipamd %s: %w", p.name, err)
	}
	return got, nil
}

// attach creates an ENI with n secondaries and attaches it; a failed
// attachment deletes the ENI again.
func (p *Pool) attach(ctx context.Context, n int) (*eni, error) {
	ni, err := p.api.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: p.sub, SecondaryCount: n, Description: "netbed ipamd " + p.name})
	if err := p.count(err); err != nil {
		return nil, fmt.Errorf("ipamd %s: %w", p.name, err)
	}
	var att cloud.AttachmentID
	err = p.retry(ctx, func() (err error) {
		att, err = p.api.AttachNetworkInterface(ctx, cloud.AttachNetworkInterfaceInput{ENI: ni.ID, Instance: p.inst, DeviceIndex: -1})
		return err
	})
	if err != nil {
		_ = p.retry(ctx, func() error { return p.api.DeleteNetworkInterface(ctx, ni.ID) })
		return nil, fmt.Errorf("ipamd %s: %w", p.name, err)
	}
	p.mu.Lock()
	idx := len(p.enis)
	p.mu.Unlock()
	return &eni{id: ni.ID, attachment: att, index: idx, primary: ni.Primary, secondaries: ni.Secondaries}, nil
}

// shrink gives back free addresses over the targets (IP targets), and a
// whole ENI with no pod when the free addresses without it still meet
// the targets (ENI target). The primary ENI stays.
func (p *Pool) shrink(ctx context.Context) error {
	if p.cfg.Off() {
		return nil
	}
	p.mu.Lock()
	free := p.free()
	total := len(p.owner) + len(free)
	var drop []netip.Addr
	var from *eni
	var whole *eni
	if p.cfg.ipMode() {
		surplus := min(len(free)-p.cfg.WarmIPTarget, total-p.cfg.MinimumIPTarget)
		if surplus > 0 {
			// From the last ENI with free addresses, as many as it has.
			for i := len(p.enis) - 1; i >= 0 && from == nil; i-- {
				e := p.enis[i]
				for _, a := range slices.Backward(e.secondaries) {
					if _, taken := p.owner[a]; !taken && len(drop) < surplus {
						drop = append(drop, a)
						from = e
					}
				}
			}
		}
	} else {
		for i := len(p.enis) - 1; i >= 1; i-- {
			e := p.enis[i]
			used := false
			for _, a := range e.secondaries {
				if _, taken := p.owner[a]; taken {
					used = true
				}
			}
			if !used && e.pending == 0 && len(free)-len(e.secondaries) >= p.cfg.WarmENITarget*p.perENI() {
				whole = e
				p.enis = slices.Delete(p.enis, i, i+1)
				break
			}
		}
	}
	p.mu.Unlock()
	switch {
	case from != nil:
		err := p.count(p.api.UnassignPrivateIpAddresses(ctx, cloud.UnassignPrivateIPAddressesInput{ENI: from.id, Addresses: drop}))
		if err != nil {
			return fmt.Errorf("ipamd %s: %w", p.name, err)
		}
		p.mu.Lock()
		from.secondaries = slices.DeleteFunc(from.secondaries, func(a netip.Addr) bool { return slices.Contains(drop, a) })
		p.mu.Unlock()
	case whole != nil:
		err := p.count(p.api.DetachNetworkInterface(ctx, cloud.DetachNetworkInterfaceInput{Attachment: whole.attachment}))
		if err == nil {
			err = p.count(p.api.DeleteNetworkInterface(ctx, whole.id))
		}
		if err != nil {
			p.mu.Lock()
			p.enis = append(p.enis, whole) // still ours; the next pass tries again
			slices.SortFunc(p.enis, func(a, b *eni) int { return a.index - b.index })
			p.mu.Unlock()
			return fmt.Errorf("ipamd %s: %w", p.name, err)
		}
	}
	return nil
}

// Run reconciles every Interval until ctx is done or stop returns true.
func (p *Pool) Run(ctx context.Context, stop func() bool) {
	for ctx.Err() == nil && (stop == nil || !stop()) {
		_ = p.Reconcile(ctx) // errors are the next pass's to retry
		if p.clock.Sleep(ctx, p.cfg.Interval) != nil {
			return
		}
	}
}

// Allocate gives pod an address and says on which ENI it is. From the
// pool: no API call; when the pool is empty, ErrNoFreeAddress. With the
// pool off, the address is assigned now by the API (retried while
// throttled), on an ENI with room or on a new one.
func (p *Pool) Allocate(ctx context.Context, pod string) (netip.Addr, cloud.ENIID, error) {
	for {
		p.mu.Lock()
		for _, e := range p.enis {
			for _, a := range e.secondaries {
				if _, taken := p.owner[a]; !taken {
					p.owner[a] = pod
					p.mu.Unlock()
					return a, e.id, nil
				}
			}
		}
		p.mu.Unlock()
		if !p.cfg.Off() {
			return netip.Addr{}, "", fmt.Errorf("ipamd %s: pod %s: %w", p.name, pod, ErrNoFreeAddress)
		}
		if err := p.growForPod(ctx); err != nil {
			return netip.Addr{}, "", fmt.Errorf("pod %s: %w", pod, err)
		}
	}
}

// growForPod adds one address for a pod with the pool off, retrying while
// throttled. Another pod may take it first: Allocate loops.
func (p *Pool) growForPod(ctx context.Context) error {
	wait := p.cfg.RetryBase
	for {
		err := p.grow(ctx, 1, false)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errBusy) && !cloud.Throttled(err) {
			return err
		}
		if err := p.clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, p.cfg.RetryMax)
	}
}

func (p *Pool) roomLocked() *eni {
	for _, e := range p.enis {
		if len(e.secondaries)+e.pending < p.perENI() {
			return e
		}
	}
	return nil
}

// Release gives pod's address back: to the pool, or, with the pool off,
// to the subnet by the API.
func (p *Pool) Release(ctx context.Context, pod string) error {
	p.mu.Lock()
	var addr netip.Addr
	var on *eni
	for a, who := range p.owner {
		if who == pod {
			addr = a
		}
	}
	if !addr.IsValid() {
		p.mu.Unlock()
		return nil // as CNI DEL: an unknown pod is done
	}
	delete(p.owner, addr)
	for _, e := range p.enis {
		if slices.Contains(e.secondaries, addr) {
			on = e
		}
	}
	off := p.cfg.Off() && on != nil
	if off {
		on.secondaries = slices.DeleteFunc(on.secondaries, func(a netip.Addr) bool { return a == addr })
	}
	p.mu.Unlock()
	if !off {
		return nil
	}
	err := p.retry(ctx, func() error {
		return p.api.UnassignPrivateIpAddresses(ctx, cloud.UnassignPrivateIPAddressesInput{ENI: on.id, Addresses: []netip.Addr{addr}})
	})
	if err != nil {
		return fmt.Errorf("ipamd %s: release %s of pod %s: %w", p.name, addr, pod, err)
	}
	return nil
}

// Adopt gives pod the address it had on another node (a drift keeps the
// pod's IP): the address moves to an ENI of this node with room, by
// AssignPrivateIpAddresses with reassignment allowed, its floating IP with
// it. The old node's pool Forgets the pod.
func (p *Pool) Adopt(ctx context.Context, pod string, addr netip.Addr) (cloud.ENIID, error) {
	for {
		p.mu.Lock()
		e := p.roomLocked()
		if e != nil {
			e.pending++
		}
		p.mu.Unlock()
		if e == nil {
			if err := p.growForPod(ctx); err != nil {
				return "", fmt.Errorf("adopt %s for pod %s: %w", addr, pod, err)
			}
			continue
		}
		var err error
		err = p.retry(ctx, func() error {
			_, err := p.api.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: e.id, Addresses: []netip.Addr{addr}, AllowReassignment: true})
			return err
		})
		p.mu.Lock()
		e.pending--
		if err == nil {
			e.secondaries = append(e.secondaries, addr)
			p.owner[addr] = pod
		}
		p.mu.Unlock()
		if err != nil {
			return "", fmt.Errorf("ipamd %s: adopt %s for pod %s: %w", p.name, addr, pod, err)
		}
		return e.id, nil
	}
}

// Forget drops pod and its address from the pool without an API call: the
// address has moved to another node's ENI (Adopt).
func (p *Pool) Forget(pod string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, who := range p.owner {
		if who == pod {
			delete(p.owner, a)
			for _, e := range p.enis {
				e.secondaries = slices.DeleteFunc(e.secondaries, func(x netip.Addr) bool { return x == a })
			}
		}
	}
}

// Free is the number of free addresses in the pool now.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free())
}
