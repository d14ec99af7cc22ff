package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/datapath/l3"
)

// Mode is how pods on different nodes reach each other.
type Mode int

// Cross-node modes (seed §4.3).
const (
	// Tunnel: VXLAN from node IP to node IP through cilium_vxlan; pod
	// addresses are not routable in the underlay.
	Tunnel Mode = iota + 1
	// Direct: pod packets go natively to the leaf, which routes the pod
	// CIDRs (advertised by BGP in the real thing).
	Direct
)

func (m Mode) String() string {
	switch m {
	case Tunnel:
		return "tunnel"
	case Direct:
		return "direct"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Device names on a node.
const (
	DevCiliumHost  = "cilium_host"
	DevCiliumNet   = "cilium_net"
	DevCiliumVXLAN = "cilium_vxlan"
	ProgLxc        = "bpf_lxc"     // from-container, on every lxc (tc ingress)
	ProgOverlay    = "bpf_overlay" // from-overlay, on cilium_vxlan
	ProgHost       = "bpf_host"    // from-netdev, on the NICs
)

// Interface indexes of the fixed devices; port i of the node (NICs, then
// lxc devices) has ifindex IfIndexBase+i.
const (
	IfIndexCiliumNet   = 2
	IfIndexCiliumHost  = 3
	IfIndexCiliumVXLAN = 4
	IfIndexBase        = 10
)

// Errors.
var (
	ErrOutsideNodeCIDR = errors.New("address outside the node's pod CIDR")
	ErrReservedAddr    = errors.New("address reserved")
	ErrAddrInUse       = errors.New("address already in use")
	ErrExists          = errors.New("already exists")
	ErrNotFound        = errors.New("not found")
	ErrNodeFull        = errors.New("no free lxc slot")
)

// NIC is one of a node's uplinks to a leaf.
type NIC struct {
	Name string
	MAC  net.HardwareAddr
	// GatewayMAC is the leaf port's MAC (the agent's static neighbour
	// entry for the default gateway).
	GatewayMAC net.HardwareAddr
}

// NodeConfig describes a Cilium node.
type NodeConfig struct {
	Name        string
	Mode        Mode
	NodeIP      netip.Addr   // underlay address (on the NICs)
	NodeCIDR    netip.Prefix // pods of this node; the first address is the gateway on cilium_host
	ClusterCIDR netip.Prefix // all pod CIDRs
	// NodeCIDR6 and ClusterCIDR6 make the node dual-stack: its pods'
	// IPv6 addresses, the first after the network address being the
	// gateway on cilium_host, and every node's (zero: IPv4 only).
	NodeCIDR6    netip.Prefix
	ClusterCIDR6 netip.Prefix
	NICs         []NIC
	// Slots is how many lxc ports the node has (free ones are named "");
	// 0 means one per usable address of the node CIDR, at most
	// DefaultSlots. Ports are fixed at creation so that a runtime may
	// wire pods added later.
	Slots int
}

// DefaultSlots bounds the lxc ports of a node (the seed runs 500+ pods on
// one node).
const DefaultSlots = 1024

// Endpoint is a pod attached to a node.
type Endpoint struct {
	Name     string
	Device   string // lxc<ID>
	ID       uint16
	Port     int // node port of the lxc device
	IP       netip.Addr
	IP6      netip.Addr       // zero on an IPv4-only pod
	MAC      net.HardwareAddr // pod eth0
	NodeMAC  net.HardwareAddr // lxc host side
	Identity Identity
	Labels   map[string]string

	mac, nodeMAC [6]byte
	allowRule    string
	allowRule6   string
}

type nic struct {
	NIC
	mac, gw [6]byte
	up      bool
}

// Node is a Cilium node as a datapath.Node: its ports are the NICs (in
// NodeConfig order) followed by one lxc device per pod. Frames from a pod
// enter bpf_lxc; frames from the fabric enter bpf_host or, for VXLAN to the
// node, cilium_vxlan and bpf_overlay. Every decision reads the node's Maps.
type Node struct {
	cfg     NodeConfig
	maps    *Maps
	policy  *PolicyTable
	ports   []string
	nics    []nic
	eps     []*Endpoint // by port; nil for NICs and free slots
	byName  map[string]*Endpoint
	hostMAC [6]byte
	netMAC  [6]byte
	gw      netip.Addr
	nextID  uint16
	tunnels map[TunnelKey]string // rule names of the node's own tunnel entries
	cluster *clusterMaps         // the fabric's shared maps, nil if none
	seed    uint32
	buf     []byte
	hostIP  [4]byte
	gw4     [4]byte
	vxMAC   [6]byte
	// The cluster and node CIDRs, to match raw addresses.
	cluster4, node4 prefix4
	// gw6 is the pods' IPv6 gateway on cilium_host (zero: IPv4 only).
	gw6      netip.Addr
	gw6b     [16]byte
	tunnels6 map[TunnelKey6]string // rule names of IPv6 tunnel entries
}

var _ datapath.Node = (*Node)(nil)

// DeviceMAC derives a locally administered MAC for a device of a node.
func DeviceMAC(node, device string) net.HardwareAddr {
	h := fnv32(2166136261, []byte(node))
	h = fnv32(h^0x5bd1e995, []byte(device))
	return net.HardwareAddr{0x0a, byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h), byte(h>>4) ^ 0x5a}
}

func fnv32(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// NewNode returns a node with no pods, empty maps apart from its own
// ipcache entries, and no policy.
func NewNode(cfg NodeConfig) (*Node, error) { return newNode(cfg, nil) }

// newNode is NewNode with the node's maps over a fabric's shared ones.
func newNode(cfg NodeConfig, cluster *clusterMaps) (*Node, error) {
	if cfg.Mode != Tunnel && cfg.Mode != Direct {
		return nil, fmt.Errorf("node %s: mode %v: want tunnel or direct", cfg.Name, cfg.Mode)
	}
	if !cfg.NodeIP.Is4() || !cfg.NodeCIDR.Addr().Is4() {
		return nil, fmt.Errorf("node %s: node IP %v and CIDR %v must be IPv4", cfg.Name, cfg.NodeIP, cfg.NodeCIDR)
	}
	n := &Node{
		cfg: cfg, maps: newMaps(cluster), cluster: cluster, byName: map[string]*Endpoint{}, tunnels: map[TunnelKey]string{},
		gw: cfg.NodeCIDR.Masked().Addr().Next(), nextID: 1, seed: fnv32(2166136261, []byte(cfg.Name)),
		policy: &PolicyTable{Enforced: map[Identity]bool{}},
	}
	n.hostMAC = [6]byte(DeviceMAC(cfg.Name, DevCiliumHost))
	n.netMAC = [6]byte(DeviceMAC(cfg.Name, DevCiliumNet))
	n.vxMAC = [6]byte(DeviceMAC(cfg.Name, DevCiliumVXLAN))
	n.hostIP = cfg.NodeIP.As4()
	n.gw4 = n.gw.As4()
	n.cluster4, n.node4 = newPrefix4(cfg.ClusterCIDR), newPrefix4(cfg.NodeCIDR)
	if cfg.NodeCIDR6.IsValid() {
		c6, n6 := cfg.ClusterCIDR6.Masked(), cfg.NodeCIDR6.Masked()
		if !n6.Addr().Is6() || n6.Addr().Is4In6() || !c6.IsValid() || !c6.Addr().Is6() || !c6.Contains(n6.Addr()) || n6.Bits() < c6.Bits() || n6.Bits() > 126 {
			return nil, fmt.Errorf("node %s: IPv6 node CIDR %v must be an IPv6 prefix of /126 or larger inside the IPv6 cluster CIDR %v", cfg.Name, cfg.NodeCIDR6, cfg.ClusterCIDR6)
		}
		n.cfg.NodeCIDR6, n.cfg.ClusterCIDR6 = n6, c6
		n.gw6 = n6.Addr().Next()
		n.gw6b = n.gw6.As16()
	}
	for i, c := range cfg.NICs {
		if len(c.MAC) != 6 || len(c.GatewayMAC) != 6 {
			return nil, fmt.Errorf("node %s NIC %d %q: MAC and gateway MAC must be 6 bytes", cfg.Name, i, c.Name)
		}
		n.nics = append(n.nics, nic{NIC: c, mac: [6]byte(c.MAC), gw: [6]byte(c.GatewayMAC), up: true})
		n.ports = append(n.ports, c.Name)
		n.eps = append(n.eps, nil)
	}
	if cfg.Slots == 0 {
		cfg.Slots = min(1<<(32-cfg.NodeCIDR.Bits())-3, DefaultSlots)
		n.cfg.Slots = cfg.Slots
	}
	for range cfg.Slots {
		n.ports = append(n.ports, "")
		n.eps = append(n.eps, nil)
	}
	// The node's own addresses: host identity.
	for _, a := range []netip.Addr{cfg.NodeIP, n.gw} {
		if err := n.maps.IPCache.Update(IPCacheKey{32, a.As4()}, IPCacheValue{Identity: uint32(IdentityHost)}); err != nil {
			return nil, err
		}
	}
	if n.gw6.IsValid() {
		if err := n.maps.IPCache6.Update(IPCacheKey6{128, n.gw6b}, IPCacheValue{Identity: uint32(IdentityHost)}); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Name implements datapath.Node.
func (n *Node) Name() string { return n.cfg.Name }

// Ports implements datapath.Node: NICs, then the lxc slots (a free slot is
// named ""; a removed pod's slot is reused by the next pod).
func (n *Node) Ports() []string { return n.ports }

// Config returns the node's configuration.
func (n *Node) Config() NodeConfig { return n.cfg }

// Gateway returns the pods' gateway, the node CIDR's first address, on
// cilium_host.
func (n *Node) Gateway() netip.Addr { return n.gw }

// Gateway6 returns the pods' IPv6 gateway, the IPv6 node CIDR's first
// address, on cilium_host; zero on an IPv4-only node.
func (n *Node) Gateway6() netip.Addr { return n.gw6 }

// HostMAC returns cilium_host's MAC, the one bpf_lxc answers ARP with.
func (n *Node) HostMAC() net.HardwareAddr { return net.HardwareAddr(n.hostMAC[:]) }

// Device is one network device of a node, as `ip link` would list it.
type Device struct {
	Name    string
	IfIndex int
	Kind    datapath.DeviceKind
	MAC     net.HardwareAddr
	Addr    netip.Prefix // zero when the device has no address
}

// Devices lists the node's devices: the NICs (with the node IP), the
// cilium_host/cilium_net pair (the gateway on cilium_host), cilium_vxlan in
// tunnel mode, and one lxc device per pod.
func (n *Node) Devices() []Device {
	var out []Device
	for i, c := range n.nics {
		out = append(out, Device{Name: c.Name, IfIndex: IfIndexBase + i, Kind: datapath.KindNIC, MAC: c.MAC, Addr: netip.PrefixFrom(n.cfg.NodeIP, 32)})
	}
	out = append(out,
		Device{Name: DevCiliumHost, IfIndex: IfIndexCiliumHost, Kind: datapath.KindVeth, MAC: net.HardwareAddr(n.hostMAC[:]), Addr: netip.PrefixFrom(n.gw, 32)},
		Device{Name: DevCiliumNet, IfIndex: IfIndexCiliumNet, Kind: datapath.KindVeth, MAC: net.HardwareAddr(n.netMAC[:])})
	if n.cfg.Mode == Tunnel {
		out = append(out, Device{Name: DevCiliumVXLAN, IfIndex: IfIndexCiliumVXLAN, Kind: datapath.KindTunnel, MAC: net.HardwareAddr(n.vxMAC[:])})
	}
	for _, ep := range n.Endpoints() {
		out = append(out, Device{Name: ep.Device, IfIndex: IfIndexBase + ep.Port, Kind: datapath.KindVeth, MAC: ep.NodeMAC})
	}
	return out
}

// Maps returns the node's BPF maps.
func (n *Node) Maps() *Maps { return n.maps }

// Endpoint returns the pod called name.
func (n *Node) Endpoint(name string) (*Endpoint, bool) {
	ep, ok := n.byName[name]
	return ep, ok
}

// Endpoints returns the pods in port order.
func (n *Node) Endpoints() []*Endpoint {
	var out []*Endpoint
	for _, ep := range n.eps {
		if ep != nil {
			out = append(out, ep)
		}
	}
	return out
}

// AddEndpoint attaches a pod: it creates lxc<ID> (a new port) and writes
// the endpoints map and the ipcache. ip must lie in the node CIDR and not
// be the gateway.
func (n *Node) AddEndpoint(name string, ip netip.Addr, mac net.HardwareAddr, id Identity, labels map[string]string) (*Endpoint, error) {
	if _, ok := n.byName[name]; ok {
		return nil, fmt.Errorf("add endpoint %q on %s: %w", name, n.cfg.Name, ErrExists)
	}
	if !n.cfg.NodeCIDR.Contains(ip) {
		return nil, fmt.Errorf("add endpoint %q on %s: %v: %w %v; give the pod an address from %v", name, n.cfg.Name, ip, ErrOutsideNodeCIDR, n.cfg.NodeCIDR, n.cfg.NodeCIDR)
	}
	if ip == n.gw || ip == n.cfg.NodeCIDR.Masked().Addr() || ip == lastAddr(n.cfg.NodeCIDR) {
		return nil, fmt.Errorf("add endpoint %q on %s: %v in %v: %w (network, gateway %v on cilium_host, broadcast); use another address", name, n.cfg.Name, ip, n.cfg.NodeCIDR, ErrReservedAddr, n.gw)
	}
	if _, ok := n.maps.Endpoints.Lookup(EndpointKey{ip.As4()}); ok {
		return nil, fmt.Errorf("add endpoint %q on %s: %v: %w", name, n.cfg.Name, ip, ErrAddrInUse)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("add endpoint %q on %s: MAC %v must be 6 bytes", name, n.cfg.Name, mac)
	}
	lxcID := n.nextID
	dev := "lxc" + strconv.Itoa(int(lxcID))
	port := slices.Index(n.eps[len(n.nics):], nil)
	if port < 0 {
		return nil, fmt.Errorf("add endpoint %q on %s: %w (%d slots); raise NodeConfig.Slots", name, n.cfg.Name, ErrNodeFull, n.cfg.Slots)
	}
	port += len(n.nics)
	n.nextID++
	ep := &Endpoint{Name: name, Device: dev, ID: lxcID, Port: port, IP: ip, MAC: slices.Clone(mac),
		NodeMAC: DeviceMAC(n.cfg.Name, dev), Identity: id, Labels: labels, allowRule: "endpoint:" + ip.String()}
	ep.mac, ep.nodeMAC = [6]byte(ep.MAC), [6]byte(ep.NodeMAC)
	info := EndpointInfo{IfIndex: uint32(IfIndexBase + port), Identity: uint32(id), LxcID: lxcID, MAC: ep.mac, NodeMAC: ep.nodeMAC}
	if n.policy.Enforced[id] {
		info.Flags |= EndpointPolicyEnforced
	}
	if n.policy.EgressEnforced[id] {
		info.Flags |= EndpointEgressEnforced
	}
	if err := n.maps.Endpoints.Update(EndpointKey{ip.As4()}, info); err != nil {
		return nil, fmt.Errorf("add endpoint %q on %s: %w", name, n.cfg.Name, err)
	}
	if err := n.maps.IPCache.Update(IPCacheKey{32, ip.As4()}, IPCacheValue{Identity: uint32(id)}); err != nil {
		_ = n.maps.Endpoints.Delete(EndpointKey{ip.As4()})
		return nil, fmt.Errorf("add endpoint %q on %s: %w", name, n.cfg.Name, err)
	}
	n.eps[port] = ep
	n.ports[port] = dev
	n.byName[name] = ep
	return ep, nil
}

// RemoveEndpoint detaches a pod and frees its port slot.
func (n *Node) RemoveEndpoint(name string) error {
	ep, ok := n.byName[name]
	if !ok {
		return fmt.Errorf("remove endpoint %q from %s: %w", name, n.cfg.Name, ErrNotFound)
	}
	_ = n.maps.Endpoints.Delete(EndpointKey{ep.IP.As4()})
	_ = n.maps.IPCache.Delete(IPCacheKey{32, ep.IP.As4()})
	if ep.IP6.IsValid() {
		_ = n.maps.Endpoints6.Delete(EndpointKey6{ep.IP6.As16()})
		_ = n.maps.IPCache6.Delete(IPCacheKey6{128, ep.IP6.As16()})
	}
	n.eps[ep.Port] = nil
	n.ports[ep.Port] = ""
	delete(n.byName, name)
	return nil
}

// SetRemote records a pod or node address of another node in the
// ipcache: its identity and the node it lives on.
// An IPv6 prefix goes into the IPv6 ipcache; the node is always named
// by its (IPv4) underlay address.
func (n *Node) SetRemote(p netip.Prefix, id Identity, nodeIP netip.Addr) error {
	v := IPCacheValue{Identity: uint32(id)}
	if nodeIP.IsValid() {
		v.TunnelEndpoint = nodeIP.As4()
	}
	if p.Addr().Is6() {
		return n.maps.IPCache6.Update(ipcacheKey6(p), v)
	}
	return n.maps.IPCache.Update(IPCacheKey{uint32(p.Bits()), p.Masked().Addr().As4()}, v)
}

// DeleteRemote removes an ipcache entry written by SetRemote.
func (n *Node) DeleteRemote(p netip.Prefix) error {
	if p.Addr().Is6() {
		return n.maps.IPCache6.Delete(ipcacheKey6(p))
	}
	return n.maps.IPCache.Delete(IPCacheKey{uint32(p.Bits()), p.Masked().Addr().As4()})
}

// SetTunnel points the node CIDR cidr at the node with underlay address
// nodeIP in the tunnel map.
func (n *Node) SetTunnel(cidr netip.Prefix, nodeIP netip.Addr) error {
	if cidr.Addr().Is6() {
		return n.setTunnel6(cidr, nodeIP)
	}
	k := TunnelKey{cidr.Masked().Addr().As4()}
	if err := n.maps.Tunnel.Update(k, TunnelValue{nodeIP.As4()}); err != nil {
		return err
	}
	n.tunnels[k] = tunnelRuleName(cidr, nodeIP)
	return nil
}

// tunnelRule names the tunnel map entry tk for the trace: the node's own
// entry's, else the shared one's.
func (n *Node) tunnelRule(tk TunnelKey) string {
	if len(n.tunnels) > 0 {
		if r, ok := n.tunnels[tk]; ok {
			return r
		}
	}
	if n.cluster != nil {
		return n.cluster.tunnelRules[tk]
	}
	return ""
}

func tunnelRuleName(cidr netip.Prefix, nodeIP netip.Addr) string {
	return "tunnel:" + cidr.Masked().String() + "->" + nodeIP.String()
}

// DeleteTunnel removes the tunnel map entry of cidr.
func (n *Node) DeleteTunnel(cidr netip.Prefix) error {
	if cidr.Addr().Is6() {
		return n.maps.Tunnel6.Delete(TunnelKey6{cidr.Masked().Addr().As16()})
	}
	k := TunnelKey{cidr.Masked().Addr().As4()}
	delete(n.tunnels, k)
	return n.maps.Tunnel.Delete(k)
}

// SetPolicy installs compiled policy into the node's policy map and sets
// the enforcement flag of its endpoints.
func (n *Node) SetPolicy(cp CompiledPolicy) error {
	t, err := Install(n.maps.Policy, cp)
	if err != nil {
		return fmt.Errorf("set policy on %s: %w", n.cfg.Name, err)
	}
	n.policy = t
	for _, ep := range n.byName {
		k := EndpointKey{ep.IP.As4()}
		info, _ := n.maps.Endpoints.Lookup(k)
		info.Flags &^= EndpointPolicyEnforced | EndpointEgressEnforced
		if t.Enforced[ep.Identity] {
			info.Flags |= EndpointPolicyEnforced
		}
		if t.EgressEnforced[ep.Identity] {
			info.Flags |= EndpointEgressEnforced
		}
		if err := n.maps.Endpoints.Update(k, info); err != nil {
			return err
		}
		if ep.IP6.IsValid() {
			if err := n.maps.Endpoints6.Update(EndpointKey6{ep.IP6.As16()}, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetPortState implements datapath.Node: a NIC going down leaves the
// uplink set (flows rehash over the others).
func (n *Node) SetPortState(_ time.Duration, port int, up bool, _ datapath.Output) {
	if port >= 0 && port < len(n.nics) {
		n.nics[port].up = up
	}
}

func (n *Node) trace(out datapath.Output, now time.Duration, dev string, kind datapath.DeviceKind, in, outp string, act datapath.Action, r datapath.Reason, rule string) {
	out.Trace(datapath.Event{Time: now, Node: n.cfg.Name, Device: dev, Kind: kind, InPort: in, OutPort: outp, Action: act, Reason: r, Rule: rule})
}

// Receive implements datapath.Node.
func (n *Node) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	switch {
	case port >= 0 && port < len(n.nics):
		n.fromNetdev(now, port, b, out)
	case port >= len(n.nics) && port < len(n.eps) && n.eps[port] != nil:
		ep := n.eps[port]
		n.trace(out, now, ep.Device, datapath.KindVeth, ep.Device, ProgLxc, datapath.ActForward, "", "")
		n.fromContainer(now, ep, b, out)
	default:
		dev := ""
		if port >= 0 && port < len(n.ports) {
			dev = n.ports[port]
		}
		n.trace(out, now, dev, datapath.KindVeth, dev, "", datapath.ActDrop, datapath.ReasonPortDown, "no-endpoint")
	}
}

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
)

// ipv4 checks that b is an untagged IPv4 frame with a whole header.
func ipv4(b []byte) bool {
	if len(b) < 34 || binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 || b[14]>>4 != 4 {
		return false
	}
	ihl := int(b[14]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[16:18]))
	return ihl >= 20 && len(b) >= 14+ihl && total >= ihl && total <= len(b)-14
}

// flow extracts the conntrack tuple, protocol and destination port.
func flow(b []byte) (k CTKey, proto Proto, dport uint16) {
	k.Src, k.Dst = [4]byte(b[26:30]), [4]byte(b[30:34])
	k.Proto = b[23]
	ihl := int(b[14]&0xf) * 4
	l4 := b[14+ihl:]
	switch k.Proto {
	case 6, 17:
		if len(l4) >= 4 {
			k.SPort, k.DPort = [2]byte(l4[0:2]), [2]byte(l4[2:4])
		}
	case 1:
		if len(l4) >= 8 && (l4[0] == 8 || l4[0] == 0) {
			k.SPort, k.DPort = [2]byte(l4[4:6]), [2]byte(l4[4:6])
		}
	}
	return k, Proto(k.Proto), portOf(k.DPort)
}

// echoRequest reports whether the IPv4 frame b is an ICMP echo request:
// a request is never the reply of a flow the other way, even when it
// carries the same echo ID (conntrack tells them apart by type, as
// Linux's does).
func echoRequest(b []byte) bool {
	ihl := int(b[14]&0xf) * 4
	return b[23] == 1 && len(b) > 14+ihl && b[14+ihl] == 8
}

func reverse(k CTKey) CTKey {
	k.Src, k.Dst = k.Dst, k.Src
	k.SPort, k.DPort = k.DPort, k.SPort
	return k
}

// decTTL decrements the TTL of the IPv4 packet in b and fixes the header
// checksum, or the hop limit of an IPv6 one (which has no checksum).
func decTTL(b []byte) {
	if b[12] == etherTypeIPv6>>8 && b[13] == etherTypeIPv6&0xff {
		b[21]--
		return
	}
	b[22]--
	ihl := int(b[14]&0xf) * 4
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:26], inetsum.IPv4Header(b[14:14+ihl]))
}

// ctTrack records the flow k in the conntrack map. A full map is swept
// of expired entries first (the agent's CT garbage collection); if it is
// still full the flow goes untracked, and replies to it then face the
// policy like new traffic.
func (n *Node) ctTrack(now time.Duration, k CTKey, id Identity, size int) {
	// In place: one probe of the table, not a lookup and an update.
	if p := n.maps.CT.ref(k); p != nil && ctFresh(now, *p) {
		ctCount(now, p, size)
		return
	}
	n.ctNew(now, k, id, size)
}

// ctCount counts a packet of size bytes on the live entry e.
func ctCount(now time.Duration, e *CTEntry, size int) {
	e.Packets++
	e.Bytes += uint64(size)
	e.LastSeen = uint64(now)
}

// ctReply returns, in place, the live conntrack entry of the flow whose
// reply is the IPv4 frame b with tuple k, nil if none. An echo request
// is never a reply: it skips the lookup.
func (n *Node) ctReply(now time.Duration, k CTKey, b []byte) *CTEntry {
	if echoRequest(b) {
		return nil
	}
	if p := n.maps.CT.ref(reverse(k)); p != nil && ctFresh(now, *p) {
		return p
	}
	return nil
}

// ctNew starts the entry of flow k (replacing an expired one) with its
// first packet.
func (n *Node) ctNew(now time.Duration, k CTKey, id Identity, size int) {
	e := CTEntry{Created: uint64(now), Identity: uint32(id)}
	ctCount(now, &e, size)
	if err := n.maps.CT.Update(k, e); err != nil {
		n.ctGC(now)
		_ = n.maps.CT.Update(k, e)
	}
}

// ctFresh reports whether a conntrack entry has not expired at now.
func ctFresh(now time.Duration, e CTEntry) bool {
	return uint64(now)-e.LastSeen <= uint64(CTTimeout)
}

// ctGC removes expired conntrack entries.
func (n *Node) ctGC(now time.Duration) {
	var dead []CTKey
	n.maps.CT.Range(func(k CTKey, e CTEntry) bool {
		if uint64(now)-e.LastSeen > uint64(CTTimeout) {
			dead = append(dead, k)
		}
		return true
	})
	for _, k := range dead {
		_ = n.maps.CT.Delete(k)
	}
}

// ingress is the policy check for a packet from identity src to the local
// endpoint ep: conntrack replies pass, then the policy map decides, and an
// enforced endpoint denies what nothing allows.
func (n *Node) ingress(now time.Duration, src Identity, ep *Endpoint, b []byte) (bool, string) {
	k, proto, dport := flow(b)
	if p := n.ctReply(now, k, b); p != nil {
		ctCount(now, p, len(b))
		return true, "ct:reply"
	}
	pk, e, ok := PolicyLookup(n.maps.Policy, src, ep.Identity, proto, dport)
	if ok {
		e.Packets++
		e.Bytes += uint64(len(b))
		_ = n.maps.Policy.Update(pk, e)
		name := ""
		if int(e.RuleID) < len(n.policy.Names) {
			name = n.policy.Names[e.RuleID]
		}
		if e.Action != PolicyAllow {
			return false, name
		}
		n.ctTrack(now, k, src, len(b))
		return true, name
	}
	if info, _ := n.maps.Endpoints.Lookup(EndpointKey{ep.IP.As4()}); info.Flags&EndpointPolicyEnforced != 0 {
		return false, DefaultDenyRule(src, ep.Identity)
	}
	n.ctTrack(now, k, src, len(b))
	return true, ep.allowRule
}

// egress is the policy check for a packet leaving the local endpoint ep
// for dst, made on the source node: nothing to check unless ep is
// egress-enforced; then replies (conntrack) pass and the policy map's
// egress entries decide, with the destination's identity from the
// endpoints map or the ipcache (world when neither knows it).
func (n *Node) egress(now time.Duration, ep *Endpoint, dst [4]byte, b []byte) (bool, string) {
	if info, _ := n.maps.Endpoints.Lookup(EndpointKey{ep.IP.As4()}); info.Flags&EndpointEgressEnforced == 0 {
		return true, ""
	}
	k, proto, dport := flow(b)
	if n.ctReply(now, k, b) != nil {
		return true, "ct:reply"
	}
	remote := IdentityWorld
	switch {
	case n.endpointOf(dst) != nil:
		remote = n.endpointOf(dst).Identity
	case dst == n.gw4 || dst == n.hostIP:
		remote = IdentityHost
	default:
		if v, ok := n.maps.IPCache.Lookup(dst); ok {
			remote = Identity(v.Identity)
		}
	}
	pk, e, ok := EgressLookup(n.maps.Policy, ep.Identity, remote, proto, dport)
	if !ok {
		return false, EgressDefaultDenyRule(ep.Identity, remote)
	}
	e.Packets++
	e.Bytes += uint64(len(b))
	_ = n.maps.Policy.Update(pk, e)
	name := ""
	if int(e.RuleID) < len(n.policy.Names) {
		name = n.policy.Names[e.RuleID]
	}
	return e.Action == PolicyAllow, name
}

// deliver hands b (an IPv4 frame for ep that prog already decided on) to
// the pod: MACs rewritten, TTL decremented, out of the lxc device.
func (n *Node) deliver(now time.Duration, prog, in string, ep *Endpoint, b []byte, rule string, out datapath.Output) {
	buf := b // rewritten in place (datapath.Node's contract)
	copy(buf[0:6], ep.mac[:])
	copy(buf[6:12], ep.nodeMAC[:])
	decTTL(buf)
	n.trace(out, now, prog, datapath.KindBPF, in, ep.Device, datapath.ActRedirect, "", rule)
	n.trace(out, now, ep.Device, datapath.KindVeth, prog, "eth0", datapath.ActForward, "", "")
	out.Forward(ep.Port, buf)
}

// toEndpoint runs the ingress policy for ep and delivers or drops.
func (n *Node) toEndpoint(now time.Duration, prog, in string, src Identity, ep *Endpoint, b []byte, out datapath.Output) {
	ok, rule := n.ingress(now, src, ep, b)
	if !ok {
		n.trace(out, now, prog, datapath.KindBPF, in, "", datapath.ActDrop, datapath.ReasonPolicy, rule)
		return
	}
	n.deliver(now, prog, in, ep, b, rule, out)
}

func (n *Node) endpointOf(ip [4]byte) *Endpoint {
	info, ok := n.maps.Endpoints.Lookup(EndpointKey{ip})
	if !ok {
		return nil
	}
	p := int(info.IfIndex) - IfIndexBase
	if p < 0 || p >= len(n.eps) {
		return nil
	}
	return n.eps[p]
}

// fromContainer is bpf_lxc's from-container program.
func (n *Node) fromContainer(now time.Duration, ep *Endpoint, b []byte, out datapath.Output) {
	if len(b) >= 42 && binary.BigEndian.Uint16(b[12:14]) == etherTypeARP {
		n.arpResponder(now, ep, b, out)
		return
	}
	if n.gw6.IsValid() && len(b) >= 14 && binary.BigEndian.Uint16(b[12:14]) == etherTypeIPv6 {
		n.fromContainer6(now, ep, b, out)
		return
	}
	if !ipv4(b) {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonMalformed, "not-ipv4")
		return
	}
	if [4]byte(b[26:30]) != ep.IP.As4() {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonPolicy, "source-ip-check")
		return
	}
	if b[22] <= 1 {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonTTL, "")
		return
	}
	dst := [4]byte(b[30:34])
	if ok, rule := n.egress(now, ep, dst, b); !ok {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonPolicy, rule)
		return
	}
	k, _, _ := flow(b)
	n.ctTrack(now, k, ep.Identity, len(b))
	if peer := n.endpointOf(dst); peer != nil {
		n.toEndpoint(now, ProgLxc, ep.Device, ep.Identity, peer, b, out)
		return
	}
	if dst == n.gw4 || dst == n.hostIP {
		n.toHost(now, ep, b, out)
		return
	}
	if n.cfg.Mode == Tunnel && n.cluster4.contains(dst) {
		tk, tv, ok := n.tunnelFor4(dst)
		if !ok {
			n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNoTunnel, "tunnel:miss")
			return
		}
		n.encap(now, ProgLxc, ep.Device, ep.Identity, tv.NodeIP, n.tunnelRule(tk), b, out)
		return
	}
	n.routeOut(now, ProgLxc, ep.Device, b, "fib:default", out)
}

// arpResponder answers every ARP request from a pod with cilium_host's
// MAC, so pods never ARP for each other.
func (n *Node) arpResponder(now time.Duration, ep *Endpoint, b []byte, out datapath.Output) {
	op := binary.BigEndian.Uint16(b[20:22])
	spa, tpa := netip.AddrFrom4([4]byte(b[28:32])), netip.AddrFrom4([4]byte(b[38:42]))
	if op != 1 || tpa == spa {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNotForMe, "arp:ignored")
		return
	}
	n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDeliver, "", "arp:responder")
	n.trace(out, now, ProgLxc, datapath.KindBPF, "", ep.Device, datapath.ActOriginate, "", "arp:reply")
	out.Send(ep.Port, frame.ARPReply(net.HardwareAddr(n.hostMAC[:]), tpa, net.HardwareAddr(b[22:28]), spa))
}

// toHost delivers a pod's packet to the node itself (gateway or node IP)
// through cilium_host; ICMP echo is answered.
func (n *Node) toHost(now time.Duration, ep *Endpoint, b []byte, out datapath.Output) {
	n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, DevCiliumHost, datapath.ActRedirect, "", "host")
	n.trace(out, now, DevCiliumHost, datapath.KindVeth, ProgLxc, "", datapath.ActDeliver, "", "host")
	var reply []byte
	if ipv6(b) {
		reply = echoReply6(b, n.hostMAC, ep.mac)
	} else {
		reply = echoReply(b, n.hostMAC, ep.mac)
	}
	if reply != nil {
		n.trace(out, now, DevCiliumHost, datapath.KindVeth, "", ep.Device, datapath.ActOriginate, "", "icmp:echo-reply")
		n.trace(out, now, ep.Device, datapath.KindVeth, DevCiliumHost, "eth0", datapath.ActForward, "", "")
		out.Send(ep.Port, reply)
	}
}

// echoReply builds the reply to an ICMP echo request in b, or nil.
func echoReply(b []byte, srcMAC, dstMAC [6]byte) []byte {
	if b[23] != 1 {
		return nil
	}
	ihl := int(b[14]&0xf) * 4
	icmp := b[14+ihl:]
	if len(icmp) < 8 || icmp[0] != 8 {
		return nil
	}
	return frame.ICMPEcho(frame.IPv4{SrcMAC: net.HardwareAddr(srcMAC[:]), DstMAC: net.HardwareAddr(dstMAC[:]),
		Src: netip.AddrFrom4([4]byte(b[30:34])), Dst: netip.AddrFrom4([4]byte(b[26:30]))},
		true, binary.BigEndian.Uint16(icmp[4:6]), binary.BigEndian.Uint16(icmp[6:8]), icmp[8:])
}

// uplink picks the NIC for a flow among those up.
func (n *Node) uplink(b []byte) int {
	up := 0
	for i := range n.nics {
		if n.nics[i].up {
			up++
		}
	}
	if up == 0 {
		return -1
	}
	pick := 0 // one NIC up: no hash needed, any hash modulo 1 is 0
	if up > 1 {
		pick = int(l3.FlowHash(n.seed, b) % uint32(up))
	}
	for i := range n.nics {
		if n.nics[i].up {
			if pick == 0 {
				return i
			}
			pick--
		}
	}
	return -1
}

// routeOut sends an IPv4 packet natively to the leaf: MACs rewritten, TTL
// decremented.
func (n *Node) routeOut(now time.Duration, prog, in string, b []byte, rule string, out datapath.Output) {
	i := n.uplink(b)
	if i < 0 {
		n.trace(out, now, prog, datapath.KindBPF, in, "", datapath.ActDrop, datapath.ReasonPortDown, "fib:no-uplink")
		return
	}
	c := &n.nics[i]
	buf := b // rewritten in place (datapath.Node's contract)
	copy(buf[0:6], c.gw[:])
	copy(buf[6:12], c.mac[:])
	decTTL(buf)
	n.trace(out, now, prog, datapath.KindBPF, in, c.Name, datapath.ActRedirect, "", rule)
	n.trace(out, now, c.Name, datapath.KindNIC, prog, c.Name, datapath.ActForward, "", "")
	out.Forward(i, buf)
}

// VXLAN header sizes.
const (
	outerLen = 14 + 20 + 8 + 8
)

// encap sends a pod's packet through cilium_vxlan to the node at remote,
// the source identity in the VNI as Cilium does.
func (n *Node) encap(now time.Duration, prog, in string, id Identity, remote [4]byte, rule string, b []byte, out datapath.Output) {
	i := n.uplink(b)
	if i < 0 {
		n.trace(out, now, prog, datapath.KindBPF, in, "", datapath.ActDrop, datapath.ReasonPortDown, "fib:no-uplink")
		return
	}
	c := &n.nics[i]
	buf := slices.Grow(n.buf[:0], outerLen+len(b))[:outerLen]
	buf = append(buf, b...)
	inner := buf[outerLen:]
	copy(inner[6:12], n.vxMAC[:])
	decTTL(inner)
	writeOuter(buf, c.mac, c.gw, n.hostIP, remote, uint32(id), uint16(49152+l3.FlowHash(n.seed, b)%16384))
	n.buf = buf
	n.trace(out, now, prog, datapath.KindBPF, in, DevCiliumVXLAN, datapath.ActRedirect, "", rule)
	n.trace(out, now, DevCiliumVXLAN, datapath.KindTunnel, prog, c.Name, datapath.ActEncap, "", "vxlan")
	n.trace(out, now, c.Name, datapath.KindNIC, DevCiliumVXLAN, c.Name, datapath.ActForward, "", "")
	out.Send(i, buf)
}

// tunnelFor returns the tunnel map entry covering a pod address of
// another node, in tunnel mode.
func (n *Node) tunnelFor(d netip.Addr) (TunnelKey, TunnelValue, bool) {
	if !d.Is4() {
		return TunnelKey{}, TunnelValue{}, false
	}
	return n.tunnelFor4(d.As4())
}

// tunnelFor4 is tunnelFor on a raw IPv4 address.
func (n *Node) tunnelFor4(a [4]byte) (TunnelKey, TunnelValue, bool) {
	if n.cfg.Mode != Tunnel || !n.cluster4.contains(a) || n.node4.contains(a) {
		return TunnelKey{}, TunnelValue{}, false
	}
	var tk TunnelKey
	binary.BigEndian.PutUint32(tk.IP[:], binary.BigEndian.Uint32(a[:])&n.node4.mask)
	tv, ok := n.maps.Tunnel.Lookup(tk)
	return tk, tv, ok
}

// prefix4 is an IPv4 prefix as words, to match raw addresses with two
// operations (netip.Prefix.Contains does the same on 128-bit values).
type prefix4 struct {
	net, mask uint32
	ok        bool // an IPv4 prefix; otherwise nothing matches
}

func newPrefix4(p netip.Prefix) prefix4 {
	if !p.IsValid() || !p.Addr().Is4() {
		return prefix4{}
	}
	a := p.Addr().As4()
	// A shift by 32 gives 0 in Go: /0 matches every IPv4 address.
	return prefix4{net: binary.BigEndian.Uint32(a[:]), mask: ^uint32(0) << (32 - p.Bits()), ok: true}
}

func (p prefix4) contains(a [4]byte) bool {
	return p.ok && (binary.BigEndian.Uint32(a[:])^p.net)&p.mask == 0
}

// writeOuter fills the first outerLen bytes of b with Ethernet, IPv4, UDP
// (checksum 0, as Linux VXLAN sends by default) and VXLAN headers for the
// inner frame that follows.
func writeOuter(b []byte, src, dst [6]byte, sip, dip [4]byte, vni uint32, sport uint16) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv4)
	ip := b[14:34]
	total := len(b) - 14
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	binary.BigEndian.PutUint16(ip[4:6], 0)
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8], ip[9] = 64, 17
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], sip[:])
	copy(ip[16:20], dip[:])
	binary.BigEndian.PutUint16(ip[10:12], inetsum.IPv4Header(ip))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], frame.VXLANPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(total-20))
	udp[6], udp[7] = 0, 0
	vx := b[42:50]
	vx[0], vx[1], vx[2], vx[3] = 0x08, 0, 0, 0
	vx[4], vx[5], vx[6], vx[7] = byte(vni>>16), byte(vni>>8), byte(vni), 0
}

// fromNetdev is bpf_host on a NIC, with cilium_vxlan and bpf_overlay for
// VXLAN addressed to the node.
func (n *Node) fromNetdev(now time.Duration, i int, b []byte, out datapath.Output) {
	c := &n.nics[i]
	if len(b) >= 42 && binary.BigEndian.Uint16(b[12:14]) == etherTypeARP {
		tpa := [4]byte(b[38:42])
		if binary.BigEndian.Uint16(b[20:22]) != 1 || tpa != n.hostIP {
			n.trace(out, now, c.Name, datapath.KindNIC, c.Name, "", datapath.ActDrop, datapath.ReasonNotForMe, "arp:other")
			return
		}
		n.trace(out, now, c.Name, datapath.KindNIC, c.Name, "", datapath.ActDeliver, "", "arp:request")
		n.trace(out, now, c.Name, datapath.KindNIC, "", c.Name, datapath.ActOriginate, "", "arp:reply")
		out.Send(i, frame.ARPReply(c.MAC, n.cfg.NodeIP, net.HardwareAddr(b[22:28]), netip.AddrFrom4([4]byte(b[28:32]))))
		return
	}
	if !ipv4(b) {
		n.trace(out, now, c.Name, datapath.KindNIC, c.Name, "", datapath.ActDrop, datapath.ReasonNotForMe, "ethertype")
		return
	}
	if [6]byte(b[0:6]) != c.mac {
		n.trace(out, now, c.Name, datapath.KindNIC, c.Name, "", datapath.ActDrop, datapath.ReasonNotForMe, "mac")
		return
	}
	dst := [4]byte(b[30:34])
	ihl := int(b[14]&0xf) * 4
	if dst == n.hostIP && b[23] == 17 && len(b) >= 14+ihl+8+8+14 &&
		binary.BigEndian.Uint16(b[14+ihl+2:14+ihl+4]) == frame.VXLANPort {
		n.trace(out, now, c.Name, datapath.KindNIC, c.Name, DevCiliumVXLAN, datapath.ActForward, "", "")
		n.fromOverlay(now, c.Name, b[14+ihl+8:], out)
		return
	}
	if dst == n.hostIP {
		n.trace(out, now, c.Name, datapath.KindNIC, c.Name, ProgHost, datapath.ActForward, "", "")
		n.trace(out, now, ProgHost, datapath.KindBPF, c.Name, "", datapath.ActDeliver, "", "host")
		if reply := echoReply(b, c.mac, [6]byte(b[6:12])); reply != nil {
			// In tunnel mode the host routes the cluster CIDR through
			// cilium_host into the tunnel: pod addresses are not routable
			// in the underlay.
			if tk, tv, ok := n.tunnelFor(netip.AddrFrom4([4]byte(b[26:30]))); ok {
				n.trace(out, now, DevCiliumHost, datapath.KindVeth, "", ProgHost, datapath.ActOriginate, "", "icmp:echo-reply")
				n.encap(now, ProgHost, DevCiliumHost, IdentityRemoteNode, tv.NodeIP, n.tunnelRule(tk), reply, out)
				return
			}
			n.trace(out, now, c.Name, datapath.KindNIC, "", c.Name, datapath.ActOriginate, "", "icmp:echo-reply")
			out.Send(i, reply)
		}
		return
	}
	n.trace(out, now, c.Name, datapath.KindNIC, c.Name, ProgHost, datapath.ActForward, "", "")
	if b[22] <= 1 {
		n.trace(out, now, ProgHost, datapath.KindBPF, c.Name, "", datapath.ActDrop, datapath.ReasonTTL, "")
		return
	}
	ep := n.endpointOf(dst)
	if ep == nil {
		n.trace(out, now, ProgHost, datapath.KindBPF, c.Name, "", datapath.ActDrop, datapath.ReasonNoRoute, "endpoint:miss")
		return
	}
	src := IdentityWorld
	if v, ok := n.maps.IPCache.Lookup([4]byte(b[26:30])); ok {
		src = Identity(v.Identity)
	}
	n.toEndpoint(now, ProgHost, c.Name, src, ep, b, out)
}

// fromOverlay handles a VXLAN packet for this node: vx is the VXLAN
// header and inner frame.
func (n *Node) fromOverlay(now time.Duration, nicName string, vx []byte, out datapath.Output) {
	if vx[0]&0x08 == 0 {
		n.trace(out, now, DevCiliumVXLAN, datapath.KindTunnel, nicName, "", datapath.ActDrop, datapath.ReasonMalformed, "vxlan:no-vni")
		return
	}
	src := Identity(uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6]))
	inner := vx[8:]
	n.trace(out, now, DevCiliumVXLAN, datapath.KindTunnel, nicName, ProgOverlay, datapath.ActDecap, "", "vxlan")
	if ipv6(inner) {
		n.fromOverlay6(now, src, inner, out)
		return
	}
	if !ipv4(inner) {
		n.trace(out, now, ProgOverlay, datapath.KindBPF, DevCiliumVXLAN, "", datapath.ActDrop, datapath.ReasonMalformed, "inner:not-ipv4")
		return
	}
	if inner[22] <= 1 {
		n.trace(out, now, ProgOverlay, datapath.KindBPF, DevCiliumVXLAN, "", datapath.ActDrop, datapath.ReasonTTL, "")
		return
	}
	ep := n.endpointOf([4]byte(inner[30:34]))
	if ep == nil {
		n.trace(out, now, ProgOverlay, datapath.KindBPF, DevCiliumVXLAN, "", datapath.ActDrop, datapath.ReasonNoRoute, "endpoint:miss")
		return
	}
	n.toEndpoint(now, ProgOverlay, DevCiliumVXLAN, src, ep, inner, out)
}
