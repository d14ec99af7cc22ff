package bgpmodel

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/netbed/netbed/datapath/bfd"
)

// Params are the model's timings, measured on the real speakers (GoBGP,
// as netbed runs them) by the command in Command.
type Params struct {
	Date    string `json:"date"`    // RFC 3339 date of the measurement
	Machine string `json:"machine"` // CPU, memory, kernel, Go
	Command string `json:"command"` // what remeasures it
	Method  string `json:"method"`  // how the figures were derived, in a paragraph

	// Update is the time a speaker takes to handle one received UPDATE
	// on its own (GoBGP sends one EVPN route per message): decode,
	// Adj-RIB-In, best path, queued for its peers.
	Update time.Duration `json:"update_ns"`
	// Service and ServiceWithdraw are how far apart a speaker finishes
	// UPDATEs that arrive together (advertisements, withdrawals): its
	// pace under a burst, which on a shared machine is set by every
	// speaker's CPU, not one message's latency. A message is handled at
	// the later of its arrival plus Update and the previous one's end
	// plus Service.
	Service         time.Duration `json:"service_ns"`
	ServiceWithdraw time.Duration `json:"service_withdraw_ns"`
	// UpdateCPU is the CPU time of handling one UPDATE, the last part of
	// its Update: it runs on the pool of Cores CPUs that Drop work uses
	// too, so that a message whose CPUs are all taken (speakers handling
	// or dropping at once) ends later. At most Update; 0: UPDATEs take
	// no CPU of the pool.
	UpdateCPU time.Duration `json:"update_cpu_ns"`
	// Originate is from a leaf's export until its speaker holds the route
	// (gRPC AddPath); Watch, from a change of a speaker's best paths until
	// the leaf's table has it (WatchEvent, then Import).
	Originate time.Duration `json:"originate_ns"`
	Watch     time.Duration `json:"watch_ns"`
	// CarrierLoss is from a link losing carrier until the speaker at its
	// end has taken the session on it down (netlink's link event, then
	// DisablePeer: fast external failover).
	CarrierLoss time.Duration `json:"carrier_loss_ns"`
	// Drop is what one path costs a speaker when a session goes down
	// (carrier, hold timer, notification): GoBGP removes every path
	// learnt on the session one after another, recomputing each one's
	// best path and sending the changes on at once, and only then
	// reports the peer down. It is CPU time: a speaker that drops with
	// more speakers dropping than there are Cores waits for a CPU
	// between its paths.
	Drop time.Duration `json:"drop_ns"`
	// Cores is how many CPUs the calibration machine has
	// (runtime.NumCPU when it measured), which the speakers' processes
	// share on netns: the model runs every speaker's Drop and UpdateCPU
	// work on a pool of this many CPUs, a path or a message at a time,
	// each on the CPU free soonest.
	// 0: as many as there are speakers (no speaker waits for another).
	// It is the calibration's machine, not the one sim runs on, because
	// Drop was derived from that machine's contention (see Method) and
	// because sim's figures must not depend on where it runs.
	Cores int `json:"cores"`
	// EstablishMin and EstablishMax bound the time from a speaker's start,
	// or its link's carrier coming back, until a session on it is
	// established: GoBGP waits a random 1–2 s before its first connection
	// attempt, then TCP, OPEN and KEEPALIVE. The model draws uniformly
	// between them from its seeded generator.
	EstablishMin time.Duration `json:"establish_min_ns"`
	EstablishMax time.Duration `json:"establish_max_ns"`
	// MRAI is the minimum route advertisement interval: UPDATEs to one
	// peer leave at least this far apart, changes meanwhile batched.
	// GoBGP v3 parses the setting but never applies it: 0 for iBGP and
	// eBGP alike.
	MRAI time.Duration `json:"mrai_ns"`

	// Measured are the raw figures the timings were derived from.
	Measured map[string]time.Duration `json:"measured_ns,omitempty"`
}

//go:embed calibration.json
var embedded []byte

var defaultParams = func() *Params {
	p, err := ParseParams(embedded)
	if err != nil {
		panic(fmt.Sprintf("sim/bgpmodel: embedded calibration.json: %v", err))
	}
	return p
}()

// Default returns the calibration checked into the repository
// (calibration.json). Callers must not modify it.
func Default() *Params { return defaultParams }

// ParseParams reads a calibration file and checks that it says when,
// where and how it was measured and that no timing is negative or
// inverted.
func ParseParams(b []byte) (*Params, error) {
	var p Params
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse BGP model calibration: %w", err)
	}
	if p.Date == "" || p.Machine == "" || p.Command == "" || p.Method == "" {
		return nil, fmt.Errorf("parse BGP model calibration: date, machine, command and method are required")
	}
	for name, d := range map[string]time.Duration{"update_ns": p.Update, "service_ns": p.Service, "service_withdraw_ns": p.ServiceWithdraw, "update_cpu_ns": p.UpdateCPU, "originate_ns": p.Originate, "watch_ns": p.Watch,
		"carrier_loss_ns": p.CarrierLoss, "drop_ns": p.Drop, "establish_min_ns": p.EstablishMin, "establish_max_ns": p.EstablishMax, "mrai_ns": p.MRAI} {
		if d < 0 {
			return nil, fmt.Errorf("parse BGP model calibration: %s: negative (%d)", name, d)
		}
	}
	if p.Cores < 0 {
		return nil, fmt.Errorf("parse BGP model calibration: cores: negative (%d)", p.Cores)
	}
	if p.UpdateCPU > p.Update {
		return nil, fmt.Errorf("parse BGP model calibration: update_cpu_ns %v is above update_ns %v (it is a part of it)", p.UpdateCPU, p.Update)
	}
	if p.EstablishMax < p.EstablishMin {
		return nil, fmt.Errorf("parse BGP model calibration: establish_max_ns %v is below establish_min_ns %v", p.EstablishMax, p.EstablishMin)
	}
	return &p, nil
}

// Marshal writes p as the calibration file does: indented JSON.
func (p *Params) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal BGP model calibration: %w", err)
	}
	return append(b, '\n'), nil
}

// Timers are a scenario's session timers, as on the real speakers
// (speaker.Timers): zero values take the same defaults.
type Timers struct {
	Hold      time.Duration // default 9 s; NoHold: none (no keepalives either)
	Keepalive time.Duration // default Hold/3
	// ConnectRetry is how long a speaker waits before dialling again
	// after a session attempt failed or the session dropped while the
	// link has carrier (default 1 s).
	ConnectRetry time.Duration
	// BFD, if set, runs BFD beside every session with these timers
	// (package bfd's defaults for zero fields: 300 ms, multiplier 3), as
	// bgp: {bfd: true} does on netns; nil: none.
	BFD *bfd.Config
}

// NoHold is Timers.Hold for sessions without a hold timer (RFC 4271's
// hold time 0): no keepalives, a silent peer is never noticed.
const NoHold time.Duration = -1

// Defaults, as datapath/speaker's.
const (
	DefaultHold         = 9 * time.Second
	DefaultConnectRetry = time.Second
)

func (t Timers) withDefaults() Timers {
	if t.Hold == 0 {
		t.Hold = DefaultHold
	}
	if t.Keepalive == 0 && t.Hold > 0 {
		t.Keepalive = t.Hold / 3
	}
	if t.ConnectRetry == 0 {
		t.ConnectRetry = DefaultConnectRetry
	}
	return t
}
