package vpc

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// Errors callers test with errors.Is.
var (
	ErrExists      = errors.New("already exists")
	ErrNotFound    = errors.New("not found")
	ErrNotAssigned = errors.New("address not assigned to an ENI of the node")
	ErrNodeFull    = errors.New("no free pod slot")
	ErrInUse       = errors.New("in use")
)

// PodGateway is the pods' default gateway, as the AWS VPC CNI sets it:
// a link-local address the node answers ARP for on every pod veth.
var PodGateway = netip.MustParseAddr("169.254.1.1")

// DefaultSlots is how many pod veths a VM has ports for (more than any
// instance type's ENI limits allow).
const DefaultSlots = 256

// ENI is an elastic network interface as the node sees it: a device
// (ens5 for device index 0, the primary ENI, ens6 for 1, ...) with its
// MAC, subnet and primary address.
type ENI struct {
	ID      string
	Index   int // device index: 0 is the instance's primary ENI
	MAC     net.HardwareAddr
	Subnet  netip.Prefix
	Primary netip.Addr
	// Groups are the ENI's security groups (empty: DefaultGroup).
	Groups []string
}

// Device is the ENI's device name on the VM (Nitro's ens5, ens6, ...).
func (e ENI) Device() string { return "ens" + strconv.Itoa(5+e.Index) }

// Table is the route table of the VPC CNI's policy rule for pods on this
// ENI: main for the primary ENI, device index + 1 for the others.
func (e ENI) Table() string {
	if e.Index == 0 {
		return "main"
	}
	return strconv.Itoa(e.Index + 1)
}

type hostENI struct {
	ENI
	mac [6]byte
}

// Pod is a pod wired on a host.
type Pod struct {
	Name   string
	Veth   string // host side, eni<hash> as the VPC CNI names it
	Port   int
	IP     netip.Addr
	MAC    net.HardwareAddr
	ENI    string // the ENI whose secondary address the pod holds
	mac    [6]byte
	veth   [6]byte
	fromRl string // rule names, precomputed for traces
	toRl   string
}

// VethName is the host-side veth of a pod as the AWS VPC CNI names it:
// "eni" and the first 11 hex digits of the SHA-1 of the pod's name.
func VethName(pod string) string {
	h := sha1.Sum([]byte(pod))
	return "eni" + hex.EncodeToString(h[:])[:11]
}

// Host is a VM of the VPC as a datapath.Node. Its ports are its topology
// interfaces (the first one is its link to the VPC router) followed by
// Slots pod veths (free ones named "").
type Host struct {
	name      string
	ports     []string
	uplink    int
	routerMAC [6]byte
	enis      map[string]*hostENI
	byMAC     map[[6]byte]*hostENI
	pods      []*Pod // by port
	byName    map[string]*Pod
	byIP      map[[4]byte]*Pod
	first     int // first pod port
	upOK      bool
}

var _ datapath.Node = (*Host)(nil)

// NewHost returns a VM with the given topology interfaces, linked to the
// VPC router (whose port has routerMAC) by ifaces[uplink], with slots
// pod ports.
func NewHost(name string, ifaces []string, uplink int, routerMAC net.HardwareAddr, slots int) (*Host, error) {
	if uplink < 0 || uplink >= len(ifaces) || len(routerMAC) != 6 {
		return nil, fmt.Errorf("host %s: uplink %d of %v, router MAC %v", name, uplink, ifaces, routerMAC)
	}
	if slots <= 0 {
		slots = DefaultSlots
	}
	h := &Host{name: name, ports: slices.Clone(ifaces), uplink: uplink, routerMAC: [6]byte(routerMAC),
		enis: map[string]*hostENI{}, byMAC: map[[6]byte]*hostENI{}, byName: map[string]*Pod{}, byIP: map[[4]byte]*Pod{},
		first: len(ifaces), upOK: true}
	h.pods = make([]*Pod, len(ifaces)+slots)
	h.ports = append(h.ports, make([]string, slots)...)
	return h, nil
}

// Name implements datapath.Node.
func (h *Host) Name() string { return h.name }

// Ports implements datapath.Node.
func (h *Host) Ports() []string { return h.ports }

// AttachENI attaches an ENI to the VM.
func (h *Host) AttachENI(e ENI) error {
	if _, ok := h.enis[e.ID]; ok {
		return fmt.Errorf("attach %s to %s: %w", e.ID, h.name, ErrExists)
	}
	if len(e.MAC) != 6 {
		return fmt.Errorf("attach %s to %s: MAC %v must be 6 bytes", e.ID, h.name, e.MAC)
	}
	for _, o := range h.enis {
		if o.Index == e.Index {
			return fmt.Errorf("attach %s to %s: device index %d is %s's: %w", e.ID, h.name, e.Index, o.ID, ErrInUse)
		}
	}
	he := &hostENI{ENI: e, mac: [6]byte(e.MAC)}
	he.MAC = slices.Clone(e.MAC)
	h.enis[e.ID] = he
	h.byMAC[he.mac] = he
	return nil
}

// DetachENI detaches an ENI; it must carry no pod.
func (h *Host) DetachENI(id string) error {
	e, ok := h.enis[id]
	if !ok {
		return fmt.Errorf("detach %s from %s: %w", id, h.name, ErrNotFound)
	}
	for _, p := range h.byName {
		if p.ENI == id {
			return fmt.Errorf("detach %s from %s: pod %s holds %v on it: %w", id, h.name, p.Name, p.IP, ErrInUse)
		}
	}
	delete(h.enis, id)
	delete(h.byMAC, e.mac)
	return nil
}

// ENIs returns the attached ENIs by device index.
func (h *Host) ENIs() []ENI {
	var out []ENI
	for _, e := range h.enis {
		out = append(out, e.ENI)
	}
	slices.SortFunc(out, func(a, b ENI) int { return a.Index - b.Index })
	return out
}

// AddPod wires a pod holding ip, a secondary address of the attached ENI
// eni: its veth (a new port), its /32 route in main and its policy rule.
func (h *Host) AddPod(name string, ip netip.Addr, mac net.HardwareAddr, eni string) (*Pod, error) {
	if _, ok := h.byName[name]; ok {
		return nil, fmt.Errorf("add pod %q on %s: %w", name, h.name, ErrExists)
	}
	e, ok := h.enis[eni]
	if !ok {
		return nil, fmt.Errorf("add pod %q on %s: ENI %s: %w", name, h.name, eni, ErrNotFound)
	}
	if !ip.Is4() || len(mac) != 6 {
		return nil, fmt.Errorf("add pod %q on %s: address %v and MAC %v must be IPv4 and 6 bytes", name, h.name, ip, mac)
	}
	if o, ok := h.byIP[ip.As4()]; ok {
		return nil, fmt.Errorf("add pod %q on %s: %v is pod %s's: %w", name, h.name, ip, o.Name, ErrInUse)
	}
	i := slices.Index(h.pods[h.first:], nil)
	if i < 0 {
		return nil, fmt.Errorf("add pod %q on %s: %w (%d slots)", name, h.name, ErrNodeFull, len(h.pods)-h.first)
	}
	port := h.first + i
	veth := VethName(name)
	p := &Pod{Name: name, Veth: veth, Port: port, IP: ip, MAC: slices.Clone(mac), ENI: eni,
		mac: [6]byte(mac), veth: [6]byte(DeviceMAC(h.name, veth)),
		fromRl: "rule:from " + ip.String() + " lookup " + e.Table(), toRl: "rule:to " + ip.String() + " lookup main"}
	h.pods[port], h.ports[port] = p, veth
	h.byName[name], h.byIP[ip.As4()] = p, p
	return p, nil
}

// RemovePod unwires a pod and frees its port.
func (h *Host) RemovePod(name string) error {
	p, ok := h.byName[name]
	if !ok {
		return fmt.Errorf("remove pod %q from %s: %w", name, h.name, ErrNotFound)
	}
	h.pods[p.Port], h.ports[p.Port] = nil, ""
	delete(h.byName, name)
	delete(h.byIP, p.IP.As4())
	return nil
}

// Pod returns the pod called name.
func (h *Host) Pod(name string) (*Pod, bool) {
	p, ok := h.byName[name]
	return p, ok
}

// Pods returns how many pods the host runs.
func (h *Host) Pods() int { return len(h.byName) }

// SetPortState implements datapath.Node.
func (h *Host) SetPortState(_ time.Duration, port int, up bool, _ datapath.Output) {
	if port == h.uplink {
		h.upOK = up
	}
}

func (h *Host) ev(now time.Duration, dev string, kind datapath.DeviceKind, in, out string, act datapath.Action, r datapath.Reason, rule string) datapath.Event {
	return datapath.Event{Time: now, Node: h.name, Device: dev, Kind: kind, InPort: in, OutPort: out, Action: act, Reason: r, Rule: rule}
}

func (h *Host) drop(now time.Duration, port int, out datapath.Output, r datapath.Reason, rule string) {
	dev := ""
	if port >= 0 && port < len(h.ports) {
		dev = h.ports[port]
	}
	out.Trace(h.ev(now, dev, datapath.KindVeth, dev, "", datapath.ActDrop, r, rule))
}

// Receive implements datapath.Node.
func (h *Host) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if len(b) < 14 {
		h.drop(now, port, out, datapath.ReasonMalformed, "")
		return
	}
	switch {
	case port == h.uplink:
		h.fromVPC(now, port, b, out)
	case port >= h.first && port < len(h.pods) && h.pods[port] != nil:
		h.fromPod(now, h.pods[port], b, out)
	default:
		h.drop(now, port, out, datapath.ReasonNotForMe, "")
	}
}

// fromPod: ARP for anything is answered with the veth's MAC (the
// gateway 169.254.1.1 above all); IPv4 goes to a local pod by main, or out
// of the pod's ENI by its policy rule.
func (h *Host) fromPod(now time.Duration, p *Pod, b []byte, out datapath.Output) {
	switch binary.BigEndian.Uint16(b[12:14]) {
	case etherTypeARP:
		tpa, sha, spa, ok := arpRequest(b)
		if !ok {
			out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonNotForMe, ""))
			return
		}
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDeliver, "", "arp:proxy"))
		out.Send(p.Port, frame.ARPReply(net.HardwareAddr(p.veth[:]), tpa, sha, spa))
		return
	case etherTypeIPv4:
	default:
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonNotForMe, ""))
		return
	}
	ihl, ok := ipv4(b)
	if !ok {
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonMalformed, ""))
		return
	}
	if [6]byte(b[0:6]) != p.veth {
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonNotForMe, ""))
		return
	}
	if !decTTL(b, ihl) {
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonTTL, ""))
		return
	}
	if q, ok := h.byIP[dst4(b)]; ok {
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, q.Veth, datapath.ActForward, "", q.toRl))
		h.toPod(now, q, b, out)
		return
	}
	e, ok := h.enis[p.ENI]
	if !ok {
		out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, "", datapath.ActDrop, datapath.ReasonNoRoute, p.fromRl))
		return
	}
	out.Trace(h.ev(now, p.Veth, datapath.KindVeth, p.Veth, e.Device(), datapath.ActForward, "", p.fromRl))
	if !h.upOK {
		out.Trace(h.ev(now, e.Device(), datapath.KindNIC, p.Veth, h.ports[h.uplink], datapath.ActDrop, datapath.ReasonPortDown, ""))
		return
	}
	setMACs(b, h.routerMAC, e.mac)
	out.Trace(h.ev(now, e.Device(), datapath.KindNIC, p.Veth, h.ports[h.uplink], datapath.ActForward, "", "route:default via "+gatewayOf(e.Subnet).String()+" dev "+e.Device()))
	out.Forward(h.uplink, b)
}

func (h *Host) toPod(now time.Duration, q *Pod, b []byte, out datapath.Output) {
	setMACs(b, q.mac, q.veth)
	out.Trace(h.ev(now, q.Veth, datapath.KindVeth, "", q.Veth, datapath.ActForward, "", "route:"+q.IP.String()+" dev "+q.Veth))
	out.Forward(q.Port, b)
}

// fromVPC: a packet for one of the VM's ENIs goes to the pod holding its
// destination.
func (h *Host) fromVPC(now time.Duration, port int, b []byte, out datapath.Output) {
	e, ok := h.byMAC[[6]byte(b[0:6])]
	if !ok || binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 {
		h.drop(now, port, out, datapath.ReasonNotForMe, "")
		return
	}
	ihl, ok := ipv4(b)
	if !ok {
		out.Trace(h.ev(now, e.Device(), datapath.KindNIC, h.ports[port], "", datapath.ActDrop, datapath.ReasonMalformed, ""))
		return
	}
	q, ok := h.byIP[dst4(b)]
	if !ok {
		out.Trace(h.ev(now, e.Device(), datapath.KindNIC, h.ports[port], "", datapath.ActDrop, datapath.ReasonNoRoute, "main"))
		return
	}
	if !decTTL(b, ihl) {
		out.Trace(h.ev(now, e.Device(), datapath.KindNIC, h.ports[port], "", datapath.ActDrop, datapath.ReasonTTL, ""))
		return
	}
	out.Trace(h.ev(now, e.Device(), datapath.KindNIC, h.ports[port], q.Veth, datapath.ActForward, "", q.toRl))
	h.toPod(now, q, b, out)
}

// gatewayOf is the VPC router's address in a subnet: its first host
// address, as AWS reserves it.
func gatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }
