package bgpmodel

import "time"

// LastRx returns when node's end of its session to peer last received a
// BGP message and a BFD control packet.
func LastRx(m *Model, node, peer string) (bgp, bfd time.Duration) {
	for _, e := range m.byName[node].ends {
		if e.peer().sp.Node == peer {
			return e.lastRx, e.bfd.lastRx
		}
	}
	panic("no session " + node + "–" + peer)
}
