package cost

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/datapath"
)

// Class is a calibrated device class: what a trace event is costed as.
type Class string

// Device classes. A trace event's class comes from its device kind (see
// Of); Classes lists them all.
const (
	// Instance is an instance's kernel stack sending or receiving a packet
	// on its vNIC.
	Instance Class = "instance"
	// Veth is one end of a veth pair (qvb, qvo, lxc, cilium_host).
	Veth Class = "veth"
	// Tap is a tap device between a VM and its vswitch.
	Tap Class = "tap"
	// NIC is a host's physical NIC, one crossing.
	NIC Class = "nic"
	// LinuxBridge is a pass through the kernel's bridge (qbr).
	LinuxBridge Class = "linux-bridge"
	// OVSBridge is a pass through an Open vSwitch bridge of the userspace
	// datapath, entered from one of its ports (br-int, br-bond): the
	// vswitch port.
	OVSBridge Class = "ovs-bridge"
	// OVSPatch is one end of an OVS patch port pair.
	OVSPatch Class = "ovs-patch"
	// Bond is the OVS bond (active-backup) a host NIC belongs to, charged
	// on top of the NIC.
	Bond Class = "bond"
	// IptablesChain is what a packet pays for entering an iptables filter
	// chain at all (nft backend), before any rule.
	IptablesChain Class = "iptables-chain"
	// IptablesRule is one rule of an iptables chain walked without a match.
	IptablesRule Class = "iptables-rule"
	// VXLANEncap and VXLANDecap are a software VTEP (the kernel's VXLAN
	// device) encapsulating or decapsulating one frame.
	VXLANEncap Class = "vxlan-encap"
	VXLANDecap Class = "vxlan-decap"
	// BPF is one tc BPF program run (a lookup and a redirect).
	BPF Class = "bpf"
	// Switch, Router and Firewall are physical fabric devices: no local
	// device to measure, so their figures are documented ones.
	Switch   Class = "switch"
	Router   Class = "router"
	Firewall Class = "firewall"
)

// Classes lists every class, in the order tables print them.
var Classes = []Class{Instance, Veth, Tap, NIC, LinuxBridge, OVSBridge, OVSPatch, Bond,
	IptablesChain, IptablesRule, VXLANEncap, VXLANDecap, BPF, Switch, Router, Firewall}

// Figure is one class's cost and where it comes from.
type Figure struct {
	// Cost is the time per crossing (per rule walked for IptablesRule).
	Cost time.Duration `json:"ns"`
	// Method says how it was measured, or, for a documented figure
	// (Measured false), the source it is taken from.
	Method   string `json:"method"`
	Measured bool   `json:"measured"`
	// Samples is the number of round trips behind a measured figure.
	Samples int `json:"samples,omitempty"`
}

// Table is a calibration: per-class costs, and when, where and how they
// were obtained.
type Table struct {
	Date    string           `json:"date"`    // RFC 3339 date of the measurement
	Machine string           `json:"machine"` // CPU, memory, kernel
	Command string           `json:"command"` // what remeasures it
	Method  string           `json:"method"`  // the measurement, in a paragraph
	Figures map[Class]Figure `json:"figures"`
	// Paths are the measured paths' median round trips the figures were
	// derived from (package calibrate names them).
	Paths map[string]time.Duration `json:"paths_rtt_ns,omitempty"`
}

// ErrIncomplete is returned by Parse for a table that lacks a class.
var ErrIncomplete = errors.New("calibration lacks a device class")

//go:embed calibration.json
var embedded []byte

var defaultTable = func() *Table {
	t, err := Parse(embedded)
	if err != nil {
		panic(fmt.Sprintf("datapath/cost: embedded calibration.json: %v", err))
	}
	return t
}()

// Default returns the calibration checked into the repository
// (calibration.json). Callers must not modify it.
func Default() *Table { return defaultTable }

// Parse reads a calibration file and checks that it costs every class,
// none negatively, and says when and where it was measured.
func Parse(b []byte) (*Table, error) {
	var t Table
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("parse calibration: %w", err)
	}
	if t.Date == "" || t.Machine == "" || t.Command == "" {
		return nil, fmt.Errorf("parse calibration: date, machine and command are required")
	}
	for c, f := range t.Figures {
		if !slices.Contains(Classes, c) {
			return nil, fmt.Errorf("parse calibration: figures: unknown device class %q", c)
		}
		if f.Cost < 0 {
			return nil, fmt.Errorf("parse calibration: figures: %s: negative cost %d ns", c, f.Cost)
		}
		if f.Method == "" {
			return nil, fmt.Errorf("parse calibration: figures: %s: no method or source", c)
		}
	}
	for _, c := range Classes {
		if _, ok := t.Figures[c]; !ok {
			return nil, fmt.Errorf("parse calibration: %w: %s", ErrIncomplete, c)
		}
	}
	return &t, nil
}

// Marshal writes t as the calibration file does: indented JSON.
func (t *Table) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal calibration: %w", err)
	}
	return append(b, '\n'), nil
}

// Source names the calibration in one line, for reports: its date and
// machine.
func (t *Table) Source() string { return t.Date + " on " + t.Machine }

// Model costs trace events with a table. Each event is costed by a
// precomputed sum per variant (see Classify), so that costing allocates
// nothing and hashes nothing.
type Model struct {
	table      *Table
	sum        [len(variants)]time.Duration
	chain, per time.Duration // iptables-chain, iptables-rule
}

// NewModel returns the model of table t (Default when nil).
func NewModel(t *Table) *Model {
	if t == nil {
		t = Default()
	}
	m := &Model{table: t, chain: t.Figures[IptablesChain].Cost, per: t.Figures[IptablesRule].Cost}
	for v, cs := range variants {
		for _, c := range cs {
			m.sum[v] += t.Figures[c].Cost
		}
	}
	return m
}

// Table returns the calibration the model costs with.
func (m *Model) Table() *Table { return m.table }

// Of returns what ev costs: the sum of its classes' figures (Classify),
// iptables-rule counted once per rule walked (ev.Walked).
func (m *Model) Of(ev *datapath.Event, at Where) time.Duration {
	d := m.sum[variant(ev, at)]
	if ev.Walked > 0 {
		d += m.chain + time.Duration(ev.Walked)*m.per
	}
	return d
}

// variants are the class lists events are costed as, indexed by variant.
var variants = [...][]Class{
	vNone: nil, vInstance: {Instance}, vNIC: {NIC}, vBondedNIC: {NIC, Bond},
	vTap: {Tap}, vVeth: {Veth}, vOVSBridge: {OVSBridge}, vLinuxBridge: {LinuxBridge},
	vPatch: {OVSPatch}, vBond: {Bond}, vEncap: {VXLANEncap}, vDecap: {VXLANDecap},
	vBPF: {BPF}, vSwitch: {Switch}, vRouter: {Router}, vFirewall: {Firewall},
}

const (
	vNone = iota
	vInstance
	vNIC
	vBondedNIC
	vTap
	vVeth
	vOVSBridge
	vLinuxBridge
	vPatch
	vBond
	vEncap
	vDecap
	vBPF
	vSwitch
	vRouter
	vFirewall
)

// Where says where a device is, beyond its trace event.
type Where struct {
	// Instance: the event comes from an instance (a VM's or pod's own
	// stack), not a host.
	Instance bool
	// Prev is the kind of the device the same node handled the frame with
	// just before, in the same pass ("" if none).
	Prev datapath.DeviceKind
}

// variant is the one place that maps an event to its classes.
func variant(ev *datapath.Event, at Where) int {
	switch ev.Kind {
	case datapath.KindNIC:
		switch {
		case at.Instance:
			return vInstance
		case strings.HasPrefix(ev.Rule, "bond:"):
			return vBondedNIC
		}
		return vNIC
	case datapath.KindInstance:
		return vInstance
	case datapath.KindTap:
		return vTap
	case datapath.KindVeth:
		return vVeth
	case datapath.KindBridge:
		if at.Prev == datapath.KindPatch {
			return vNone // the patch pair's figure includes this bridge's pass
		}
		return vOVSBridge
	case datapath.KindLinuxBridge:
		return vLinuxBridge
	case datapath.KindPatch:
		return vPatch
	case datapath.KindBond:
		return vBond
	case datapath.KindTunnel:
		if ev.Action == datapath.ActDecap {
			return vDecap
		}
		return vEncap
	case datapath.KindBPF:
		return vBPF
	case datapath.KindSwitch, datapath.KindVTEP:
		return vSwitch
	case datapath.KindRouter:
		return vRouter
	case datapath.KindFirewall:
		return vFirewall
	}
	return vNone
}

// Classify returns the classes an event is costed as, by its device kind:
//
//	nic at an instance (Where.Instance)  instance
//	nic at a host                       nic, plus bond when the NIC is a bond's (rule "bond:…")
//	tap, veth                           tap, veth
//	bridge                              ovs-bridge (the vswitch's bridges: br-int, br-bond),
//	                                    none when entered from a patch port (Where.Prev):
//	                                    the patch pair's figure includes that bridge's pass
//	linux-bridge                        linux-bridge (qbr)
//	patch, bond                         ovs-patch, bond
//	tunnel                              vxlan-encap or vxlan-decap, by action
//	bpf                                 bpf
//	switch, vtep                        switch (a leaf's VTEP is its ASIC)
//	router, firewall                    router, firewall
//	instance                            instance
//
// and, on any kind, iptables-chain plus iptables-rule once per rule when
// the device walked an iptables chain (ev.Walked > 0: stock OpenStack's
// security groups on qbr). Engine events (kind "link": a link's drops) and
// unknown kinds cost nothing and have no class.
func Classify(ev *datapath.Event, at Where) []Class {
	cs := slices.Clone(variants[variant(ev, at)])
	if ev.Walked > 0 {
		cs = append(cs, IptablesChain)
		for range ev.Walked {
			cs = append(cs, IptablesRule)
		}
	}
	return cs
}

// Kinds lists the device kinds the models emit, each of which Classify
// costs.
var Kinds = []datapath.DeviceKind{datapath.KindNIC, datapath.KindTap, datapath.KindVeth,
	datapath.KindBridge, datapath.KindLinuxBridge, datapath.KindPatch, datapath.KindBond,
	datapath.KindSwitch, datapath.KindRouter, datapath.KindVTEP, datapath.KindTunnel,
	datapath.KindBPF, datapath.KindFirewall, datapath.KindInstance}
