package vlan

import (
	"bytes"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// rec is a recording datapath.Output for unit tests of single nodes.
type rec struct {
	sent []sent
	evs  []datapath.Event
}

type sent struct {
	port int
	b    []byte
}

func (r *rec) Forward(port int, b []byte) { r.Send(port, b) }
func (r *rec) Send(port int, b []byte) {
	r.sent = append(r.sent, sent{port, append([]byte(nil), b...)})
}
func (r *rec) Trace(ev datapath.Event) { r.evs = append(r.evs, ev) }
func (r *rec) reset()                  { r.sent, r.evs = nil, nil }
func (r *rec) devices() []string       { return datapath.Path(r.evs).Devices() }
func (r *rec) last() datapath.Event    { return r.evs[len(r.evs)-1] }
func (r *rec) sentPorts() (ps []int) {
	for _, s := range r.sent {
		ps = append(ps, s.port)
	}
	return
}

var (
	mac1 = net.HardwareAddr{2, 0, 0, 0, 1, 1}
	mac2 = net.HardwareAddr{2, 0, 0, 0, 1, 2}
	mac3 = net.HardwareAddr{2, 0, 0, 0, 1, 3}
	ip1  = netip.MustParseAddr("10.0.1.11")
	ip2  = netip.MustParseAddr("10.0.1.12")
	ip3  = netip.MustParseAddr("10.0.2.13")
)

func icmp(src, dst net.HardwareAddr, s, d netip.Addr) []byte {
	return frame.ICMPEcho(frame.IPv4{SrcMAC: src, DstMAC: dst, Src: s, Dst: d}, false, 1, 1, []byte("probe"))
}

func TestHostPaths(t *testing.T) {
	up := []string{"eth1", "eth2"}
	cases := []struct {
		name    string
		stock   bool
		from    string // "tap" or "nic"
		prime   bool   // teach br-int the destination MAC first
		want    []string
		wantOut []int
		wantVID uint16
	}{
		{"egress", false, "tap", false,
			[]string{"h1/tap-vm1", "h1/br-int", "h1/patch-int", "h1/patch-bond", "h1/br-bond", "h1/eth1"}, []int{0}, 100},
		{"egress-stock", true, "tap", false,
			[]string{"h1/tap-vm1", "h1/qbr-vm1", "h1/qvb-vm1", "h1/qvo-vm1", "h1/br-int", "h1/patch-int", "h1/patch-bond", "h1/br-bond", "h1/eth1"}, []int{0}, 100},
		{"ingress", false, "nic", true,
			[]string{"h1/eth1", "h1/br-bond", "h1/patch-bond", "h1/patch-int", "h1/br-int", "h1/tap-vm1"}, []int{2}, 0},
		{"ingress-stock", true, "nic", true,
			[]string{"h1/eth1", "h1/br-bond", "h1/patch-bond", "h1/patch-int", "h1/br-int", "h1/qvo-vm1", "h1/qvb-vm1", "h1/qbr-vm1", "h1/tap-vm1"}, []int{2}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := NewHost("h1", up, HostOptions{Stock: c.stock})
			p := h.AttachInstance("vm1", 100)
			if p != 2 {
				t.Fatalf("tap port = %d, want 2 (after the uplinks)", p)
			}
			var r rec
			if c.prime {
				h.Receive(0, p, icmp(mac1, mac2, ip1, ip2), &r)
				r.reset()
			}
			var in []byte
			port := p
			if c.from == "tap" {
				in = icmp(mac1, mac2, ip1, ip2)
			} else {
				in = frame.PushVLAN(nil, icmp(mac2, mac1, ip2, ip1), 100)
				port = 0
			}
			h.Receive(time.Second, port, in, &r)
			if got := r.devices(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("devices\n got %v\nwant %v", got, c.want)
			}
			if got := r.sentPorts(); !reflect.DeepEqual(got, c.wantOut) {
				t.Fatalf("sent on %v, want %v", got, c.wantOut)
			}
			if vid := frame.VLANOf(r.sent[0].b); vid != c.wantVID {
				t.Errorf("sent with VLAN %d, want %d", vid, c.wantVID)
			}
		})
	}
}

func TestHostLocalSwitchingAndIsolation(t *testing.T) {
	h := NewHost("h1", []string{"eth1", "eth2"}, HostOptions{})
	p1 := h.AttachInstance("vm1", 100)
	p2 := h.AttachInstance("vm2", 100)
	p3 := h.AttachInstance("vm3", 200)
	if h.LocalVLAN(100) == h.LocalVLAN(200) || h.LocalVLAN(100) == 0 {
		t.Fatalf("local VLANs %d and %d", h.LocalVLAN(100), h.LocalVLAN(200))
	}
	var r rec
	// A broadcast from vm1 reaches vm2 (same network) and the fabric, not vm3.
	h.Receive(0, p1, frame.ARPRequest(mac1, ip1, ip2), &r)
	if got, want := r.sentPorts(), []int{p2, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("broadcast sent on %v, want %v", got, want)
	}
	r.reset()
	// vm2 answers vm1 directly: tap, br-int, tap.
	h.Receive(0, p2, frame.ARPReply(mac2, ip2, mac1, ip1), &r)
	if got, want := r.devices(), []string{"h1/tap-vm2", "h1/br-int", "h1/tap-vm1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("local path %v, want %v", got, want)
	}
	if got := r.sentPorts(); !reflect.DeepEqual(got, []int{p1}) {
		t.Errorf("sent on %v, want [%d]", got, p1)
	}
	_ = p3
	// A frame from the fabric in a VLAN the host has no instance on stops at br-bond.
	r.reset()
	h.Receive(0, 0, frame.PushVLAN(nil, frame.ARPRequest(mac3, ip3, ip1), 300), &r)
	if e := r.last(); e.Action != datapath.ActDrop || e.Reason != datapath.ReasonVLANMismatch || e.Device != DevBrBond || len(r.sent) != 0 {
		t.Errorf("foreign VLAN: last event %+v, sent %d", e, len(r.sent))
	}
	// Detach releases the port and, with the last instance, the local VLAN.
	h.DetachInstance("vm3")
	if h.LocalVLAN(200) != 0 || h.Ports()[p3] != "" {
		t.Errorf("after detach: local VLAN %d, port name %q", h.LocalVLAN(200), h.Ports()[p3])
	}
	if p := h.AttachInstance("vm4", 300); p != p3 {
		t.Errorf("reattach reused port %d, want %d", p, p3)
	}
}

func TestBondFailover(t *testing.T) {
	h := NewHost("h1", []string{"eth1", "eth2"}, HostOptions{})
	p := h.AttachInstance("vm1", 100)
	var r rec
	h.Receive(0, p, icmp(mac1, mac2, ip1, ip2), &r) // br-int learns vm1
	tagged := frame.PushVLAN(nil, icmp(mac2, mac1, ip2, ip1), 100)
	cases := []struct {
		name       string
		act        func()
		port       int
		wantDrop   datapath.Reason
		wantActive string
	}{
		{"backup-drops", func() {}, 1, ReasonBondBackup, "eth1"},
		{"active-delivers", func() {}, 0, "", "eth1"},
		{"failover", func() { h.SetPortState(time.Second, 0, false, &r) }, 1, "", "eth2"},
		{"old-active-now-backup", func() { h.SetPortState(2*time.Second, 0, true, &r) }, 0, ReasonBondBackup, "eth2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.reset()
			c.act()
			if h.ActiveUplink() != c.wantActive {
				t.Fatalf("active %q, want %q", h.ActiveUplink(), c.wantActive)
			}
			if c.name == "failover" {
				// One RARP learning frame for vm1, tagged, on the new active NIC.
				if len(r.sent) != 1 || r.sent[0].port != 1 || frame.VLANOf(r.sent[0].b) != 100 ||
					!bytes.Equal(r.sent[0].b[6:12], mac1) || !bytes.Equal(r.sent[0].b[16:18], []byte{0x80, 0x35}) {
					t.Fatalf("learning frames %+v", r.sent)
				}
				r.reset()
			}
			// Receive may rewrite the frame it is given (datapath.Node).
			h.Receive(3*time.Second, c.port, bytes.Clone(tagged), &r)
			e := r.last()
			if c.wantDrop != "" {
				if e.Action != datapath.ActDrop || e.Reason != c.wantDrop {
					t.Errorf("last event %+v, want drop %s", e, c.wantDrop)
				}
				return
			}
			if len(r.sent) != 1 || r.sent[0].port != p {
				t.Errorf("sent %v, want one frame to the tap", r.sentPorts())
			}
		})
	}
	// Egress follows the active NIC.
	r.reset()
	h.Receive(4*time.Second, p, icmp(mac1, mac2, ip1, ip2), &r)
	if got := r.sentPorts(); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("egress after failover on %v, want [1]", got)
	}
	// Both NICs down: br-bond drops.
	h.SetPortState(5*time.Second, 0, false, &r)
	h.SetPortState(5*time.Second, 1, false, &r)
	r.reset()
	h.Receive(6*time.Second, p, icmp(mac1, mac2, ip1, ip2), &r)
	if e := r.last(); e.Reason != datapath.ReasonPortDown || len(r.sent) != 0 {
		t.Errorf("no slave: last %+v sent %d", e, len(r.sent))
	}
}

func TestSecurityGroupChain(t *testing.T) {
	web := SecurityGroup{Name: "web", Rules: []SGRule{
		{Direction: Ingress, Proto: ProtoTCP, PortMin: 80, PortMax: 80, Action: Accept},
		{Direction: Ingress, Proto: ProtoICMP, Remote: netip.MustParsePrefix("10.0.9.0/24"), Action: Drop},
		{Direction: Ingress, Proto: ProtoICMP, Action: Accept},
	}}
	deny := SecurityGroup{Name: "no-udp-out", Rules: []SGRule{{Direction: Egress, Proto: ProtoUDP, Action: Drop}}}
	h := NewHost("h1", []string{"eth1", "eth2"}, HostOptions{Stock: true, SecurityGroups: []SecurityGroup{deny, web},
		DefaultIngress: Drop, DefaultEgress: Accept})
	p := h.AttachInstance("vm1", 100)
	far := net.HardwareAddr{2, 0, 0, 0, 9, 9}
	var r rec
	h.Receive(0, p, icmp(mac1, far, ip1, ip3), &r) // learn vm1 on its tap
	hdr := func(src netip.Addr) frame.IPv4 { return frame.IPv4{SrcMAC: far, DstMAC: mac1, Src: src, Dst: ip1} }
	in := func(b []byte) []byte { return frame.PushVLAN(nil, b, 100) }
	other := netip.MustParseAddr("10.0.9.5")
	cases := []struct {
		name     string
		port     int
		b        []byte
		wantRule string
		wantDrop bool
		// iptables rules walked: the conntrack rule, then the
		// direction's rules up to the match (all of them for a default)
		walked int
	}{
		{"tcp-80-accepted", 0, in(frame.TCP(hdr(ip3), 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil)), "sg:web:1", false, 2},
		{"tcp-22-default-drop", 0, in(frame.TCP(hdr(ip3), 40000, 22, 1, 0, frame.TCPFlags{SYN: true}, nil)), RuleDefaultIngress, true, 4},
		{"icmp-from-denied-subnet", 0, in(icmp(far, mac1, other, ip1)), "sg:web:2", true, 3},
		{"icmp-accepted", 0, in(frame.ICMPEcho(hdr(ip3), false, 7, 1, nil)), "sg:web:3", false, 4},
		{"udp-egress-denied", p, frame.UDP(frame.IPv4{SrcMAC: mac1, DstMAC: far, Src: ip1, Dst: ip3}, 5000, 53, nil), "sg:no-udp-out:1", true, 2},
		{"echo-reply-established", p, frame.ICMPEcho(frame.IPv4{SrcMAC: mac1, DstMAC: far, Src: ip1, Dst: ip3}, true, 7, 1, nil), RuleEstablished, false, 1},
		{"arp-not-filtered", 0, in(frame.ARPRequest(far, ip3, ip1)), RuleNonIP, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.reset()
			h.Receive(time.Second, c.port, c.b, &r)
			var qbr *datapath.Event
			for i := range r.evs {
				if r.evs[i].Device == "qbr-vm1" {
					qbr = &r.evs[i]
				}
			}
			if qbr == nil {
				t.Fatalf("no qbr event in %v", r.devices())
			}
			if qbr.Rule != c.wantRule {
				t.Errorf("rule %q, want %q", qbr.Rule, c.wantRule)
			}
			if qbr.Walked != c.walked || qbr.Kind != datapath.KindLinuxBridge {
				t.Errorf("qbr is a %s that walked %d rules, want a %s that walked %d", qbr.Kind, qbr.Walked, datapath.KindLinuxBridge, c.walked)
			}
			dropped := qbr.Action == datapath.ActDrop
			if dropped != c.wantDrop || (dropped && (qbr.Reason != datapath.ReasonPolicy || len(r.sent) != 0)) {
				t.Errorf("qbr event %+v, sent %d; want drop %v", *qbr, len(r.sent), c.wantDrop)
			}
		})
	}
	cnt := h.SGCounters("vm1")
	for rule, want := range map[string]uint64{"sg:web:1": 1, "sg:web:2": 1, "sg:web:3": 1, "sg:no-udp-out:1": 1, RuleDefaultIngress: 1, RuleEstablished: 1} {
		if cnt[rule] != want {
			t.Errorf("counter %s = %d, want %d (all: %v)", rule, cnt[rule], want, cnt)
		}
	}
}

func TestSecurityGroupsAccessor(t *testing.T) {
	web := SecurityGroup{Name: "web", Rules: []SGRule{{Direction: Ingress, Proto: ProtoTCP, PortMin: 80, PortMax: 80}}}
	h := NewHost("h1", []string{"eth1", "eth2"}, HostOptions{Stock: true, SecurityGroups: []SecurityGroup{web},
		DefaultIngress: Drop, DefaultEgress: Accept})
	h.AttachInstance("vm1", 100)
	g, in, out, ok := h.SecurityGroups("vm1")
	if !ok || len(g) != 1 || g[0].Name != "web" || in != Drop || out != Accept {
		t.Errorf("vm1: %v %v %v %v, want [web] drop accept true", g, in, out, ok)
	}
	deny := SecurityGroup{Name: "deny", Rules: []SGRule{{Direction: Ingress, Action: Drop}}}
	if err := h.SetSecurityGroups("vm1", []SecurityGroup{deny}); err != nil {
		t.Fatal(err)
	}
	if g, _, _, _ := h.SecurityGroups("vm1"); len(g) != 1 || g[0].Name != "deny" {
		t.Errorf("after SetSecurityGroups: %v, want [deny]", g)
	}
	if _, _, _, ok := h.SecurityGroups("vm2"); ok {
		t.Error("unknown instance reported ok")
	}
	ctrip := NewHost("h2", []string{"eth1", "eth2"}, HostOptions{})
	ctrip.AttachInstance("vm3", 100)
	if _, _, _, ok := ctrip.SecurityGroups("vm3"); ok {
		t.Error("Ctrip host reported security groups")
	}
}
