// Package outcome derives what happened to a probe from the records of
// the devices it crossed, the same way for every runtime: sim's trace,
// the userspace datapath's trace joined to the instances' captures on
// netns, and the captures and kernel events of the kernel backend. Each
// runtime turns what it observed into Records; Derive does the rest, so
// that equal observations give equal paths, hops and verdicts.
package outcome

import (
	"sort"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
)

// Record is one device's handling of one frame of a probe, with its
// lineage: Prev is the index of the record before it on the frame's path
// (-1: none).
type Record struct {
	Ev   datapath.Event
	Prev int32
	ARP  bool
}

// Outcome is what happened to one probe.
//
// Paths follow frame lineage, not record order: the forward path is the
// chain that ends at the destination's deliver record, with ARP
// exchanges and flood copies to other ports left out; the return path is
// the part of the reply's chain after that deliver record. Drop records
// are never on a path.
type Outcome struct {
	// To is the node that delivered the probe ("" if none).
	To                   string
	Forward, Return      datapath.Path
	OneWay, RTT          time.Duration
	Delivered            bool
	Replied              bool
	DropNode, DropDevice string
	Reason               datapath.Reason
	Rule                 string
}

// SortByTime orders records by time (ties keep their order) and remaps
// Prev.
func SortByTime(rs []Record) []Record {
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rs[order[a]].Ev.Time < rs[order[b]].Ev.Time })
	pos := make([]int32, len(rs))
	for newi, old := range order {
		pos[old] = int32(newi)
	}
	out := make([]Record, len(rs))
	for newi, old := range order {
		r := rs[old]
		if r.Prev >= 0 {
			r.Prev = pos[r.Prev]
		}
		out[newi] = r
	}
	return out
}

// chain returns the indices on the path to i, from its start, in idx's
// memory. It stops at a cycle (which a bad join could make).
func chain(idx []int32, rs []Record, i int32) []int32 {
	idx = idx[:0]
	for j, n := i, 0; j >= 0 && n <= len(rs); j, n = rs[j].Prev, n+1 {
		idx = append(idx, j)
	}
	for a, b := 0, len(idx)-1; a < b; a, b = a+1, b-1 {
		idx[a], idx[b] = idx[b], idx[a]
	}
	return idx
}

// pathTo returns the devices on the path of the frame that reached i,
// ending with i itself unless it is a drop, with room for extra more;
// idx is scratch for the chain.
func pathTo(idx []int32, rs []Record, i int32, extra int) datapath.Path {
	idx = chain(idx, rs, i)
	var p datapath.Path
	if n := len(idx) + extra; n > 1 || rs[i].Ev.Action != datapath.ActDrop {
		p = make(datapath.Path, 0, n) // nil when i, a drop, is all there is
	}
	for _, j := range idx {
		if j == i && rs[j].Ev.Action == datapath.ActDrop {
			continue
		}
		p = append(p, rs[j].Ev)
	}
	return p
}

// dropPath is the path to drop record i, the drop included.
func dropPath(idx []int32, rs []Record, i int32) datapath.Path {
	return append(pathTo(idx, rs, i, 1), rs[i].Ev)
}

// Derive computes the outcome of a probe sent by from, from its records
// in time order. pending, asked only when no real drop explains a lost
// probe, reports that the source never sent the probe packet (it still
// waits for ARP); nil means it did.
func Derive(rs []Record, from string, pending func() bool) Outcome {
	var o Outcome
	var buf [64]int32
	idx := buf[:0] // chain's scratch
	fwd := int32(-1)
	for i := range rs {
		ev := &rs[i].Ev
		if ev.Action == datapath.ActDeliver && !rs[i].ARP && ev.Node != from {
			fwd = int32(i)
			break
		}
	}
	if fwd < 0 {
		o.dropFrom(idx, rs, -1, from, pending)
		return o
	}
	o.Delivered = true
	o.To = rs[fwd].Ev.Node
	o.Forward = pathTo(idx, rs, fwd, 0)
	o.OneWay = o.Forward[len(o.Forward)-1].Time - o.Forward[0].Time
	for i := int(fwd) + 1; i < len(rs); i++ {
		ev := &rs[i].Ev
		if ev.Action != datapath.ActDeliver || rs[i].ARP || ev.Node != from {
			continue
		}
		ch := chain(idx, rs, int32(i))
		idx = ch[:0]
		for k, j := range ch {
			if j == fwd {
				o.Replied = true
				if n := len(ch) - k - 1; n > 0 {
					o.Return = make(datapath.Path, 0, n)
				}
				for _, j := range ch[k+1:] {
					o.Return = append(o.Return, rs[j].Ev)
				}
				o.RTT = ev.Time - o.Forward[0].Time
				break
			}
		}
		if o.Replied {
			return o
		}
	}
	o.dropFrom(idx, rs, fwd, from, nil)
	return o
}

// dropFrom fills the drop verdict from the drop records after index
// after: a real drop of the probe's own packets; else the packet still
// waiting for ARP at the source; else an incidental drop
// (datapath.Reason.Incidental: a flood's copy for another instance, a
// copy on a bond's backup NIC); else a dropped ARP frame. Of several
// drops of one kind, the one whose path comes first by Path.Before: on
// real namespaces their order in time varies.
func (o *Outcome) dropFrom(idx []int32, rs []Record, after int32, from string, pending func() bool) {
	pick, rank := int32(-1), 4
	for i := int(after) + 1; i < len(rs); i++ {
		r := &rs[i]
		if r.Ev.Action != datapath.ActDrop {
			continue
		}
		k := 0
		switch {
		case r.ARP:
			k = 3
		case r.Ev.Reason.Incidental():
			k = 2
		}
		if k < rank || k == rank && dropPath(idx, rs, int32(i)).Before(dropPath(idx, rs, pick)) {
			pick, rank = int32(i), k
		}
	}
	if rank >= 2 && pending != nil && pending() {
		o.DropNode, o.DropDevice, o.Reason, o.Rule = from, stack.Port, datapath.ReasonNoARP, "arp:unresolved"
		return
	}
	if pick < 0 {
		return
	}
	ev := &rs[pick].Ev
	o.DropNode, o.DropDevice, o.Reason, o.Rule = ev.Node, ev.Device, ev.Reason, ev.Rule
	if after < 0 && !rs[pick].ARP {
		o.Forward = pathTo(idx, rs, pick, 0)
	}
}
