package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn/evpndriver"
	"github.com/netbed/netbed/datapath/hybrid"
	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/topologies"
)

// FabricOptions configure a FabricBackend.
type FabricOptions struct {
	// Runtime runs the fabric's nodes (simrt, netnsrt).
	Runtime Runtime
	// StoreDir holds the controller's bbolt store; empty: a temporary
	// directory removed on Close.
	StoreDir string
	// ControllerLatency is added, in the runtime's time, to every
	// controller call of a spawn. The sim runtime needs it to model the
	// API's cost (the seed's Neutron takes ~100 ms); on real runtimes the
	// calls take real time and it should be 0.
	ControllerLatency time.Duration
	// HTTP serves the controller's API on a loopback port and makes every
	// call of the spawn flow through the HTTP client, as compute nodes do.
	// Off, the backend calls the service in process (sim: deterministic).
	// A runtime that is a ControllerHost (netns) runs the controller as
	// its own process instead, always reached over HTTP.
	HTTP bool
	// StoreNoSync commits the controller's store without fsync. For sim:
	// its controller lives in virtual time, where an fsync per commit
	// only costs wall time (a spawn of 256 VMs took 12 s), and its store
	// must outlive a controller restart in the process, not a power cut.
	StoreNoSync bool
	// MemoryStore holds the controller's store in memory (store.Memory,
	// Bolt's in-memory twin) instead of a bbolt file: same service, same
	// transactions, no pages written. For netbed plan, whose controller
	// takes every port of a four-zone spawn and lives in this process;
	// refused where the controller runs as its own process (netns).
	MemoryStore bool
}

// FabricBackend is the Backend every runtime shares: it builds the
// generation's fabric on the topology, runs the controller (the real
// service over a real bbolt store, or its in-memory twin with
// FabricOptions.MemoryStore, and the CNC for gen 2), follows the
// generation's spawn flow, and leaves packets and time to its Runtime.
type FabricBackend struct {
	opts FabricOptions
	rt   Runtime
	env  Env
	desc generation.Desc // env.Generation's
	fab  datapath.Fabric
	// built is what the generation's builder gave (RegisterFabric).
	built BuiltFabric

	storePath string
	tmpDir    string
	// cniDir holds what the CNI plugin reaches (a runtime that is a
	// PodAttacher): the controller's unix socket, the local IPAM state.
	cniDir    string
	st        store.Store
	mem       *store.Memory // MemoryStore's data, kept over controller restarts
	svc       *controller.Service
	api       controller.API // svc, or a client of it over HTTP
	srv       *http.Server
	cnc       *cnc.CNC
	drv       *evpndriver.Driver
	ctl       ctlRun
	agentDown map[string]bool

	local map[string]*ipam.NodePool // gen 3: per host
	// local6 are gen 3's IPv6 pools (dual stack), per host.
	local6 map[string]*ipam.NodePool
	vpcs   []*vpcPlane // each VPC's cloud and IPAM (vpc, and a hybrid network's VPCs)
	// hyb is a hybrid network's fabric (fab), sites the generation of
	// each of its sites.
	hyb      *hybrid.Fabric
	sites    map[string]generation.Desc
	insts    map[string]*instance
	timeline []reports.SpawnEvent
	failed   map[string]bool // nodes and links failed, for restore
	faults   []reports.Fault
	// originless are the failed leaves whose speakers originated no
	// route when they failed (a border leaf): a restore converges once
	// their sessions are up (convergenceWatch).
	originless map[string]bool
}

type instance struct {
	spec datapath.InstanceSpec
	kind string
	// labels and the controller network the instance was asked for, so
	// that a move asks the same way.
	network, label string
	bound          string // the host its port was last bound to
	// moving is set while Move wires the instance on its new host.
	moving bool
}

var _ Backend = (*FabricBackend)(nil)

// NewFabricBackend returns a backend over opts.Runtime.
func NewFabricBackend(opts FabricOptions) *FabricBackend {
	b := &FabricBackend{opts: opts, rt: opts.Runtime, agentDown: map[string]bool{}, failed: map[string]bool{},
		local: map[string]*ipam.NodePool{}, local6: map[string]*ipam.NodePool{}, insts: map[string]*instance{}}
	b.ctl.lastRestore = -1
	return b
}

// Runtime returns the runtime the backend runs on.
func (b *FabricBackend) Runtime() Runtime { return b.rt }

// Name implements Backend: the runtime's name.
func (b *FabricBackend) Name() string { return b.rt.Name() }

// Now implements Backend.
func (b *FabricBackend) Now() time.Duration { return b.rt.Now() }

// Sleep implements Backend.
func (b *FabricBackend) Sleep(ctx context.Context, d time.Duration) error { return b.sleep(ctx, d) }

func (b *FabricBackend) progress(format string, a ...any) {
	if b.env.Progress != nil {
		b.env.Progress(fmt.Sprintf(format, a...))
	}
}

// hostDesc returns the generation that runs host: the run's, or in a
// hybrid network its site's.
func (b *FabricBackend) hostDesc(host string) generation.Desc {
	if b.hyb != nil {
		if s, ok := b.hyb.SiteOf(host); ok {
			return b.sites[s.Name]
		}
	}
	return b.desc
}

// networkDesc returns the generation a network is in: the run's, or in
// a hybrid network its site's.
func (b *FabricBackend) networkDesc(n NetworkSegment) generation.Desc {
	if d, ok := b.sites[n.Site]; ok && b.hyb != nil {
		return d
	}
	return b.desc
}

// controlled reports whether the generation's instances get their ports
// from the controller (gens 1 and 2); gen 3 uses local IPAM.
func (b *FabricBackend) controlled() bool { return b.desc.Controlled() }

// Start implements Backend.
func (b *FabricBackend) Start(ctx context.Context, env Env) error {
	b.env = env
	bf, err := buildFabric(FabricEnv{Generation: env.Generation, Topology: env.Topology, Options: env.Options,
		ControlPlane: env.ControlPlane, Locker: &runtimeLocker{rt: b.rt}, Sites: env.Sites})
	if err != nil {
		// The fabric's builder names the fabric and the generation (the
		// caller says which backend): a prefix here said it twice.
		return err
	}
	b.desc, b.built, b.fab, b.drv = env.Generation.Desc(), bf, bf.Fabric, bf.Driver
	if h, ok := b.fab.(*hybrid.Fabric); ok {
		b.hyb, b.sites = h, map[string]generation.Desc{}
		for _, st := range env.Sites {
			b.sites[st.Name] = st.Generation.Desc()
		}
	}
	if c, ok := b.rt.(BGPConfigurer); ok {
		c.ConfigureBGP(env.BGP)
	}
	if err := b.rt.Load(ctx, b.fab, env.Topology); err != nil {
		return fmt.Errorf("load %s fabric on %s: %w", env.Generation, b.rt.Name(), err)
	}
	if _, ok := b.rt.(PodAttacher); ok {
		if b.cniDir, err = os.MkdirTemp("", "netbed-cni-"); err != nil {
			return fmt.Errorf("CNI state: %w", err)
		}
		if err := b.recordTempDir(b.cniDir); err != nil {
			return fmt.Errorf("CNI state: %w", err)
		}
	}
	if !b.controlled() {
		return b.startLocalIPAM()
	}
	if err := b.openStore(); err != nil {
		return err
	}
	if ch, ok := b.rt.(ControllerHost); ok {
		if b.opts.MemoryStore {
			return fmt.Errorf("controller: a store in memory cannot serve %T's controller, which runs as its own process", b.rt)
		}
		// The controller is its own process, reached on its socket.
		if b.ctl.bin, err = ch.ControllerBinary(); err != nil {
			return fmt.Errorf("controller: %w", err)
		}
		if b.cniDir == "" {
			if b.cniDir, err = os.MkdirTemp("", "netbed-ctl-"); err != nil {
				return fmt.Errorf("controller socket: %w", err)
			}
			if err := b.recordTempDir(b.cniDir); err != nil {
				return err
			}
		}
		b.ctl.client = unixClient(b.controllerSocket())
		if b.env.Controller.Secure {
			if err := b.setupSecure(); err != nil {
				return err
			}
		}
		if b.drv != nil {
			b.cnc = b.newProcessCNC()
		}
	}
	if err := b.startController(); err != nil {
		return err
	}
	switch {
	case b.desc.CloudIPAM():
		f, ok := b.fab.(*vpc.Fabric)
		if !ok {
			return fmt.Errorf("vpc: the fabric is a %T", b.fab)
		}
		if err := b.startVPC(f, ""); err != nil {
			return err
		}
	case b.hyb != nil:
		for _, s := range b.hyb.Sites() {
			if f, ok := s.Fabric.(*vpc.Fabric); ok {
				if err := b.startVPC(f, s.Name); err != nil {
					return fmt.Errorf("site %s: %w", s.Name, err)
				}
			}
		}
	}
	for _, n := range env.Networks {
		if err := b.addNetwork(ctx, n); err != nil {
			return err
		}
	}
	return b.vpcNodes(ctx)
}

func (b *FabricBackend) startLocalIPAM() error {
	for _, h := range b.env.Topology.NodesByRole(topologies.RoleHost) {
		cidr, ok := b.built.NodeCIDR(h.Name)
		if !ok {
			return fmt.Errorf("%s: host %s has no node of the fabric", b.env.Generation, h.Name)
		}
		pool, err := ipam.NewNodePool(cidr)
		if err != nil {
			return fmt.Errorf("local IPAM for %s: %w", h.Name, err)
		}
		b.local[h.Name] = pool
		if b.built.NodeCIDR6 == nil {
			continue
		}
		if cidr6, ok := b.built.NodeCIDR6(h.Name); ok {
			if b.local6[h.Name], err = ipam.NewNodePool(cidr6); err != nil {
				return fmt.Errorf("local IPv6 IPAM for %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

func (b *FabricBackend) openStore() error {
	dir := b.opts.StoreDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "netbed-store-")
		if err != nil {
			return fmt.Errorf("controller store: %w", err)
		}
		b.tmpDir, dir = tmp, tmp
		if err := b.recordTempDir(tmp); err != nil {
			return fmt.Errorf("controller store: %w", err)
		}
	}
	b.storePath = filepath.Join(dir, fmt.Sprintf("%s-%s.db", b.env.Topology.Name, b.env.Generation))
	return nil
}

// recordTempDir records dir with the runtime's lab, when it keeps one
// that a killed run can leave behind.
func (b *FabricBackend) recordTempDir(dir string) error {
	if r, ok := b.rt.(TempDirRecorder); ok {
		return r.RecordTempDir(dir)
	}
	return nil
}

// startController starts the controller on the run's store: as its own
// process (ControllerHost), or the service (and the CNC for gen 2) in this
// one; after a controller failure it is the restart.
func (b *FabricBackend) startController() error {
	if b.ctl.bin != "" {
		start := b.startProcess
		if b.replicated() {
			start = b.startReplicas
		}
		if err := start(); err != nil {
			return err
		}
		if b.ctl.api.API == nil {
			b.ctl.api = ctlAPI{API: b.ctl.client, b: b}
			b.api = &b.ctl.api
		}
		return nil
	}
	var st store.Store
	if b.opts.MemoryStore {
		if b.mem == nil {
			b.mem = store.NewMemory()
		}
		st = b.mem.Reopen()
	} else {
		bs, err := store.OpenBolt(b.storePath, store.BoltOptions{NoSync: b.opts.StoreNoSync})
		if err != nil {
			return fmt.Errorf("open controller store %s: %w", b.storePath, err)
		}
		st = bs
	}
	b.st = st
	b.svc = controller.New(st, nil, controller.SystemClock{})
	b.api = b.svc
	if b.drv != nil {
		b.cnc = cnc.New(b.env.Topology, b.drv, b.svc, cnc.Options{AccessVLAN: b.drv.AccessVLAN})
		b.svc.SetOverlay(b.cnc)
	}
	var lns []net.Listener
	if b.opts.HTTP {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("controller API: %w", err)
		}
		lns = append(lns, ln)
		b.api = api.NewClient("http://"+ln.Addr().String(), nil)
	}
	if b.cniDir != "" {
		// The CNI plugin runs in a host's namespace, where the loopback
		// is not this one: it reaches the controller on a unix socket.
		ln, err := net.Listen("unix", b.controllerSocket())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("controller API: %w", err)
		}
		lns = append(lns, ln)
	}
	if len(lns) > 0 {
		b.srv = &http.Server{Handler: api.NewServer(b.svc), ReadHeaderTimeout: 10 * time.Second}
		for _, ln := range lns {
			go b.srv.Serve(ln)
		}
	}
	b.ctl.api = ctlAPI{API: b.api, b: b}
	b.api = &b.ctl.api
	b.ctl.mu.Lock()
	b.ctl.down = false
	b.ctl.mu.Unlock()
	return nil
}

func (b *FabricBackend) controllerSocket() string { return filepath.Join(b.cniDir, "controller.sock") }

func (b *FabricBackend) stopController() error {
	var errs []error
	if b.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, b.srv.Shutdown(ctx))
		cancel()
		b.srv = nil
	}
	// The service next: its hooks feed the CNC, which must not get work
	// while it shuts down.
	if b.svc != nil {
		b.svc.Close()
		b.svc = nil
	}
	if b.cnc != nil {
		errs = append(errs, b.cnc.Close())
		b.cnc = nil
	}
	if b.st != nil {
		errs = append(errs, b.st.Close())
		b.st = nil
	}
	b.ctl.mu.Lock()
	b.ctl.down = true
	b.ctl.mu.Unlock()
	return errors.Join(errs...)
}

func (b *FabricBackend) addNetwork(ctx context.Context, n NetworkSegment) error {
	var seg controller.Segment
	switch b.networkDesc(n).Segment {
	case generation.SegmentVLAN:
		seg = controller.Segment{Type: controller.SegmentVLAN, ID: uint32(n.VLAN)}
	case generation.SegmentVXLAN:
		seg = controller.Segment{Type: controller.SegmentVXLAN, ID: n.VNI}
	}
	tenant := n.Tenant
	if tenant == "" {
		tenant = "default"
	}
	if _, err := b.api.CreateNetwork(ctx, controller.NetworkRequest{Name: n.Name, Labels: n.Labels, Tenant: tenant, Segment: seg}); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if _, err := b.api.CreateSubnet(ctx, controller.SubnetRequest{Network: n.Name, CIDR: n.Subnet, Gateway: n.Gateway}); err != nil {
		return fmt.Errorf("network %s: subnet %v: %w", n.Name, n.Subnet, err)
	}
	if v := b.vpcOfNetwork(n); v != nil {
		if err := v.ipam.AddNetwork(ctx, n.Name, n.Subnet); err != nil {
			return err
		}
	}
	if n.Subnet6.IsValid() {
		if _, err := b.api.CreateSubnet(ctx, controller.SubnetRequest{Network: n.Name, CIDR: n.Subnet6, Gateway: n.Gateway6}); err != nil {
			return fmt.Errorf("network %s: IPv6 subnet %v: %w", n.Name, n.Subnet6, err)
		}
	}
	spec := datapath.NetworkSpec{Name: n.Name, Tenant: tenant, Subnet: n.Subnet, Gateway: n.Gateway, VLAN: n.VLAN, VNI: n.VNI,
		Subnet6: n.Subnet6, Gateway6: n.Gateway6, Site: n.Site}
	return b.rt.Mutate(func() error {
		if b.drv != nil && b.hyb == nil {
			return b.drv.AddNetwork(spec)
		}
		return b.fab.AddNetwork(spec)
	})
}

func (b *FabricBackend) mark(inst, step string) {
	b.timeline = append(b.timeline, reports.SpawnEvent{Instance: inst, Step: step, At: b.rt.Now()})
}

// cost models a controller call's latency in the runtime's time. The
// work the call started (the CNC programming leaves, on goroutines of its
// own) is done first, so that frames in flight meanwhile (an instance's
// announcements) meet the leaves in one order for a seed.
func (b *FabricBackend) cost(ctx context.Context) error {
	if b.opts.ControllerLatency > 0 {
		if b.cnc != nil && b.svc != nil {
			b.svc.Idle()
			if err := b.cnc.Wait(ctx); err != nil {
				return fmt.Errorf("cnc: %w", err)
			}
		}
		return b.sleep(ctx, b.opts.ControllerLatency)
	}
	return nil
}

// Spawn implements Backend.
func (b *FabricBackend) Spawn(ctx context.Context, req SpawnRequest) (Instance, error) {
	if _, ok := b.insts[req.Name]; ok {
		return Instance{}, fmt.Errorf("instance %q exists", req.Name)
	}
	in := &instance{kind: req.Kind, network: req.Network, label: req.Label}
	in.spec = datapath.InstanceSpec{Name: req.Name, Host: req.Host, Labels: req.Labels}
	if err := b.wire(ctx, in, req.Host); err != nil {
		return Instance{}, err
	}
	b.insts[req.Name] = in
	return in.public(), nil
}

func (in *instance) public() Instance {
	return Instance{Name: in.spec.Name, Host: in.spec.Host, IP: in.spec.IP.Addr(), IP6: in.spec.IP6.Addr(), MAC: in.spec.MAC.String()}
}

// wire attaches in on host. Gens 1 and 2 follow the seed's spawn flow
// (Fig. 10); gen 3 allocates from the node's local IPAM and creates the
// endpoint.
func (b *FabricBackend) wire(ctx context.Context, in *instance, host string) error {
	name := in.spec.Name
	in.spec.Host = host
	b.mark(name, "1-schedule:"+host)
	if v := b.vpcOf(host); v != nil {
		return b.wireVPC(ctx, v, in, host)
	}
	if pa, ok := b.rt.(PodAttacher); ok && in.kind == "pod" && b.hostDesc(host).PodsViaCNI {
		return b.wirePod(ctx, pa, in, host)
	}
	if !b.controlled() {
		pool := b.local[host]
		if pool == nil {
			return fmt.Errorf("%s: %s is not a node", b.env.Generation, host)
		}
		ip, err := pool.Allocate()
		if err != nil {
			return fmt.Errorf("local IPAM of %s: %w", host, err)
		}
		in.spec.IP = netip.PrefixFrom(ip, pool.CIDR().Bits())
		in.spec.Gateway = pool.Gateway()
		in.spec.MAC = b.built.PodMAC(name)
		release := func() { _ = pool.Release(ip) }
		if pool6 := b.local6[host]; pool6 != nil {
			// Dual stack: an IPv6 /128 from the node's IPv6 CIDR, as
			// Cilium gives its pods.
			ip6, err := pool6.Allocate()
			if err != nil {
				release()
				return fmt.Errorf("local IPv6 IPAM of %s: %w", host, err)
			}
			in.spec.IP6, in.spec.Gateway6 = netip.PrefixFrom(ip6, 128), pool6.Gateway()
			release = func() { _ = pool.Release(ip); _ = pool6.Release(ip6) }
		}
		b.mark(name, "2-ipam-local")
		if err := b.rt.AddInstance(ctx, b.fab, in.spec); err != nil {
			release()
			return fmt.Errorf("create endpoint: %w", err)
		}
		b.mark(name, "3-endpoint-bpf-maps")
		return b.announce(ctx, in)
	}
	owner := controller.DeviceOwner(in.kind)
	if owner == "" {
		owner = controller.OwnerVM
	}
	// Steps 2-4: the compute node asks for a port; the service allocates
	// its address in the same transaction and syncs it to the CNC. A port
	// that exists already (same identity) is found again: drift.
	p, _, err := b.api.EnsurePort(ctx, controller.PortRequest{Name: name, Network: in.network, Label: in.label, DeviceOwner: owner})
	if err != nil {
		return fmt.Errorf("create port: %w", err)
	}
	if err := b.cost(ctx); err != nil {
		return err
	}
	b.mark(name, "2-4-port-created")
	if len(p.IPs) == 0 {
		return fmt.Errorf("port %s has no address", name)
	}
	fip := p.IPs[0]
	for _, a := range p.IPs[1:] {
		if a.Address.Is6() && fip.Address.Is4() {
			in.spec.IP6, in.spec.Gateway6 = netip.PrefixFrom(a.Address, a.Prefix.Bits()), a.Gateway
			break
		}
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return fmt.Errorf("port %s: MAC %q: %w", name, p.MAC, err)
	}
	netw, err := b.api.GetNetwork(ctx, p.Network)
	if err != nil {
		return fmt.Errorf("port %s: %w", name, err)
	}
	in.spec.Network, in.spec.MAC = netw.Name, mac
	in.spec.IP, in.spec.Gateway = netip.PrefixFrom(fip.Address, fip.Prefix.Bits()), fip.Gateway
	// Step 5: the vNIC is created and attached to br-int.
	if err := b.rt.AddInstance(ctx, b.fab, in.spec); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, host, err)
	}
	b.mark(name, "5-vnic-attached")
	if err := b.announce(ctx, in); err != nil {
		return err
	}
	// Steps 7-8: the port is bound to the host and the binding reaches the
	// CNC. The controller takes plane reports only for bound ports, so the
	// binding is recorded before the agent's report (step 6).
	bound, err := b.api.BindPort(ctx, name, host)
	if err != nil {
		return fmt.Errorf("bind %s to %s: %w", name, host, err)
	}
	b.portBound(ctx, in, bound)
	if err := b.cost(ctx); err != nil {
		return err
	}
	b.mark(name, "7-8-host-bound")
	// Step 6: the OVS agent wires the port and reports the underlay.
	if !b.agentDown[host] {
		if err := b.underlay(ctx, name, host); err != nil {
			return err
		}
	}
	// Step 9: the CNC configures the host's leaf ports and reports the
	// overlay. Gen 1 has no overlay to program: its gateways sit on the
	// core, configured by hand.
	return b.overlay(ctx, name, host)
}

// wirePod attaches a pod through the runtime's CNI plugin, as the kubelet
// does. Gen 2: the plugin gets (or finds, after a drift) the pod's port
// from the controller bound to host, wires it and reports the underlay
// (steps 2–7); the CNC then programs the leaf (step 9). Gen 3: the plugin
// takes an address from the node's local IPAM, which the backend's pool
// of that node then holds too.
func (b *FabricBackend) wirePod(ctx context.Context, pa PodAttacher, in *instance, host string) error {
	name := in.spec.Name
	conf := map[string]any{"cniVersion": "1.1.0", "name": "netbed", "type": "netbed-cni"}
	if b.controlled() {
		// The plugin calls the controller itself: wait for it while it
		// restarts.
		if err := b.awaitController(ctx); err != nil {
			return fmt.Errorf("spawn %s: %w", name, err)
		}
		conf["mode"], conf["attach"], conf["host"] = b.hostDesc(host).CNIMode, "none", host
		conf["controllerURL"] = "unix://" + b.controllerSocket()
		b.secureCNI(conf, host)
		if err := b.secureMove(ctx, name, host); err != nil {
			return err
		}
		if in.network != "" {
			conf["network"] = in.network
		} else {
			conf["label"] = in.label
		}
	} else {
		pool := b.local[host]
		if pool == nil {
			return fmt.Errorf("%s: %s is not a node", b.env.Generation, host)
		}
		conf["mode"], conf["nodeCIDR"] = b.desc.CNIMode, pool.CIDR().String()
		if pool6 := b.local6[host]; pool6 != nil {
			conf["nodeCIDR6"] = pool6.CIDR().String()
		}
		conf["dataDir"] = filepath.Join(b.cniDir, "ipam", host)
	}
	raw, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	spec, err := pa.AttachPod(ctx, in.spec, raw)
	if err != nil {
		return fmt.Errorf("attach pod %s on %s: %w", name, host, err)
	}
	undo := func(err error) error {
		return errors.Join(err, b.rt.RemoveInstance(ctx, b.fab, name))
	}
	if !b.controlled() {
		if err := b.local[host].Reserve(spec.IP.Addr()); err != nil {
			return undo(fmt.Errorf("local IPAM of %s: the plugin gave %v: %w", host, spec.IP.Addr(), err))
		}
		release := func() { _ = b.local[host].Release(spec.IP.Addr()) }
		if pool6 := b.local6[host]; pool6 != nil {
			if !spec.IP6.IsValid() {
				release()
				return undo(fmt.Errorf("local IPv6 IPAM of %s: the plugin's result has no IPv6 address for %s", host, name))
			}
			if err := pool6.Reserve(spec.IP6.Addr()); err != nil {
				release()
				return undo(fmt.Errorf("local IPv6 IPAM of %s: the plugin gave %v: %w", host, spec.IP6.Addr(), err))
			}
			release = func() { _ = b.local[host].Release(spec.IP.Addr()); _ = pool6.Release(spec.IP6.Addr()) }
		}
		if err := b.rt.AddInstance(ctx, b.fab, spec); err != nil {
			release()
			return undo(fmt.Errorf("create endpoint: %w", err))
		}
		in.spec = spec
		b.mark(name, "2-3-cni-add-local-ipam-endpoint")
		return b.announce(ctx, in)
	}
	// The port the plugin got names the network (a label picks one).
	p, err := b.api.GetPort(ctx, name)
	if err != nil {
		return undo(fmt.Errorf("port %s: %w", name, err))
	}
	netw, err := b.api.GetNetwork(ctx, p.Network)
	if err != nil {
		return undo(fmt.Errorf("port %s: %w", name, err))
	}
	spec.Network = netw.Name
	b.portBound(ctx, in, p)
	if err := b.rt.AddInstance(ctx, b.fab, spec); err != nil {
		return undo(fmt.Errorf("attach %s to %s: %w", name, host, err))
	}
	in.spec = spec
	b.mark(name, "2-7-cni-add-port-bound-underlay-active")
	if err := b.announce(ctx, in); err != nil {
		return err
	}
	return b.overlay(ctx, name, host)
}

// announce has the instance, just attached, announce itself: a VM whose
// hypervisor migrated it sends the RARP rounds too.
func (b *FabricBackend) announce(ctx context.Context, in *instance) error {
	if err := b.rt.Announce(ctx, in.spec.Name, in.moving && in.kind != "pod"); err != nil {
		return fmt.Errorf("attach %s: %w", in.spec.Name, err)
	}
	b.mark(in.spec.Name, "announced")
	return nil
}

func (b *FabricBackend) underlay(ctx context.Context, name, host string) error {
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := b.api.SetUnderlayState(ctx, name, controller.StateUpdate{State: s, Host: host, Reason: "ovs agent"}); err != nil {
			return fmt.Errorf("underlay of %s: %w", name, err)
		}
	}
	b.mark(name, "6-underlay-active")
	return nil
}

func (b *FabricBackend) overlay(ctx context.Context, name, host string) error {
	if b.cnc != nil {
		if b.svc != nil {
			b.svc.Idle()
		}
		// Bounded: a CNC that cannot report (its controller gone, no
		// replica taking over) fails the step instead of holding the run.
		wctx, cancel := context.WithTimeout(ctx, maxUnavailable)
		err := b.cnc.Wait(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("cnc: %s's overlay not done within %v: %w", name, maxUnavailable, err)
		}
		if err := b.cost(ctx); err != nil {
			return err
		}
		p, err := b.api.GetPort(ctx, name)
		for start := b.rt.Now(); err == nil && p.OverlayState != controller.StateActive && b.controllerFailed() && b.rt.Now()-start < maxUnavailable; {
			// The controller died while the CNC reported: the resync
			// after its restart reports again.
			if err = b.sleep(ctx, 10*time.Millisecond); err == nil {
				if err = b.cnc.Wait(ctx); err == nil {
					p, err = b.api.GetPort(ctx, name)
				}
			}
		}
		if err != nil {
			return err
		}
		if p.OverlayState != controller.StateActive {
			return fmt.Errorf("cnc left %s's overlay %s", name, p.OverlayState)
		}
		b.mark(name, "9-overlay-active")
		return nil
	}
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := b.api.SetOverlayState(ctx, name, controller.StateUpdate{State: s, Host: host, Reason: "gateway on the core"}); err != nil {
			return fmt.Errorf("overlay of %s: %w", name, err)
		}
	}
	b.mark(name, "9-overlay-active")
	return nil
}

// Delete implements Backend: the instance leaves its host and its port is
// deleted (its address released).
func (b *FabricBackend) Delete(ctx context.Context, name string) error {
	in, ok := b.insts[name]
	if !ok {
		return fmt.Errorf("delete %s: no such instance", name)
	}
	if err := b.unwire(ctx, in); err != nil {
		return err
	}
	delete(b.insts, name)
	if !b.controlled() {
		return nil
	}
	if v := b.vpcOf(in.spec.Host); v != nil {
		return b.deleteVPC(ctx, v, in)
	}
	p, err := b.api.DeletePort(ctx, name)
	if err != nil {
		return fmt.Errorf("delete port %s: %w", name, err)
	}
	if b.svc != nil {
		b.svc.Idle()
	} else if b.cnc != nil {
		b.cnc.PortUnbound(ctx, p, in.spec.Host)
	}
	if b.cnc != nil {
		return b.cnc.Wait(ctx)
	}
	return nil
}

func (b *FabricBackend) unwire(ctx context.Context, in *instance) error {
	if err := b.rt.RemoveInstance(ctx, b.fab, in.spec.Name); err != nil {
		return fmt.Errorf("detach %s: %w", in.spec.Name, err)
	}
	if !b.controlled() {
		err := b.local[in.spec.Host].Release(in.spec.IP.Addr())
		if pool6 := b.local6[in.spec.Host]; pool6 != nil && in.spec.IP6.IsValid() {
			err = errors.Join(err, pool6.Release(in.spec.IP6.Addr()))
		}
		return err
	}
	return nil
}

// Move implements Backend: the instance is deleted on its host and
// created on host with the same identity. Gens 1 and 2 find the same port
// again (same address; the CNC moves the leaf configuration); gen 3 takes
// an address of the new node.
func (b *FabricBackend) Move(ctx context.Context, name, host string) (Instance, error) {
	in, ok := b.insts[name]
	if !ok {
		return Instance{}, fmt.Errorf("move %s: no such instance", name)
	}
	if err := b.unwire(ctx, in); err != nil {
		return Instance{}, err
	}
	if b.controlled() {
		b.mark(name, "drift-unplugged:"+in.spec.Host)
	}
	in.moving = true
	err := b.wire(ctx, in, host)
	in.moving = false
	if err != nil {
		delete(b.insts, name)
		return Instance{}, fmt.Errorf("move %s to %s: %w", name, host, err)
	}
	return in.public(), nil
}

// Fail implements Backend.
func (b *FabricBackend) Fail(ctx context.Context, t Target) error { return b.fault(ctx, t, false) }

// Restore implements Backend.
func (b *FabricBackend) Restore(ctx context.Context, t Target) error { return b.fault(ctx, t, true) }

func (b *FabricBackend) fault(ctx context.Context, t Target, up bool) error {
	verb := map[bool]string{false: "fail", true: "restore"}[up]
	switch {
	case t.Controller, t.Replica != "", t.Etcd != "":
		if !b.controlled() {
			return fmt.Errorf("%s %s: gen 3 has no central controller", verb, ctlName(t))
		}
		return b.controllerFault(ctx, t, up)
	case t.Agent != "":
		b.agentDown[t.Agent] = !up
		if !up || !b.controlled() {
			return nil
		}
		// The agent comes back and reports the ports it wired meanwhile.
		for _, in := range b.sortedInstances() {
			if in.spec.Host != t.Agent {
				continue
			}
			p, err := b.api.GetPort(ctx, in.spec.Name)
			if err == nil && p.UnderlayState != controller.StateActive {
				if err := b.underlay(ctx, in.spec.Name, t.Agent); err != nil {
					return err
				}
			}
		}
		return nil
	case t.Link != "":
		ep, err := parseEndpoint(t.Link)
		if err != nil {
			return err
		}
		return b.rt.SetLinkState(ctx, ep, up)
	case t.Node != "":
		return b.nodeState(ctx, t.Node, t.Mode, up)
	}
	return fmt.Errorf("%s: empty target", verb)
}

// nodeState fails or restores a node. A fabric with a control plane
// (datapath.ControlPlane) withdraws what the node advertised once its
// peers notice (the fail step lasts the detection time) and advertises it
// again on restore. A failed host's agent is gone with it: its instances'
// ports go down in the controller, and come back when the host does.
// With BGP speakers (ControlPlaneInspector), a leaf's fail or restore
// lasts until the other leaves' speakers have withdrawn or learnt its
// routes, and the fault records how long that took (convergenceWatch).
// A node failed in mode FailSilent keeps its links up (SilentFailer):
// its neighbours see only silence.
func (b *FabricBackend) nodeState(ctx context.Context, node, mode string, up bool) error {
	f := reports.Fault{At: b.rt.Now(), Target: "node " + node, Restore: up}
	converged, spine := b.convergenceWatch(ctx, node, f.At, up)
	carryOut := func() error {
		if mode == FailSilent && !up {
			sf, ok := b.rt.(SilentFailer)
			if !ok {
				return fmt.Errorf("fail node %s silently: the %s runtime cannot keep a failed node's links up (netns and sim can)", node, b.rt.Name())
			}
			return sf.FailSilently(ctx, node)
		}
		return b.rt.SetNodeState(ctx, node, up)
	}
	f.Spine = spine
	var err error
	switch {
	case converged == nil:
		err = carryOut()
	case !up && !virtualTime(b.rt):
		f.Convergence, f.Detail, err = convergeBeside(ctx, carryOut, converged)
	default:
		if err = carryOut(); err == nil {
			f.Convergence, f.Detail, err = converged(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("%s node %s: %w", map[bool]string{false: "fail", true: "restore"}[up], node, err)
	}
	if mode == FailSilent && !up {
		f.Detail = strings.TrimSuffix("silent: links up, the node drops everything; "+f.Detail, "; ")
	}
	if cp, ok := b.fab.(datapath.ControlPlane); ok {
		if !up {
			if err := b.sleep(ctx, cp.FailureDetection()); err != nil {
				return err
			}
		}
		if err := b.rt.Mutate(func() error {
			f.RoutesWithdrawn = cp.NodeStateChanged(node, up)
			return nil
		}); err != nil {
			return err
		}
	}
	if n := b.env.Topology.Node(node); n != nil && n.Role == topologies.RoleHost && b.controlled() {
		b.agentDown[node] = !up
		for _, in := range b.sortedInstances() {
			if in.spec.Host != node {
				continue
			}
			if up {
				if err := b.underlay(ctx, in.spec.Name, node); err != nil {
					return fmt.Errorf("restore host %s: %w", node, err)
				}
				continue
			}
			if _, err := b.api.SetUnderlayState(ctx, in.spec.Name, controller.StateUpdate{State: controller.StateDown, Host: node, Reason: "host failed"}); err != nil {
				return fmt.Errorf("fail host %s: port %s: %w", node, in.spec.Name, err)
			}
			f.PortsDown = append(f.PortsDown, in.spec.Name)
		}
	}
	b.addFault(f, false)
	return nil
}

// virtualTime says whether rt runs in virtual time: its latencies are
// modelled (LatencySource), as sim's are.
func virtualTime(rt Runtime) bool {
	ls, ok := rt.(LatencySource)
	return ok && ls.Latency().Kind == reports.LatencyModelled
}

// convergeBeside carries out a failure while converged polls, in real
// time: taking a node's links down one by one and killing and reaping
// its speaker takes milliseconds, during which the fabric already
// reacts, so that polling only afterwards would measure the fault's
// execution rather than the fabric. (In virtual time a fault takes none
// and the poll follows it, which keeps a seed's runs identical.)
func convergeBeside(ctx context.Context, carryOut func() error, converged func(context.Context) (time.Duration, string, error)) (time.Duration, string, error) {
	type result struct {
		took   time.Duration
		detail string
		err    error
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		took, detail, err := converged(pctx)
		done <- result{took, detail, err}
	}()
	if err := carryOut(); err != nil {
		cancel()
		<-done
		return 0, "", err
	}
	r := <-done
	if r.err != nil {
		return 0, "", fmt.Errorf("convergence: %w", r.err)
	}
	return r.took, r.detail, nil
}

func parseEndpoint(s string) (topologies.Endpoint, error) {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ':' {
			return topologies.Endpoint{Node: s[:i], Iface: s[i+1:]}, nil
		}
	}
	return topologies.Endpoint{}, fmt.Errorf("link %q: write it as node:interface", s)
}

func (b *FabricBackend) sortedInstances() []*instance {
	out := make([]*instance, 0, len(b.insts))
	for _, in := range b.insts {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// Policy implements Backend: gen 3 compiles it into the policy map.
func (b *FabricBackend) Policy(_ context.Context, p Policy) error {
	f, ok := b.fab.(*ebpf.Fabric)
	if !ok {
		return fmt.Errorf("policy %s: %s has no identity policy (gen 1 removed security groups, gen 2 uses a hardware firewall)", p.Name, b.env.Generation)
	}
	return b.rt.Mutate(func() error {
		if p.Action == "remove" {
			return f.RemovePolicy(p.Name)
		}
		proto, ok := policyProtos[p.Proto]
		if !ok {
			return fmt.Errorf("policy %s: protocol %q: use icmp, tcp, udp or leave it empty for any", p.Name, p.Proto)
		}
		return f.ApplyPolicy(ebpf.Policy{Name: p.Name, From: p.From, To: p.To, Proto: proto, Port: p.Port, Allow: p.Allow})
	})
}

var policyProtos = map[string]ebpf.Proto{"": ebpf.ProtoAny, "any": ebpf.ProtoAny, "icmp": ebpf.ProtoICMP, "tcp": ebpf.ProtoTCP, "udp": ebpf.ProtoUDP}

// Settle implements Settler: it settles the runtime if it is one.
func (b *FabricBackend) Settle(ctx context.Context) error {
	if s, ok := b.rt.(Settler); ok {
		return s.Settle(ctx)
	}
	return nil
}

// Probe implements Backend.
func (b *FabricBackend) Probe(ctx context.Context, req ProbeRequest) (reports.Probe, error) {
	from, ok := b.insts[req.From]
	if !ok {
		return reports.Probe{}, fmt.Errorf("probe from %s: no such instance", req.From)
	}
	to, ok := b.insts[req.To]
	if !ok {
		return reports.Probe{}, fmt.Errorf("probe to %s: no such instance", req.To)
	}
	dst := to.spec.IP.Addr()
	if req.Family == FamilyIPv6 {
		if !to.spec.IP6.IsValid() {
			return reports.Probe{}, fmt.Errorf("probe %s -> %s over IPv6: %s has no IPv6 address (%s)", req.From, req.To, req.To, b.noIPv6Why(to))
		}
		dst = to.spec.IP6.Addr()
	}
	var translated netip.Addr
	if req.Floating {
		var err error
		if dst, err = b.floatingDst(req.To); err != nil {
			return reports.Probe{}, fmt.Errorf("probe to %s's floating IP: %w", req.To, err)
		}
		translated = to.spec.IP.Addr()
	}
	return b.rt.Probe(ctx, RuntimeProbe{From: from.spec.Name, To: to.spec.Name, Dst: dst,
		Proto: req.Proto, Port: req.Port, Timeout: req.Timeout, Background: req.Background, Translated: translated})
}

// PortState implements Backend.
func (b *FabricBackend) PortState(ctx context.Context, name string) (string, error) {
	if _, ok := b.insts[name]; !ok {
		return "", fmt.Errorf("port state of %s: no such instance", name)
	}
	if v := b.vpcOf(b.insts[name].spec.Host); !b.controlled() || v != nil && v.fab.IsOutside(b.insts[name].spec.Host) {
		// Local IPAM, or a client outside the VPC: no port.
		return string(controller.StatusActiveActive), nil
	}
	if b.ctl.isDown() {
		return "", errControllerDown
	}
	p, err := b.api.GetPort(ctx, name)
	if err != nil {
		return "", err
	}
	return string(p.Status()), nil
}

// Finish implements Backend.
func (b *FabricBackend) Finish(run *reports.Run) error {
	drops, unexplained := b.rt.Stats()
	run.Drops = drops
	if run.Counters == nil {
		run.Counters = map[string]int{}
	}
	run.Counters["unexplained_drops"] = unexplained
	run.Counters["instances"] = len(b.insts)
	for _, v := range b.vpcs {
		v.counters(run.Counters)
	}
	run.Timeline = append(run.Timeline[:0], b.timeline...)
	b.ctl.mu.Lock()
	run.Faults = append(run.Faults[:0], b.faults...)
	asyncErr := b.ctl.asyncErr
	b.ctl.mu.Unlock()
	if asyncErr != nil {
		return asyncErr
	}
	if ls, ok := b.rt.(LatencySource); ok {
		run.Latency = ls.Latency()
	}
	if tr, ok := b.fab.(datapath.TableReporter); ok {
		// Sizes are read while no node runs (on netns they run in real
		// time), at the nodes' own time, so that aged entries are out.
		run.Tables = run.Tables[:0]
		if err := b.rt.Mutate(func() error {
			for _, t := range tr.TableSizes(b.rt.Now()) {
				run.Tables = append(run.Tables, reports.Table{Node: t.Node, Name: t.Table, Entries: t.Entries})
			}
			return nil
		}); err != nil {
			return err
		}
		sort.Slice(run.Tables, func(i, j int) bool {
			a, c := run.Tables[i], run.Tables[j]
			return a.Node < c.Node || a.Node == c.Node && a.Name < c.Name
		})
	}
	return nil
}

// Close implements Backend.
func (b *FabricBackend) Close() error {
	var errs []error
	b.ctl.mu.Lock()
	for _, t := range b.ctl.timers {
		if t.Stop() {
			b.ctl.wg.Done()
		}
	}
	b.ctl.mu.Unlock()
	b.ctl.wg.Wait()
	if b.ctl.rs != nil {
		errs = append(errs, b.ctl.rs.close())
		if b.cnc != nil {
			errs = append(errs, b.cnc.Close())
		}
	} else if b.ctl.bin != "" {
		errs = append(errs, b.stopProcess())
		if b.cnc != nil {
			errs = append(errs, b.cnc.Close())
		}
	} else if !b.ctl.isDown() && b.svc != nil {
		errs = append(errs, b.stopController())
	}
	errs = append(errs, b.rt.Close())
	for _, d := range []string{b.tmpDir, b.cniDir} {
		if d != "" {
			errs = append(errs, os.RemoveAll(d))
		}
	}
	return errors.Join(errs...)
}

// runtimeLocker turns the runtime's pause into a sync.Locker for the CNC's
// leaf driver, whose workers lock it from several goroutines: one holder
// at a time (mu), the nodes paused while it holds.
type runtimeLocker struct {
	mu     sync.Mutex
	rt     Runtime
	resume func()
}

func (l *runtimeLocker) Lock() {
	l.mu.Lock()
	l.resume = l.rt.Pause()
}

func (l *runtimeLocker) Unlock() {
	l.resume()
	l.mu.Unlock()
}

// noIPv6Why says why instance in has no IPv6 address.
func (b *FabricBackend) noIPv6Why(in *instance) string {
	if !b.controlled() {
		return fmt.Sprintf("the scenario gives %s no IPv6 cluster CIDR; set options.%s.cluster_cidr6, like fd10::/104, for dual-stack pods", b.env.Generation, b.env.Generation)
	}
	if in.kind == "pod" {
		if _, ok := b.rt.(PodAttacher); ok {
			return "pods attached by the CNI plugin get IPv4 only, for now"
		}
	}
	for _, n := range b.env.Networks {
		if n.Name == in.spec.Network && n.Subnet6.IsValid() {
			return "its port got none"
		}
	}
	return fmt.Sprintf("its network %s has no subnet6", in.spec.Network)
}
