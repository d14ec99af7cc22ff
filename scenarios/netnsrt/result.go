package netnsrt

import (
	"sort"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/reports"
)

// rec is one trace event of a probe with its lineage: prev is the index of
// the device before it on the frame's path (-1: none), as in sim.
type rec struct {
	ev   datapath.Event
	prev int32
	arp  bool
}

// outcome is what happened to one probe, derived from its trace exactly
// as sim.Engine.Result derives it, so that both runtimes report the same
// paths for the same events.
type outcome struct {
	to                   string
	forward              datapath.Path
	ret                  datapath.Path
	oneWay, rtt          time.Duration
	delivered, replied   bool
	dropNode, dropDevice string
	reason               datapath.Reason
	rule                 string
}

// sortByTime orders a probe's records by time (ties keep their order)
// and remaps prev.
func sortByTime(rs []rec) []rec {
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rs[order[a]].ev.Time < rs[order[b]].ev.Time })
	pos := make([]int32, len(rs))
	for newi, old := range order {
		pos[old] = int32(newi)
	}
	out := make([]rec, len(rs))
	for newi, old := range order {
		r := rs[old]
		if r.prev >= 0 {
			r.prev = pos[r.prev]
		}
		out[newi] = r
	}
	return out
}

// chain returns the indices on the path to i, from its start. It stops at
// a cycle (which clock skew between records cannot make, but a bad join
// could).
func chain(rs []rec, i int32) []int32 {
	var idx []int32
	for j, n := i, 0; j >= 0 && n <= len(rs); j, n = rs[j].prev, n+1 {
		idx = append(idx, j)
	}
	for a, b := 0, len(idx)-1; a < b; a, b = a+1, b-1 {
		idx[a], idx[b] = idx[b], idx[a]
	}
	return idx
}

// pathTo returns the devices on the path of the frame that reached i,
// ending with i itself unless it is a drop.
func pathTo(rs []rec, i int32) datapath.Path {
	var p datapath.Path
	for _, j := range chain(rs, i) {
		if j == i && rs[j].ev.Action == datapath.ActDrop {
			continue
		}
		p = append(p, rs[j].ev)
	}
	return p
}

// dropPath is the path to drop record i, the drop included.
func dropPath(rs []rec, i int32) datapath.Path {
	return append(pathTo(rs, i), rs[i].ev)
}

// derive computes the outcome of a probe sent by from (see sim.Result).
// pendingAtSource says that the source never sent the probe packet (it
// waits for ARP).
func derive(rs []rec, from string, pendingAtSource bool) outcome {
	var o outcome
	fwd := int32(-1)
	for i := range rs {
		ev := &rs[i].ev
		if ev.Action == datapath.ActDeliver && !rs[i].arp && ev.Node != from {
			fwd = int32(i)
			break
		}
	}
	if fwd < 0 {
		o.dropFrom(rs, -1, from, pendingAtSource)
		return o
	}
	o.delivered = true
	o.to = rs[fwd].ev.Node
	o.forward = pathTo(rs, fwd)
	o.oneWay = o.forward[len(o.forward)-1].Time - o.forward[0].Time
	for i := int(fwd) + 1; i < len(rs); i++ {
		ev := &rs[i].ev
		if ev.Action != datapath.ActDeliver || rs[i].arp || ev.Node != from {
			continue
		}
		ch := chain(rs, int32(i))
		for k, j := range ch {
			if j == fwd {
				o.replied = true
				for _, j := range ch[k+1:] {
					o.ret = append(o.ret, rs[j].ev)
				}
				o.rtt = ev.Time - o.forward[0].Time
				break
			}
		}
		if o.replied {
			return o
		}
	}
	o.dropFrom(rs, fwd, from, false)
	return o
}

// dropFrom picks the drop as sim.Result.dropFrom does.
func (o *outcome) dropFrom(rs []rec, after int32, from string, pendingAtSource bool) {
	pick, rank := int32(-1), 4
	for i := int(after) + 1; i < len(rs); i++ {
		r := &rs[i]
		if r.ev.Action != datapath.ActDrop {
			continue
		}
		k := 0
		switch {
		case r.arp:
			k = 3
		case r.ev.Reason.Incidental():
			k = 2
		}
		if k < rank || k == rank && dropPath(rs, int32(i)).Before(dropPath(rs, pick)) {
			pick, rank = int32(i), k
		}
	}
	if rank >= 2 && pendingAtSource {
		o.dropNode, o.dropDevice, o.reason, o.rule = from, stack.Port, datapath.ReasonNoARP, "arp:unresolved"
		return
	}
	if pick < 0 {
		return
	}
	ev := &rs[pick].ev
	o.dropNode, o.dropDevice, o.reason, o.rule = ev.Node, ev.Device, ev.Reason, ev.Rule
	if after < 0 && !rs[pick].arp {
		o.forward = pathTo(rs, pick)
	}
}

// report turns an outcome into the runner's probe record, as simrt does.
func (o outcome) report(from, to, proto string) reports.Probe {
	p := reports.Probe{From: from, To: to, Proto: proto,
		Delivered: o.delivered && o.to == to, Replied: o.replied && o.to == to,
		Hops: o.forward.Hops(), SwitchHops: o.forward.SwitchHops(), Path: o.forward.Devices(), HopAt: o.forward.Offsets(),
		OneWay: o.oneWay, RTT: o.rtt, Reason: string(o.reason), Rule: o.rule}
	if o.dropNode != "" {
		p.DropAt = o.dropNode
		if o.dropDevice != "" && o.dropDevice != o.dropNode {
			p.DropAt += "/" + o.dropDevice
		}
	}
	if o.delivered && o.to != to {
		p.DropAt, p.Reason = o.to, "delivered-to-other-instance"
	}
	return p
}
