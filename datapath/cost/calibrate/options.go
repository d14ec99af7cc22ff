package calibrate

import (
	"time"

	"github.com/netbed/netbed/datapath/cost"
)

// Options tune a calibration.
type Options struct {
	// Samples is the number of round trips behind each path's median
	// (default 30000), taken in Rounds interleaved rounds (default 100)
	// so that a change of the machine's load hits every path alike.
	Samples int
	Rounds  int
	// OVS measures Open vSwitch's userspace datapath too (needs
	// ovsdb-server, ovs-vswitchd and ovs-vsctl); without it the OVS
	// figures are taken from Previous.
	OVS bool
	// Previous supplies the figures not measured (default cost.Default()).
	Previous *cost.Table
	// Machine describes the machine in the table (CPU, memory, kernel).
	Machine string
	// Command is recorded as the command that remeasures the table.
	Command string
	// Progress receives one line per stage; nil discards them.
	Progress func(string)
}

// Documented figures: physical devices this machine cannot run.
var documented = map[cost.Class]cost.Figure{
	cost.Switch: {Cost: 1 * time.Microsecond, Method: "documented: a cut-through data-centre switch forwards port to port in about " +
		"a microsecond (Cisco, 'Cut-Through and Store-and-Forward Ethernet Switching for Low-Latency Environments', " +
		"https://www.cisco.com/c/en/us/products/collateral/switches/nexus-5020-switch/white_paper_c11-465436.html: " +
		"low-microsecond cut-through switching); a leaf's hardware VTEP encapsulates in the same ASIC pass"},
	cost.Router: {Cost: 1 * time.Microsecond, Method: "documented: a data-centre router (spine, core, routing leaf) routes in " +
		"the same switching ASIC as a cut-through switch, about a microsecond (same source as switch: " +
		"https://www.cisco.com/c/en/us/products/collateral/switches/nexus-5020-switch/white_paper_c11-465436.html)"},
	cost.Firewall: {Cost: 1 * time.Microsecond, Method: "documented, no better source: the seed's hardware firewall is costed " +
		"as a router (a hardware ACL lookup in the forwarding pass)"},
}
