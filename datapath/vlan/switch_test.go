package vlan

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// newTestSwitch: ports 0,1 access VLAN 10; port 2 access VLAN 20; port 3
// trunk 10,20; port 4 trunk 20 only; port 5 trunk 10 with native 10.
func newTestSwitch() *Switch {
	s := NewSwitch("tor1", []string{"p0", "p1", "p2", "p3", "p4", "p5"}, 10*time.Second)
	s.SetAccess(0, 10)
	s.SetAccess(1, 10)
	s.SetAccess(2, 20)
	s.SetTrunk(3, 10, 20)
	s.SetTrunk(4, 20)
	s.SetTrunk(5, 10)
	s.SetNative(5, 10)
	return s
}

func TestSwitchFloodStaysInVLAN(t *testing.T) {
	bcast := frame.ARPRequest(mac1, ip1, ip2)
	cases := []struct {
		name   string
		port   int
		b      []byte
		want   []int
		tagged map[int]uint16 // expected VLAN tag per output port (0: untagged)
	}{
		{"access-10", 0, bcast, []int{1, 3, 5}, map[int]uint16{1: 0, 3: 10, 5: 0}},
		{"access-20", 2, bcast, []int{3, 4}, map[int]uint16{3: 20, 4: 20}},
		{"trunk-tagged-20", 3, frame.PushVLAN(nil, bcast, 20), []int{2, 4}, map[int]uint16{2: 0, 4: 20}},
		{"trunk-native-10", 5, bcast, []int{0, 1, 3}, map[int]uint16{0: 0, 1: 0, 3: 10}},
		{"unknown-unicast-10", 1, icmp(mac1, mac3, ip1, ip3), []int{0, 3, 5}, map[int]uint16{0: 0, 3: 10, 5: 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestSwitch()
			var r rec
			s.Receive(0, c.port, c.b, &r)
			if got := r.sentPorts(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("flooded to %v, want %v", got, c.want)
			}
			if slices.Contains(r.sentPorts(), c.port) {
				t.Errorf("flooded back out of the ingress port")
			}
			for _, x := range r.sent {
				if vid := frame.VLANOf(x.b); vid != c.tagged[x.port] {
					t.Errorf("port %d: VLAN %d, want %d", x.port, vid, c.tagged[x.port])
				}
			}
			if e := r.last(); e.Action != datapath.ActFlood || e.Kind != datapath.KindSwitch {
				t.Errorf("event %+v, want one flood", e)
			}
		})
	}
}

func TestSwitchIngressChecks(t *testing.T) {
	cases := []struct {
		name string
		port int
		b    []byte
		want datapath.Reason
	}{
		{"tagged-on-access", 0, frame.PushVLAN(nil, frame.ARPRequest(mac1, ip1, ip2), 10), datapath.ReasonVLANMismatch},
		{"vlan-not-allowed", 4, frame.PushVLAN(nil, frame.ARPRequest(mac1, ip1, ip2), 10), datapath.ReasonVLANMismatch},
		{"untagged-no-native", 3, frame.ARPRequest(mac1, ip1, ip2), datapath.ReasonVLANMismatch},
		{"short", 0, []byte{1, 2, 3}, datapath.ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestSwitch()
			var r rec
			s.Receive(0, c.port, c.b, &r)
			if e := r.last(); e.Action != datapath.ActDrop || e.Reason != c.want || len(r.sent) != 0 {
				t.Errorf("event %+v sent %d, want drop %s", e, len(r.sent), c.want)
			}
		})
	}
}

func TestSwitchLearningAgeingFlush(t *testing.T) {
	toMac1 := icmp(mac2, mac1, ip2, ip1)
	cases := []struct {
		name  string
		setup func(s *Switch, r *rec)
		at    time.Duration
		want  []int
	}{
		{"learned", func(s *Switch, r *rec) {}, time.Second, []int{0}},
		{"aged-out", func(s *Switch, r *rec) {}, 11 * time.Second, []int{0, 3, 5}},
		{"port-down-flushes", func(s *Switch, r *rec) { s.SetPortState(time.Second, 0, false, r) }, 2 * time.Second, []int{3, 5}},
		{"moved", func(s *Switch, r *rec) {
			s.Receive(time.Second, 3, frame.PushVLAN(nil, icmp(mac1, mac2, ip1, ip2), 10), r)
		}, 2 * time.Second, []int{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestSwitch()
			var r rec
			s.Receive(0, 0, icmp(mac1, mac2, ip1, ip2), &r) // learn mac1 on port 0
			c.setup(s, &r)
			r.reset()
			s.Receive(c.at, 1, toMac1, &r)
			if got := r.sentPorts(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("sent to %v, want %v", got, c.want)
			}
		})
	}
	// A frame to a MAC learned on the ingress port is filtered.
	s := newTestSwitch()
	var r rec
	s.Receive(0, 0, icmp(mac1, mac2, ip1, ip2), &r)
	s.Receive(0, 1, icmp(mac2, mac3, ip2, ip3), &r)
	r.reset()
	s.Receive(0, 0, icmp(mac3, mac1, ip3, ip1), &r) // mac1 lives on port 0 too
	if e := r.last(); e.Action != datapath.ActDrop || e.Rule != "fdb:same-port" || len(r.sent) != 0 {
		t.Errorf("same-port: %+v, sent %d", e, len(r.sent))
	}
}
