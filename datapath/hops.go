package datapath

import "time"

// HopRule is the one rule netbed uses to count hops, for every generation:
//
// The path of a probe is the ordered list of devices that handled it, from
// the sending instance's vNIC to the receiving instance's vNIC, one entry per
// trace event that did not drop it. Every device counts once per crossing,
// whatever its kind: vNICs, taps, each end of a veth pair, bridges, OVS patch
// ports (each end), bonds, physical NICs, switches, routers, VTEPs and BPF
// programs. A hop is a step between two consecutive devices, so
//
//	hops = len(path) - 1
//
// Gen 1 (seed Fig. 5) between two instances in different subnets:
// inst vNIC, tap, br-int, patch-int, patch-bond, br-bond, NIC, ToR,
// aggregation, core, aggregation, ToR, NIC, br-bond, patch-bond, patch-int,
// br-int, tap, inst vNIC: 19 devices, 18 hops. Stock OpenStack (Fig. 6) adds
// the per-instance Linux bridge qbr and its veth pair qvb/qvo on each side:
// 25 devices, 24 hops.
//
// Switch hops count only fabric switches and routers (DeviceKind switch,
// router, vtep, one per node): leaf → spine → leaf is 3.
const HopRule = "hops = devices on the path - 1; switch hops = fabric nodes on the path"

// Path is the ordered devices a probe crossed.
type Path []Event

// Hops returns the hop count of the path by HopRule.
func (p Path) Hops() int {
	if len(p) == 0 {
		return 0
	}
	return len(p) - 1
}

// SwitchHops counts the distinct consecutive fabric nodes on the path
// (switches, routers, VTEPs), each node once per visit.
func (p Path) SwitchHops() int {
	n, last := 0, ""
	for _, e := range p {
		switch e.Kind {
		case KindSwitch, KindRouter, KindVTEP:
			if e.Node != last {
				n++
			}
			last = e.Node
		default:
			last = ""
		}
	}
	return n
}

// Devices returns "node/device" for every step of the path.
func (p Path) Devices() []string {
	out := make([]string, len(p))
	for i, e := range p {
		if e.Device == "" || e.Device == e.Node {
			out[i] = e.Node
		} else {
			out[i] = e.Node + "/" + e.Device
		}
	}
	return out
}

// Offsets returns when the probe reached each device of the path, since
// it reached the first.
func (p Path) Offsets() []time.Duration {
	out := make([]time.Duration, len(p))
	for i, e := range p {
		out[i] = e.Time - p[0].Time
	}
	return out
}

// Before orders paths for choices that must not depend on timing (which
// of several flood copies' drops names a lost probe's verdict): the
// shorter path first, then by device names, hop by hop.
func (p Path) Before(q Path) bool {
	if len(p) != len(q) {
		return len(p) < len(q)
	}
	for i := range p {
		if a, b := p[i].Node+"/"+p[i].Device, q[i].Node+"/"+q[i].Device; a != b {
			return a < b
		}
	}
	return false
}
