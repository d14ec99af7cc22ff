package vpcipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/datapath/vpc/ipamd"
)

// Options configure the IPAM. Zero fields take the defaults in
// parentheses.
type Options struct {
	// InstanceType of every node (m5.large: 3 ENIs of 10 addresses).
	InstanceType string
	// Pool is every node's warm pool (ipamd.Config; zero: no warm pool,
	// every spawn asks the cloud for its address).
	Pool ipamd.Config
	// Mark, if set, records a step of an instance's spawn timeline.
	Mark func(instance, step string)
	// CNILimits, if set, are the limits the nodes' ipamd holds when they
	// differ from the cloud's: a CNI release whose table lags the
	// provider's (or a slot taken by another controller) lets ipamd
	// attach an ENI the cloud refuses (AttachmentLimitExceeded). Nil:
	// the cloud's own.
	CNILimits *cloud.Limits
}

type floating struct {
	alloc cloud.AllocationID
	assoc cloud.AssociationID
	pub   netip.Addr
}

// IPAM is the vpc generation's global IPAM: one subnet of the VPC (the
// nodes' and their pods', as the AWS VPC CNI's default), a node per
// instance with its ipamd pool, the controller's ports as the record of
// every pod's address. Calls for one pod must not overlap; its own state
// is locked.
type IPAM struct {
	api  *Synced
	ctl  controller.API
	clk  cloud.Clock
	opts Options
	typ  cloud.InstanceType // the cloud's
	// cniTyp is the instance type as the nodes' ipamd knows it
	// (Options.CNILimits; else typ).
	cniTyp cloud.InstanceType

	mu       sync.Mutex
	network  string
	subnet   cloud.Subnet
	pools    map[string]*ipamd.Pool
	hostOf   map[string]string // pod -> the node whose pool holds its address
	current  string            // the pod whose spawn the cloud's calls are for
	floating map[string]*floating
}

// New returns an IPAM over the cloud c (whose configuration is limits),
// the controller ctl and the data plane dp; backoffs sleep on clk.
func New(c cloud.API, limits *cloud.Limits, ctl controller.API, dp Dataplane, clk cloud.Clock, opts Options) (*IPAM, error) {
	if opts.InstanceType == "" {
		opts.InstanceType = "m5.large"
	}
	t, ok := limits.InstanceType(opts.InstanceType)
	if !ok {
		return nil, fmt.Errorf("vpc IPAM: instance type %q is not in the cloud's limits", opts.InstanceType)
	}
	pt := t
	if opts.CNILimits != nil {
		if pt, ok = opts.CNILimits.InstanceType(opts.InstanceType); !ok {
			return nil, fmt.Errorf("vpc IPAM: instance type %q is not in the CNI's limits", opts.InstanceType)
		}
	}
	p := &IPAM{api: NewSynced(c, dp), ctl: ctl, clk: clk, opts: opts, typ: t, cniTyp: pt,
		pools: map[string]*ipamd.Pool{}, hostOf: map[string]string{}, floating: map[string]*floating{}}
	p.api.Observe(p.observe)
	return p, nil
}

// observe puts the cloud's calls made for a pod into its timeline:
// each call, each throttled one, each error by its provider code.
func (p *IPAM) observe(action string, err error) {
	p.mu.Lock()
	pod := p.current
	p.mu.Unlock()
	switch code := cloud.CodeOf(err); {
	case code == cloud.RequestLimitExceeded:
		p.mark(pod, "throttled:"+action)
	case code != "":
		p.mark(pod, "cloud-error:"+action+":"+string(code))
	case err == nil:
		p.mark(pod, "cloud:"+action)
	}
}

func (p *IPAM) mark(inst, step string) {
	if p.opts.Mark != nil && inst != "" {
		p.opts.Mark(inst, step)
	}
}

// on makes the cloud's calls until the returned function is called
// count as pod's.
func (p *IPAM) on(pod string) func() {
	p.mu.Lock()
	p.current = pod
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.current = ""
		p.mu.Unlock()
	}
}

// InstanceType returns the nodes' instance type.
func (p *IPAM) InstanceType() cloud.InstanceType { return p.typ }

// API returns the cloud as the IPAM calls it (every call carried out in
// the data plane).
func (p *IPAM) API() cloud.API { return p.api }

// AddNetwork creates the VPC's subnet for the controller's network name;
// the nodes and their pods take addresses from it. One network per VPC.
func (p *IPAM) AddNetwork(ctx context.Context, name string, cidr netip.Prefix) error {
	p.mu.Lock()
	have := p.network
	p.mu.Unlock()
	if have != "" {
		return fmt.Errorf("network %s: the VPC's nodes and pods share one subnet, network %s's; give vpc one network", name, have)
	}
	s, err := p.api.CreateSubnet(ctx, cidr, "az1")
	if err != nil {
		return fmt.Errorf("network %s: create subnet %v: %w", name, cidr, err)
	}
	p.mu.Lock()
	p.network, p.subnet = name, s
	p.mu.Unlock()
	return nil
}

// AddNode runs the node's instance in the subnet (its primary ENI wired
// in the data plane), starts its pool and fills it to its targets.
func (p *IPAM) AddNode(ctx context.Context, host string) error {
	p.mu.Lock()
	s := p.subnet
	p.mu.Unlock()
	if s.ID == "" {
		return fmt.Errorf("node %s: the VPC has no subnet yet (a network)", host)
	}
	inst, err := p.api.RunInstance(ctx, cloud.RunInstanceInput{Name: host, Type: p.typ.Name, Subnet: s.ID})
	if err != nil {
		return fmt.Errorf("node %s: %w", host, err)
	}
	pool, err := ipamd.New(ctx, p.api, p.clk, inst, p.cniTyp, p.opts.Pool)
	if err != nil {
		return fmt.Errorf("node %s: %w", host, err)
	}
	p.mu.Lock()
	p.pools[host] = pool
	p.mu.Unlock()
	if err := pool.Reconcile(ctx); err != nil {
		return fmt.Errorf("node %s: warm pool: %w", host, err)
	}
	return nil
}

func (p *IPAM) pool(host string) (*ipamd.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pool, ok := p.pools[host]
	if !ok {
		return nil, fmt.Errorf("%s is not a node of the VPC", host)
	}
	return pool, nil
}

// Pool returns host's warm pool.
func (p *IPAM) Pool(host string) (*ipamd.Pool, bool) {
	pool, err := p.pool(host)
	return pool, err == nil
}

// Allocation is a pod's address.
type Allocation struct {
	Port controller.Port
	IP   netip.Addr
	ENI  cloud.ENIID
	// Moved: the pod had the address already (a drift); it is now on an
	// ENI of the new node.
	Moved bool
}

// Allocate gives pod an address on host: the one its port holds (a
// drift: the address moves to an ENI of host), or one of host's pool
// (with the pool off, or empty, the cloud assigns one now). The
// controller records it as the pod's port, bound to host.
func (p *IPAM) Allocate(ctx context.Context, pod, host, network, label string) (Allocation, error) {
	defer p.on(pod)()
	pool, err := p.pool(host)
	if err != nil {
		return Allocation{}, fmt.Errorf("allocate for %s: %w", pod, err)
	}
	if port, err := p.ctl.GetPort(ctx, pod); err == nil && len(port.IPs) > 0 {
		return p.move(ctx, pool, pod, host, port)
	}
	p.mu.Lock()
	mine := p.network
	p.mu.Unlock()
	if network == "" {
		nets, err := p.ctl.ListNetworks(ctx, label)
		if err != nil || len(nets) == 0 {
			return Allocation{}, fmt.Errorf("allocate for %s: no network with label %q: %v", pod, label, err)
		}
		network = nets[0].Name
	}
	if network != mine {
		return Allocation{}, fmt.Errorf("allocate for %s: network %s: pods on vpc take addresses from their node's subnet, network %s's", pod, network, mine)
	}
	warm := pool.Free() > 0
	a, eni, err := pool.Allocate(ctx, pod)
	if errors.Is(err, ipamd.ErrNoFreeAddress) {
		// The kubelet retries the pod; the reconciler has refilled by then.
		p.mark(pod, "ipamd:pool-empty")
		if err = pool.Reconcile(ctx); err == nil {
			a, eni, err = pool.Allocate(ctx, pod)
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, ipamd.ErrNodeFull):
			p.mark(pod, fmt.Sprintf("limit:node-full (%s: %d ENIs x %d addresses, max pods %d)", p.cniTyp.Name, p.cniTyp.ENIs, p.cniTyp.IPv4PerENI, p.cniTyp.MaxPods()))
		case errors.Is(err, cloud.AttachmentLimitExceeded):
			p.mark(pod, fmt.Sprintf("limit:attachment (the cloud: %s takes %d ENIs; ipamd's table: %d)", p.typ.Name, p.typ.ENIs, p.cniTyp.ENIs))
		}
		return Allocation{}, fmt.Errorf("allocate for %s on %s: %w", pod, host, err)
	}
	if warm {
		p.mark(pod, "2-ipam-warm-pool")
	} else {
		p.mark(pod, "2-ipam-cloud")
	}
	port, _, err := p.ctl.EnsurePort(ctx, controller.PortRequest{Name: pod, Network: network, DeviceOwner: controller.OwnerPod, Host: host, IP: a})
	if err != nil {
		return Allocation{}, errors.Join(fmt.Errorf("allocate for %s: port: %w", pod, err), pool.Release(ctx, pod))
	}
	p.mu.Lock()
	p.hostOf[pod] = host
	p.mu.Unlock()
	p.mark(pod, "3-port-recorded")
	return Allocation{Port: port, IP: a, ENI: eni}, nil
}

// move gives a drifting pod its address on host: by reassignment to an
// ENI of host (ipamd's Adopt) unless the address is there already.
func (p *IPAM) move(ctx context.Context, pool *ipamd.Pool, pod, host string, port controller.Port) (Allocation, error) {
	a := port.IPs[0].Address
	p.mu.Lock()
	old := p.hostOf[pod]
	oldPool := p.pools[old]
	p.mu.Unlock()
	if old == host {
		p.mark(pod, "2-ipam-address-on-node")
		return Allocation{Port: port, IP: a, Moved: true}, nil
	}
	eni, err := pool.Adopt(ctx, pod, a)
	if err != nil {
		return Allocation{}, fmt.Errorf("move %s's %v to %s: %w", pod, a, host, err)
	}
	if oldPool != nil {
		oldPool.Forget(pod)
	}
	p.mu.Lock()
	p.hostOf[pod] = host
	p.mu.Unlock()
	p.mark(pod, "2-ipam-address-moved")
	return Allocation{Port: port, IP: a, ENI: eni, Moved: true}, nil
}

// Refill runs one reconciler pass of host's pool (ipamd does it every
// 5 s; the backend after each spawn, outside the spawn's time).
func (p *IPAM) Refill(ctx context.Context, host string) error {
	pool, err := p.pool(host)
	if err != nil {
		return err
	}
	return pool.Reconcile(ctx)
}

// Release gives a deleted pod's address back to its node's pool (with
// the pool off, to the subnet), detaches its floating IP and deletes its
// port.
func (p *IPAM) Release(ctx context.Context, pod string) error {
	defer p.on(pod)()
	if err := p.detachFloating(ctx, pod); err != nil && !errors.Is(err, errNoFloating) {
		return err
	}
	p.mu.Lock()
	pool := p.pools[p.hostOf[pod]]
	delete(p.hostOf, pod)
	p.mu.Unlock()
	if pool != nil {
		if err := pool.Release(ctx, pod); err != nil {
			return fmt.Errorf("release %s: %w", pod, err)
		}
	}
	if _, err := p.ctl.DeletePort(ctx, pod); err != nil {
		return fmt.Errorf("release %s: %w", pod, err)
	}
	return nil
}

var errNoFloating = errors.New("no floating IP")

// AttachFloating allocates a floating IP and associates it with pod's
// address (one-to-one NAT at the internet gateway). The provider moves
// the association with the address when it is reassigned (a drift).
func (p *IPAM) AttachFloating(ctx context.Context, pod string) (netip.Addr, error) {
	defer p.on(pod)()
	p.mu.Lock()
	if f, ok := p.floating[pod]; ok {
		p.mu.Unlock()
		return f.pub, nil
	}
	p.mu.Unlock()
	port, err := p.ctl.GetPort(ctx, pod)
	if err != nil || len(port.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("floating IP for %s: no port: %v", pod, err)
	}
	priv := port.IPs[0].Address
	eni, err := p.eniOf(ctx, priv)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("floating IP for %s: %w", pod, err)
	}
	addr, err := p.api.AllocateAddress(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("floating IP for %s: %w", pod, err)
	}
	assoc, err := p.api.AssociateAddress(ctx, cloud.AssociateAddressInput{Allocation: addr.AllocationID, ENI: eni, PrivateIP: priv})
	if err != nil {
		return netip.Addr{}, errors.Join(fmt.Errorf("floating IP for %s: %w", pod, err), p.api.ReleaseAddress(ctx, addr.AllocationID))
	}
	p.mu.Lock()
	p.floating[pod] = &floating{alloc: addr.AllocationID, assoc: assoc, pub: addr.PublicIP}
	p.mu.Unlock()
	p.mark(pod, "floating-ip-attached:"+addr.PublicIP.String())
	return addr.PublicIP, nil
}

// eniOf finds the ENI holding a, as the provider last said.
func (p *IPAM) eniOf(_ context.Context, a netip.Addr) (cloud.ENIID, error) {
	return p.api.Holder(a)
}

// DetachFloating disassociates and releases pod's floating IP.
func (p *IPAM) DetachFloating(ctx context.Context, pod string) error {
	defer p.on(pod)()
	return p.detachFloating(ctx, pod)
}

func (p *IPAM) detachFloating(ctx context.Context, pod string) error {
	p.mu.Lock()
	f, ok := p.floating[pod]
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("detach floating IP of %s: %w", pod, errNoFloating)
	}
	if err := p.api.DisassociateAddress(ctx, f.assoc); err != nil {
		return fmt.Errorf("detach floating IP of %s: %w", pod, err)
	}
	if err := p.api.ReleaseAddress(ctx, f.alloc); err != nil {
		return fmt.Errorf("detach floating IP of %s: %w", pod, err)
	}
	p.mu.Lock()
	delete(p.floating, pod)
	p.mu.Unlock()
	p.mark(pod, "floating-ip-detached:"+f.pub.String())
	return nil
}

// Floating returns pod's floating IP.
func (p *IPAM) Floating(pod string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.floating[pod]
	if !ok {
		return netip.Addr{}, false
	}
	return f.pub, true
}
