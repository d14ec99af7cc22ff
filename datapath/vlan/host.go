package vlan

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/l2"
	"github.com/netbed/netbed/datapath/stack"
)

// Host device names (seed Fig. 5 and 6). Per-instance devices are these
// prefixes followed by the instance name: tap-vm1, qbr-vm1, qvb-vm1, qvo-vm1.
const (
	DevBrInt     = "br-int"
	DevPatchInt  = "patch-int"  // br-int's end of the patch pair
	DevPatchBond = "patch-bond" // br-bond's end
	DevBrBond    = "br-bond"
	DevBond      = "bond0" // the bond port of br-bond (not a device of its own: Fig. 5 counts br-bond and the NIC)
	PrefixTap    = "tap-"
	PrefixQbr    = "qbr-"
	PrefixQvb    = "qvb-"
	PrefixQvo    = "qvo-"
)

// ReasonBondBackup is the drop reason of a frame that arrived on the backup
// NIC of an active-backup bond: the bond only listens on its active NIC.
const ReasonBondBackup = datapath.ReasonBondBackup

// ReasonSTPBlocked is the drop reason of a frame that arrived on a port the
// spanning tree blocks (in flight while the tree changed).
const ReasonSTPBlocked datapath.Reason = "stp-blocked"

// HostOptions configure a compute node.
type HostOptions struct {
	// Stock selects stock OpenStack's host model (Fig. 6): a Linux bridge
	// qbr per instance with a veth pair qvb/qvo to br-int, and the
	// security-group chain on qbr. Without it the host is Ctrip's (Fig. 5):
	// taps straight on br-int, no security groups.
	Stock bool
	// SecurityGroups are applied to every instance, in order (stock only).
	SecurityGroups []SecurityGroup
	// DefaultIngress and DefaultEgress decide packets no rule matched.
	// OpenStack's defaults are Drop and Accept (ingress needs a rule).
	DefaultIngress, DefaultEgress Verdict
	// MACAgeing is br-int's MAC ageing time (l2.DefaultAgeing when 0).
	MACAgeing time.Duration
	// TapSlots, when not 0, fixes the port list at the uplinks plus this
	// many tap ports, named when an instance attaches ("" while free), so
	// that a runtime reading a node's ports once can wire later instances;
	// AttachInstance then fails (-1) on a full host. 0: the list grows.
	TapSlots int
}

// patchID is the port number of br-int's patch port in its MAC table; the
// host's own port numbers are never negative.
const patchID = -1

type tapPort struct {
	inst            string
	used            bool
	local, provider uint16
	tap, qbr        string
	qvb, qvo        string
	chain           *chain
	groups          []SecurityGroup // what chain was built from (stock)
}

type localNet struct {
	provider, local uint16
	taps            []int // host port numbers
	ruleOut, ruleIn string
}

// Host is one compute node: OVS br-int with a tap (or a qbr/qvb/qvo chain)
// per instance and a local VLAN per network, patched to br-bond whose bond
// runs active-backup over the host's first two NICs, one to each ToR. The
// NICs are trunks carrying the networks' (provider) VLANs. Host is a
// datapath.Node; its ports are the uplinks in the order given to NewHost,
// then one tap port per attached instance.
type Host struct {
	name    string
	opts    HostOptions
	ports   []string
	nUp     int
	slaves  []int // port numbers of the bonded NICs (at most two)
	slaveUp []bool
	active  int // index into slaves, -1 when every slave is down
	taps    []tapPort
	byInst  map[string]int
	nets    []*localNet // sorted by provider VLAN (netOf)
	byLocal []*localNet // indexed by local VLAN, allocated from 1 up
	fdb     *l2.Table
	parser  *frame.Parser // made on first use: only security groups decode
	buf     []byte
	flood   []int

	bondRules []string
}

var _ datapath.Node = (*Host)(nil)

// NewHost returns a host whose topology interfaces are uplinks; the first
// two form the bond (the first is active until it fails).
func NewHost(name string, uplinks []string, opts HostOptions) *Host {
	if opts.MACAgeing == 0 {
		opts.MACAgeing = l2.DefaultAgeing
	}
	h := &Host{
		name: name, opts: opts, nUp: len(uplinks),
		ports:  append([]string(nil), uplinks...),
		byInst: map[string]int{},
		fdb:    l2.New(opts.MACAgeing, 0),
		buf:    make([]byte, 0, 2048),
		active: -1,
	}
	if opts.TapSlots > 0 {
		h.ports = make([]string, len(uplinks)+opts.TapSlots)
		copy(h.ports, uplinks)
	}
	for i := 0; i < len(uplinks) && i < 2; i++ {
		h.slaves = append(h.slaves, i)
		h.slaveUp = append(h.slaveUp, true)
		h.bondRules = append(h.bondRules, "bond:active-backup:"+uplinks[i])
	}
	if len(h.slaves) > 0 {
		h.active = 0
	}
	return h
}

// Name returns the host name.
func (h *Host) Name() string { return h.name }

// Ports returns the uplinks, then the tap ports ("" for a detached slot).
func (h *Host) Ports() []string { return h.ports }

// Stock reports whether the host runs stock OpenStack's model.
func (h *Host) Stock() bool { return h.opts.Stock }

// ActiveUplink returns the bond's active NIC, or "" when both are down.
func (h *Host) ActiveUplink() string {
	if h.active < 0 {
		return ""
	}
	return h.ports[h.slaves[h.active]]
}

// LocalVLAN returns br-int's local VLAN for a provider VLAN (0: none).
func (h *Host) LocalVLAN(provider uint16) uint16 {
	if n := h.netOf(provider); n != nil {
		return n.local
	}
	return 0
}

// Port returns the tap port of inst.
func (h *Host) Port(inst string) (int, bool) {
	p, ok := h.byInst[inst]
	return p, ok
}

// MACCount returns the number of live entries in br-int's MAC table.
func (h *Host) MACCount(now time.Duration) int { return h.fdb.Count(now) }

// SGCounters returns the hit counters of inst's security-group chain by rule
// name (nil when the host is not stock or inst is unknown).
func (h *Host) SGCounters(inst string) map[string]uint64 {
	p, ok := h.byInst[inst]
	if !ok || h.taps[p-h.nUp].chain == nil {
		return nil
	}
	return h.taps[p-h.nUp].chain.snapshot()
}

// SetSecurityGroups replaces inst's security groups (stock only); tracked
// connections and counters start afresh.
func (h *Host) SetSecurityGroups(inst string, groups []SecurityGroup) error {
	p, ok := h.byInst[inst]
	if !ok {
		return fmt.Errorf("set security groups of %q on %s: %w", inst, h.name, ErrNotFound)
	}
	if !h.opts.Stock {
		return fmt.Errorf("set security groups of %q on %s: %w", inst, h.name, ErrNoSecurityGroups)
	}
	h.taps[p-h.nUp].chain = newChain(groups, h.opts.DefaultIngress, h.opts.DefaultEgress)
	h.taps[p-h.nUp].groups = groups
	return nil
}

// SecurityGroups returns the security groups applied to inst, in order,
// and the defaults for packets no rule matches; ok is false when inst is
// not on the host or the host is not stock (it has no security groups).
// A kernel realisation renders them as iptables rules.
func (h *Host) SecurityGroups(inst string) (groups []SecurityGroup, defIngress, defEgress Verdict, ok bool) {
	p, found := h.byInst[inst]
	if !found || !h.opts.Stock {
		return nil, 0, 0, false
	}
	return h.taps[p-h.nUp].groups, h.opts.DefaultIngress, h.opts.DefaultEgress, true
}

// AttachInstance adds a tap port for inst on provider VLAN vlan (1-4094)
// and returns its port number; br-int gives the network a local VLAN if it
// has none yet. Attaching an attached instance returns its port; a VLAN out
// of range, or a full host (HostOptions.TapSlots), returns -1.
func (h *Host) AttachInstance(inst string, vlan uint16) (port int) {
	if vlan == 0 || vlan > 4094 {
		return -1
	}
	if p, ok := h.byInst[inst]; ok {
		return p
	}
	slot := -1
	for i := range h.taps {
		if !h.taps[i].used {
			slot = i
			break
		}
	}
	if slot < 0 && h.opts.TapSlots > 0 && len(h.taps) >= h.opts.TapSlots {
		return -1
	}
	n := h.netOf(vlan)
	if n == nil {
		var local uint16 = 1
		for h.localNet(local) != nil {
			local++
		}
		n = &localNet{provider: vlan, local: local,
			ruleOut: fmt.Sprintf("vlan:%d->%d", local, vlan),
			ruleIn:  fmt.Sprintf("vlan:%d->%d", vlan, local)}
		i, _ := slices.BinarySearchFunc(h.nets, vlan, compareProvider)
		h.nets = slices.Insert(h.nets, i, n)
		if int(local) >= len(h.byLocal) {
			h.byLocal = append(h.byLocal, make([]*localNet, int(local)+1-len(h.byLocal))...)
		}
		h.byLocal[local] = n
	}
	tp := tapPort{inst: inst, used: true, local: n.local, provider: vlan,
		tap: PrefixTap + inst, qbr: PrefixQbr + inst, qvb: PrefixQvb + inst, qvo: PrefixQvo + inst}
	if h.opts.Stock {
		tp.chain = newChain(h.opts.SecurityGroups, h.opts.DefaultIngress, h.opts.DefaultEgress)
		tp.groups = h.opts.SecurityGroups
	}
	if slot < 0 {
		h.taps = append(h.taps, tp)
		slot = len(h.taps) - 1
		if h.opts.TapSlots > 0 {
			h.ports[h.nUp+slot] = tp.tap
		} else {
			h.ports = append(h.ports, tp.tap)
		}
	} else {
		h.taps[slot] = tp
		h.ports[h.nUp+slot] = tp.tap
	}
	port = h.nUp + slot
	h.byInst[inst] = port
	n.taps = append(n.taps, port)
	return port
}

// DetachInstance removes inst's tap port and its MAC entries; the network's
// local VLAN is released with its last instance. Unknown names are ignored.
func (h *Host) DetachInstance(inst string) {
	port, ok := h.byInst[inst]
	if !ok {
		return
	}
	delete(h.byInst, inst)
	tp := &h.taps[port-h.nUp]
	n := h.netOf(tp.provider)
	for i, p := range n.taps {
		if p == port {
			n.taps = append(n.taps[:i], n.taps[i+1:]...)
			break
		}
	}
	if len(n.taps) == 0 {
		h.fdb.FlushVLAN(n.local)
		i, _ := slices.BinarySearchFunc(h.nets, n.provider, compareProvider)
		h.nets = slices.Delete(h.nets, i, i+1)
		h.byLocal[n.local] = nil
	}
	h.fdb.FlushPort(port)
	*tp = tapPort{}
	h.ports[port] = ""
}

// parse decodes b for the security-group chains.
func (h *Host) parse(b []byte) (*frame.Parsed, error) {
	if h.parser == nil {
		h.parser = frame.NewParser()
	}
	return h.parser.Parse(b)
}

func compareProvider(n *localNet, vlan uint16) int { return int(n.provider) - int(vlan) }

// netOf returns the network on provider VLAN vlan, or nil. A host carries
// few networks: a binary search over a short slice beats a map.
func (h *Host) netOf(vlan uint16) *localNet {
	if i, ok := slices.BinarySearchFunc(h.nets, vlan, compareProvider); ok {
		return h.nets[i]
	}
	return nil
}

// localNet returns the network on br-int's local VLAN v, or nil.
func (h *Host) localNet(v uint16) *localNet {
	if int(v) < len(h.byLocal) {
		return h.byLocal[v]
	}
	return nil
}

func (h *Host) ev(now time.Duration, dev string, kind datapath.DeviceKind, in, outp string, act datapath.Action) datapath.Event {
	return datapath.Event{Time: now, Node: h.name, Device: dev, Kind: kind, InPort: in, OutPort: outp, Action: act}
}

func (h *Host) drop(now time.Duration, out datapath.Output, dev string, kind datapath.DeviceKind, in string, r datapath.Reason, rule string) {
	e := h.ev(now, dev, kind, in, "", datapath.ActDrop)
	e.Reason, e.Rule = r, rule
	out.Trace(e)
}

// sgDrop traces a packet the security-group chain on qbr dropped after
// walking walked rules.
func (h *Host) sgDrop(now time.Duration, out datapath.Output, qbr, in, rule string, walked int) {
	e := h.ev(now, qbr, datapath.KindLinuxBridge, in, "", datapath.ActDrop)
	e.Reason, e.Rule, e.Walked = datapath.ReasonPolicy, rule, walked
	out.Trace(e)
}

// Receive handles a frame from an instance (tap port) or from the fabric
// (uplink).
func (h *Host) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	switch {
	case port < 0 || port >= len(h.ports):
		h.drop(now, out, h.name, datapath.KindNIC, "", datapath.ReasonMalformed, "port:unknown")
	case len(b) < 14:
		h.drop(now, out, h.ports[port], datapath.KindNIC, "", datapath.ReasonMalformed, "frame:short")
	case port < h.nUp:
		h.fromFabric(now, port, b, out)
	case port-h.nUp >= len(h.taps):
		h.drop(now, out, h.name, datapath.KindTap, "", datapath.ReasonPortDown, "tap:free-slot")
	default:
		h.fromTap(now, port, b, out)
	}
}

func (h *Host) fromTap(now time.Duration, port int, b []byte, out datapath.Output) {
	tp := &h.taps[port-h.nUp]
	if !tp.used {
		h.drop(now, out, h.name, datapath.KindTap, "", datapath.ReasonPortDown, "tap:detached")
		return
	}
	var parsed *frame.Parsed
	if tp.chain != nil {
		p, err := h.parse(b)
		if err != nil {
			h.drop(now, out, tp.tap, datapath.KindTap, "", datapath.ReasonMalformed, "parse")
			return
		}
		parsed = p
		out.Trace(h.ev(now, tp.tap, datapath.KindTap, "", tp.qbr, datapath.ActForward))
		v, rule, walked := tp.chain.evaluate(now, Egress, parsed)
		if v == Drop {
			h.sgDrop(now, out, tp.qbr, tp.tap, rule, walked)
			return
		}
		e := h.ev(now, tp.qbr, datapath.KindLinuxBridge, tp.tap, tp.qvb, datapath.ActForward)
		e.Rule, e.Walked = rule, walked
		out.Trace(e)
		out.Trace(h.ev(now, tp.qvb, datapath.KindVeth, tp.qbr, tp.qvo, datapath.ActForward))
		out.Trace(h.ev(now, tp.qvo, datapath.KindVeth, tp.qvb, DevBrInt, datapath.ActForward))
	} else {
		out.Trace(h.ev(now, tp.tap, datapath.KindTap, "", DevBrInt, datapath.ActForward))
	}
	inName := tp.tap
	if tp.chain != nil {
		inName = tp.qvo
	}
	if binary.BigEndian.Uint16(b[12:14]) == 0x8100 {
		// An access port takes untagged frames only.
		h.drop(now, out, DevBrInt, datapath.KindBridge, inName, datapath.ReasonVLANMismatch, "access:tagged")
		return
	}
	local := tp.local
	src := frame.SrcMAC(b)
	if src[0]&1 == 0 {
		h.fdb.Learn(now, local, src, port)
	}
	if !frame.IsBroadcastOrMulticast(b) {
		if q, ok := h.fdb.Lookup(now, local, frame.DstMAC(b)); ok {
			switch {
			case q == port:
				h.drop(now, out, DevBrInt, datapath.KindBridge, inName, datapath.ReasonNotForMe, "fdb:same-port")
			case q == patchID:
				out.Trace(h.ev(now, DevBrInt, datapath.KindBridge, inName, DevPatchInt, datapath.ActForward))
				h.toFabric(now, h.localNet(local), b, out)
			default:
				e := h.ev(now, DevBrInt, datapath.KindBridge, inName, h.ports[q], datapath.ActForward)
				out.Trace(e)
				h.toTap(now, q, b, parsed, out)
			}
			return
		}
	}
	n := h.localNet(local)
	out.Trace(h.ev(now, DevBrInt, datapath.KindBridge, inName, "", datapath.ActFlood))
	branch := floodPoint(out)
	for _, q := range n.taps {
		if q != port {
			branch.restore()
			h.toTap(now, q, b, parsed, out)
		}
	}
	branch.restore()
	h.toFabric(now, n, b, out)
}

// floodMark is the runtime's frame lineage at the flood event just traced
// (floodPoint); restore puts it back, so that every branch of a flood
// starts from br-int even when the previous branch ended in a drop
// (stock: a security group) without sending anything. A value, not a
// closure: a flood allocates nothing.
type floodMark struct {
	r stack.Resumer // nil: the runtime keeps no lineage
	c stack.Context
}

func floodPoint(out datapath.Output) floodMark {
	r, ok := out.(stack.Resumer)
	if !ok {
		return floodMark{}
	}
	return floodMark{r: r, c: r.Context()}
}

func (m floodMark) restore() {
	if m.r != nil {
		m.r.Resume(m.c)
	}
}

// toTap takes an untagged frame from br-int to the instance on port q.
// parsed is b decoded, or nil if not yet.
func (h *Host) toTap(now time.Duration, q int, b []byte, parsed *frame.Parsed, out datapath.Output) {
	tp := &h.taps[q-h.nUp]
	if tp.chain != nil {
		if parsed == nil {
			p, err := h.parse(b)
			if err != nil {
				h.drop(now, out, tp.qvo, datapath.KindVeth, DevBrInt, datapath.ReasonMalformed, "parse")
				return
			}
			parsed = p
		}
		out.Trace(h.ev(now, tp.qvo, datapath.KindVeth, DevBrInt, tp.qvb, datapath.ActForward))
		out.Trace(h.ev(now, tp.qvb, datapath.KindVeth, tp.qvo, tp.qbr, datapath.ActForward))
		v, rule, walked := tp.chain.evaluate(now, Ingress, parsed)
		if v == Drop {
			h.sgDrop(now, out, tp.qbr, tp.qvb, rule, walked)
			return
		}
		e := h.ev(now, tp.qbr, datapath.KindLinuxBridge, tp.qvb, tp.tap, datapath.ActForward)
		e.Rule, e.Walked = rule, walked
		out.Trace(e)
		out.Trace(h.ev(now, tp.tap, datapath.KindTap, tp.qbr, "", datapath.ActForward))
	} else {
		out.Trace(h.ev(now, tp.tap, datapath.KindTap, DevBrInt, "", datapath.ActForward))
	}
	out.Send(q, b)
}

// toFabric takes an untagged frame from br-int through the patch pair and
// br-bond to the bond's active NIC, tagged with the provider VLAN.
func (h *Host) toFabric(now time.Duration, n *localNet, b []byte, out datapath.Output) {
	out.Trace(h.ev(now, DevPatchInt, datapath.KindPatch, DevBrInt, DevPatchBond, datapath.ActForward))
	out.Trace(h.ev(now, DevPatchBond, datapath.KindPatch, DevPatchInt, DevBrBond, datapath.ActForward))
	if h.active < 0 {
		h.drop(now, out, DevBrBond, datapath.KindBridge, DevPatchBond, datapath.ReasonPortDown, "bond:no-active-slave")
		return
	}
	e := h.ev(now, DevBrBond, datapath.KindBridge, DevPatchBond, DevBond, datapath.ActForward)
	e.Rule = n.ruleOut
	out.Trace(e)
	up := h.slaves[h.active]
	e = h.ev(now, h.ports[up], datapath.KindNIC, DevBond, "", datapath.ActForward)
	e.Rule = h.bondRules[h.active]
	out.Trace(e)
	h.buf = frame.PushVLAN(h.buf, b, n.provider)
	out.Send(up, h.buf)
}

func (h *Host) fromFabric(now time.Duration, port int, b []byte, out datapath.Output) {
	nic := h.ports[port]
	if h.active < 0 || h.slaves[h.active] != port {
		if port < len(h.slaves) {
			h.drop(now, out, nic, datapath.KindNIC, "", ReasonBondBackup, "bond:backup")
		} else {
			h.drop(now, out, nic, datapath.KindNIC, "", datapath.ReasonNotForMe, "nic:not-bonded")
		}
		return
	}
	e := h.ev(now, nic, datapath.KindNIC, "", DevBond, datapath.ActForward)
	e.Rule = h.bondRules[h.active]
	out.Trace(e)
	vid := frame.VLANOf(b)
	n := h.netOf(vid)
	if vid == 0 || n == nil {
		h.drop(now, out, DevBrBond, datapath.KindBridge, DevBond, datapath.ReasonVLANMismatch, "vlan:no-local-network")
		return
	}
	e = h.ev(now, DevBrBond, datapath.KindBridge, DevBond, DevPatchBond, datapath.ActForward)
	e.Rule = n.ruleIn
	out.Trace(e)
	out.Trace(h.ev(now, DevPatchBond, datapath.KindPatch, DevBrBond, DevPatchInt, datapath.ActForward))
	out.Trace(h.ev(now, DevPatchInt, datapath.KindPatch, DevPatchBond, DevBrInt, datapath.ActForward))
	u, _ := frame.StripVLAN(b)
	src := frame.SrcMAC(u)
	if src[0]&1 == 0 {
		h.fdb.Learn(now, n.local, src, patchID)
	}
	if !frame.IsBroadcastOrMulticast(u) {
		if q, ok := h.fdb.Lookup(now, n.local, frame.DstMAC(u)); ok {
			if q == patchID {
				h.drop(now, out, DevBrInt, datapath.KindBridge, DevPatchInt, datapath.ReasonNotForMe, "fdb:same-port")
				return
			}
			out.Trace(h.ev(now, DevBrInt, datapath.KindBridge, DevPatchInt, h.ports[q], datapath.ActForward))
			h.toTap(now, q, u, nil, out)
			return
		}
	}
	if len(n.taps) == 0 {
		h.drop(now, out, DevBrInt, datapath.KindBridge, DevPatchInt, datapath.ReasonNotForMe, "flood:no-ports")
		return
	}
	out.Trace(h.ev(now, DevBrInt, datapath.KindBridge, DevPatchInt, "", datapath.ActFlood))
	var parsed *frame.Parsed
	branch := floodPoint(out)
	for _, q := range n.taps {
		branch.restore()
		if parsed == nil && h.taps[q-h.nUp].chain != nil {
			p, err := h.parse(u)
			if err != nil {
				h.drop(now, out, DevBrInt, datapath.KindBridge, DevPatchInt, datapath.ReasonMalformed, "parse")
				return
			}
			parsed = p
		}
		h.toTap(now, q, u, parsed, out)
	}
}

// SetPortState reacts to an uplink going down or up: the bond fails over to
// the other NIC (no preemption when the first comes back) and announces
// every instance MAC br-int has learned on a tap with a RARP learning frame
// on the new active NIC, as OVS does, so that the fabric relearns them.
func (h *Host) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {
	slave := -1
	for i, p := range h.slaves {
		if p == port {
			slave = i
		}
	}
	if slave < 0 {
		return
	}
	h.slaveUp[slave] = up
	switch {
	case !up && h.active == slave:
		h.active = -1
		for i := range h.slaves {
			if h.slaveUp[i] {
				h.active = i
				break
			}
		}
	case up && h.active < 0:
		h.active = slave
	default:
		return
	}
	if h.active >= 0 {
		h.announce(now, out)
	}
}

// announce sends a RARP learning frame for every instance MAC on a tap.
func (h *Host) announce(now time.Duration, out datapath.Output) {
	upPort := h.slaves[h.active]
	for _, e := range h.fdb.Entries(now) {
		if e.Port < h.nUp {
			continue
		}
		n := h.localNet(e.VLAN)
		if n == nil {
			continue
		}
		ev := h.ev(now, DevBrBond, datapath.KindBridge, "", DevBond, datapath.ActOriginate)
		ev.Rule = "bond:learning-packet"
		out.Trace(ev)
		ev = h.ev(now, h.ports[upPort], datapath.KindNIC, DevBond, "", datapath.ActForward)
		ev.Rule = h.bondRules[h.active]
		out.Trace(ev)
		out.Send(upPort, frame.PushVLAN(nil, frame.RARPAnnounce(e.MAC[:]), n.provider))
	}
}
