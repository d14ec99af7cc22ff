package stack

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// recorder is a datapath.Output that keeps what a node sent and traced.
// With resumable set it also implements Resumer.
type recorder struct {
	sent   [][]byte
	sentAt []Context
	events []datapath.Event
	ctx    Context
}

func (r *recorder) Forward(port int, b []byte) { r.Send(port, b) }
func (r *recorder) Send(port int, b []byte) {
	r.sent = append(r.sent, append([]byte(nil), b...))
	r.sentAt = append(r.sentAt, r.ctx)
}
func (r *recorder) Trace(ev datapath.Event) { r.events = append(r.events, ev) }

type resumer struct{ *recorder }

func (r resumer) Context() Context { return r.ctx }
func (r resumer) Resume(c Context) { r.ctx = c }

// hub joins instances on one broadcast segment and delivers frames in order.
type hub struct {
	nodes []*Instance
	out   map[*Instance]*recorder
	seen  [][]byte // every frame on the segment
}

func newHub(ins ...*Instance) *hub {
	h := &hub{nodes: ins, out: map[*Instance]*recorder{}}
	for _, in := range ins {
		h.out[in] = &recorder{}
	}
	return h
}

// run delivers queued frames until none are left (bounded, to catch loops).
func (h *hub) run(t *testing.T) {
	t.Helper()
	for step := 0; step < 1000; step++ {
		moved := false
		for _, from := range h.nodes {
			r := h.out[from]
			for len(r.sent) > 0 {
				b := r.sent[0]
				r.sent = r.sent[1:]
				h.seen = append(h.seen, b)
				moved = true
				for _, to := range h.nodes {
					if to != from {
						to.Receive(time.Duration(step), 0, b, h.out[to])
					}
				}
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("hub did not go idle: frames loop")
}

func mac(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }

func count(evs []datapath.Event, act datapath.Action, rule string) int {
	n := 0
	for _, e := range evs {
		if e.Action == act && (rule == "" || e.Rule == rule) {
			n++
		}
	}
	return n
}

func TestProbeOnLink(t *testing.T) {
	cases := []struct {
		name string
		spec ProbeSpec
		open []uint16
		want ReplyKind
	}{
		{"icmp", ProbeSpec{Proto: ICMP, ID: 0x1234_5678_9abc}, nil, ReplyEcho},
		{"udp-echo-port", ProbeSpec{Proto: UDP, DstPort: 7, ID: 77}, nil, ReplyUDP},
		{"udp-any-port", ProbeSpec{Proto: UDP, DstPort: 5353, ID: 78}, nil, ReplyUDP},
		{"tcp-open-default", ProbeSpec{Proto: TCP, DstPort: 443, ID: 79}, nil, ReplySynAck},
		{"tcp-closed", ProbeSpec{Proto: TCP, DstPort: 8080, ID: 80}, nil, ReplyRST},
		{"tcp-opened", ProbeSpec{Proto: TCP, DstPort: 8080, ID: 81}, []uint16{8080}, ReplySynAck},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.MustParseAddr("10.0.0.254"))
			b := New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.MustParseAddr("10.0.0.254"))
			if c.open != nil {
				b.SetOpenPorts(c.open...)
			}
			var got []Reply
			a.OnReply(func(r Reply) { got = append(got, r) })
			h := newHub(a, b)
			spec := c.spec
			spec.Dst = b.Addr().Addr()
			a.Probe(0, h.out[a], spec)
			h.run(t)

			if len(a.Replies()) != 1 || len(got) != 1 {
				t.Fatalf("replies = %+v, callback %+v; want one", a.Replies(), got)
			}
			r := a.Replies()[0]
			if r.ID != spec.ID || r.Kind != c.want || r.From != spec.Dst {
				t.Errorf("reply = %+v, want id %d kind %s from %s", r, spec.ID, c.want, spec.Dst)
			}
			// a: ARP request, then the probe; b: ARP reply, then the answer.
			if n := count(h.out[a].events, datapath.ActOriginate, "arp:request"); n != 1 {
				t.Errorf("a sent %d ARP requests, want 1", n)
			}
			if n := count(h.out[a].events, datapath.ActOriginate, "arp:resolved"); n != 1 {
				t.Errorf("a released %d queued packets, want 1", n)
			}
			// b learned a from its ARP request and answered without asking.
			if n := count(h.out[b].events, datapath.ActOriginate, "arp:request"); n != 0 {
				t.Errorf("b sent %d ARP requests, want 0", n)
			}
			if n := count(h.out[b].events, datapath.ActDeliver, ""); n != 2 {
				t.Errorf("b delivered %d frames (ARP request + probe), want 2: %+v", n, h.out[b].events)
			}
			// The probe's packet carries the ID in its payload.
			ps := frame.NewParser()
			found := false
			for _, f := range h.seen {
				p, err := ps.Parse(f)
				if err != nil {
					t.Fatalf("parse frame on segment: %v", err)
				}
				if p.Has(layers.LayerTypeIPv4) && net.IP(p.IP4.SrcIP).Equal(a.Addr().Addr().AsSlice()) {
					var pl []byte
					switch spec.Proto {
					case ICMP:
						pl = p.ICMP4.Payload
					case UDP:
						pl = p.UDP.Payload
					case TCP:
						pl = p.TCP.Payload
					}
					if len(pl) == 8 && binary.BigEndian.Uint64(pl) == spec.ID {
						found = true
					}
					if spec.Proto == ICMP && (p.ICMP4.Id != uint16(spec.ID>>16) || p.ICMP4.Seq != uint16(spec.ID)) {
						t.Errorf("icmp id/seq = %d/%d, want the probe ID's", p.ICMP4.Id, p.ICMP4.Seq)
					}
				}
			}
			if !found {
				t.Error("no frame from a carries the probe ID in its payload")
			}
		})
	}
}

func TestOffLinkUsesGateway(t *testing.T) {
	gwMAC := mac(0xfe)
	gw := netip.MustParseAddr("10.0.0.254")
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), gw)
	r := &recorder{}
	dst := netip.MustParseAddr("10.9.9.9")
	a.Probe(0, r, ProbeSpec{Proto: ICMP, Dst: dst, ID: 5})
	if len(r.sent) != 1 {
		t.Fatalf("sent %d frames before ARP resolution, want 1 (the ARP request)", len(r.sent))
	}
	p, err := frame.NewParser().Parse(r.sent[0])
	if err != nil || !p.Has(layers.LayerTypeARP) {
		t.Fatalf("first frame is not ARP: %v", err)
	}
	if tpa, _ := netip.AddrFromSlice(p.ARP.DstProtAddress); tpa != gw {
		t.Fatalf("ARP asks for %s, want the gateway %s", tpa, gw)
	}
	a.Receive(1, 0, frame.ARPReply(gwMAC, gw, a.MAC(), a.Addr().Addr()), r)
	if len(r.sent) != 2 {
		t.Fatalf("sent %d frames after ARP reply, want 2", len(r.sent))
	}
	p, err = frame.NewParser().Parse(r.sent[1])
	if err != nil {
		t.Fatal(err)
	}
	if net.HardwareAddr(p.Eth.DstMAC).String() != gwMAC.String() {
		t.Errorf("probe goes to MAC %s, want gateway %s", p.Eth.DstMAC, gwMAC)
	}
	if d, _ := netip.AddrFromSlice(p.IP4.DstIP); d != dst {
		t.Errorf("probe IP dst %s, want %s", d, dst)
	}
	// Further probes go straight out.
	a.Probe(2, r, ProbeSpec{Proto: UDP, Dst: dst, ID: 6})
	if len(r.sent) != 3 || count(r.events, datapath.ActOriginate, "arp:request") != 1 {
		t.Errorf("second probe: %d frames, %d ARP requests; want 3 and 1", len(r.sent), count(r.events, datapath.ActOriginate, "arp:request"))
	}
}

func TestReceiveVerdicts(t *testing.T) {
	me := netip.MustParseAddr("10.0.0.1")
	other := netip.MustParseAddr("10.0.0.3")
	peer := netip.MustParseAddr("10.0.0.2")
	h := frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer, Dst: me}
	cases := []struct {
		name   string
		frame  []byte
		act    datapath.Action
		reason datapath.Reason
		sends  int
	}{
		{"arp-request-for-me", frame.ARPRequest(mac(2), peer, me), datapath.ActDeliver, "", 1},
		{"arp-request-for-other", frame.ARPRequest(mac(2), peer, other), datapath.ActDrop, datapath.ReasonNotForMe, 0},
		{"unicast-other-mac", frame.UDP(frame.IPv4{SrcMAC: mac(2), DstMAC: mac(9), Src: peer, Dst: me}, 1, 7, nil), datapath.ActDrop, datapath.ReasonNotForMe, 0},
		{"my-mac-other-ip", frame.UDP(frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer, Dst: other}, 1, 7, nil), datapath.ActDrop, datapath.ReasonNotForMe, 0},
		{"udp-echo", frame.UDP(h, 40000, 7, []byte("hi")), datapath.ActDeliver, "", 1},
		{"udp-to-ephemeral-not-echoed", frame.UDP(h, 7, 40000, []byte("hi")), datapath.ActDeliver, "", 0},
		{"icmp-echo", frame.ICMPEcho(h, false, 1, 2, nil), datapath.ActDeliver, "", 1},
		{"unsolicited-echo-reply", frame.ICMPEcho(h, true, 1, 2, nil), datapath.ActDeliver, "", 0},
		{"tagged", frame.PushVLAN(nil, frame.ICMPEcho(h, false, 1, 2, nil), 10), datapath.ActDrop, datapath.ReasonVLANMismatch, 0},
		{"truncated", []byte{1, 2, 3}, datapath.ActDrop, datapath.ReasonMalformed, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
			in.arp[peer] = [6]byte(mac(2)) // known, so answers leave at once
			r := &recorder{}
			in.Receive(0, 0, c.frame, r)
			if len(r.events) == 0 {
				t.Fatal("no trace event")
			}
			ev := r.events[0]
			if ev.Action != c.act || ev.Reason != c.reason || ev.Node != "a" || ev.Device != Port || ev.Kind != datapath.KindNIC {
				t.Errorf("event = %+v, want %s/%q", ev, c.act, c.reason)
			}
			if len(r.sent) != c.sends {
				t.Errorf("sent %d frames, want %d", len(r.sent), c.sends)
			}
			if n := count(r.events, datapath.ActOriginate, ""); n != c.sends {
				t.Errorf("%d originate events for %d frames sent", n, c.sends)
			}
		})
	}
}

func TestPendingLimitAndNoRoute(t *testing.T) {
	in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	r := &recorder{}
	for i := range PendingLimit + 2 {
		in.Probe(0, r, ProbeSpec{Proto: ICMP, Dst: netip.MustParseAddr("10.0.0.2"), ID: uint64(i + 1)})
	}
	if in.PendingCount() != PendingLimit {
		t.Errorf("pending = %d, want %d", in.PendingCount(), PendingLimit)
	}
	if n := count(r.events, datapath.ActDrop, "arp:queue-full"); n != 2 {
		t.Errorf("%d arp-unresolved drops, want 2", n)
	}
	// Without a Resumer the instance knows no probe IDs for queued packets.
	if in.Pending(PendingLimit + 2) {
		t.Error("Pending reports a probe without a runtime context")
	}
	r = &recorder{}
	in.Probe(0, r, ProbeSpec{Proto: UDP, Dst: netip.MustParseAddr("192.168.1.1"), ID: 9})
	if len(r.sent) != 0 || len(r.events) != 1 || r.events[0].Reason != datapath.ReasonNoRoute {
		t.Errorf("off-link without gateway: sent %d, events %+v; want a no-route drop", len(r.sent), r.events)
	}
}

func TestResumeKeepsProbeContext(t *testing.T) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	b := New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	rec := &recorder{}
	out := resumer{rec}
	rec.ctx = Context{Probe: 42, Ref: 7}
	a.Probe(0, out, ProbeSpec{Proto: ICMP, Dst: b.Addr().Addr(), ID: 42})
	if !a.Pending(42) {
		t.Fatal("probe 42 not pending behind ARP")
	}
	// The ARP reply arrives in another frame's context.
	rec.ctx = Context{Probe: 42, Ref: 99}
	a.Receive(1, 0, frame.ARPReply(b.MAC(), b.Addr().Addr(), a.MAC(), a.Addr().Addr()), out)
	if len(rec.sent) != 2 {
		t.Fatalf("sent %d, want ARP request + probe", len(rec.sent))
	}
	if got := rec.sentAt[1]; got != (Context{Probe: 42, Ref: 7}) {
		t.Errorf("released probe sent in context %+v, want the one it was queued in", got)
	}
	if rec.ctx != (Context{Probe: 42, Ref: 99}) {
		t.Errorf("context after release = %+v, want the ARP reply's restored", rec.ctx)
	}
}

func TestAnnounceUpdatesNeighbours(t *testing.T) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	b := New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	c := New("c", mac(3), netip.MustParsePrefix("10.0.0.3/24"), netip.Addr{})
	b.arp[a.Addr().Addr()] = [6]byte(mac(0x77)) // stale: a moved
	h := newHub(a, b, c)
	a.Announce(0, h.out[a])
	h.run(t)
	if m, ok := b.Neighbor(a.Addr().Addr()); !ok || m.String() != a.MAC().String() {
		t.Errorf("b's entry for a = %v %v, want %s", m, ok, a.MAC())
	}
	if _, ok := c.Neighbor(a.Addr().Addr()); ok {
		t.Error("c learned a from a gratuitous ARP (arp_accept=0 must not create entries)")
	}
	if count(h.out[c].events, datapath.ActDrop, "arp:other") != 1 {
		t.Errorf("c events %+v, want one not-for-me drop", h.out[c].events)
	}
}

// An instance announces itself with the frames a Linux guest sends
// (gratuitous ARP, unsolicited NA for its link-local address) and, as a
// migrated VM, its hypervisor's RARP; the frames are the ones package
// frame builds, and a neighbour drops the IPv6 and RARP frames as not
// for it, with a reason (no malformed frame, nothing unexplained).
func TestAnnounceFrames(t *testing.T) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	b := New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	h := newHub(a, b)
	a.Announce(0, h.out[a])
	a.AnnounceSelf(0, h.out[a])
	want := [][]byte{frame.GratuitousARP(a.MAC(), a.Addr().Addr()), frame.UnsolicitedNA(a.MAC(), frame.LinkLocal(a.MAC())), frame.RARPAnnounce(a.MAC())}
	if len(h.out[a].sent) != len(want) {
		t.Fatalf("a sent %d frames, want %d", len(h.out[a].sent), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(h.out[a].sent[i], w) {
			t.Errorf("frame %d:\n got % x\nwant % x", i, h.out[a].sent[i], w)
		}
	}
	for _, rule := range []string{"arp:gratuitous", "ndisc:unsolicited-na", "rarp:announce"} {
		if count(h.out[a].events, datapath.ActOriginate, rule) != 1 {
			t.Errorf("a's events %+v lack one %s", h.out[a].events, rule)
		}
	}
	h.run(t)
	for _, ev := range h.out[b].events {
		if ev.Action != datapath.ActDrop || ev.Reason != datapath.ReasonNotForMe {
			t.Errorf("b: %+v; want every announcement dropped as not for it", ev)
		}
	}
	if len(h.out[b].events) != 3 {
		t.Errorf("b traced %d events, want 3: %+v", len(h.out[b].events), h.out[b].events)
	}
}

func FuzzReceive(f *testing.F) {
	me := netip.MustParseAddr("10.0.0.1")
	peer := netip.MustParseAddr("10.0.0.2")
	h := frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer, Dst: me}
	f.Add(frame.ARPRequest(mac(2), peer, me))
	f.Add(frame.ICMPEcho(h, false, 1, 2, []byte("12345678")))
	f.Add(frame.TCP(h, 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil))
	f.Add(frame.UDP(h, 40000, 7, nil))
	me6, peer6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	h6 := frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer6, Dst: me6}
	f.Add(frame.NeighborSolicitation(mac(2), peer6, me6))
	f.Add(frame.NeighborAdvertisement(mac(2), peer6, mac(1), me6, frame.NASolicited))
	f.Add(frame.ICMPEcho(h6, false, 1, 2, []byte("12345678")))
	f.Add(frame.TCP(h6, 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.MustParseAddr("10.0.0.254"))
		in.SetIPv6(netip.MustParsePrefix("fd00::1/64"), netip.MustParseAddr("fd00::fffe"))
		r := &recorder{}
		in.Receive(0, 0, b, r)
		if len(r.events) == 0 {
			t.Fatal("frame handled without a trace event")
		}
		if n := count(r.events, datapath.ActOriginate, ""); n != len(r.sent) {
			t.Fatalf("%d originate events for %d frames sent", n, len(r.sent))
		}
	})
}

// FuzzICMPFastPath checks that the fixed-offset path for ICMP frames
// decides exactly as the decoder's path: same trace events, same frames
// sent, same replies recorded, on any frame.
func FuzzICMPFastPath(f *testing.F) {
	me := netip.MustParseAddr("10.0.0.1")
	peer := netip.MustParseAddr("10.0.0.2")
	h := frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer, Dst: me}
	req := frame.ICMPEcho(h, false, 1, 2, []byte("12345678"))
	f.Add(req)
	f.Add(frame.ICMPEcho(h, true, 0, 1, []byte{0, 0, 0, 0, 0, 0, 0, 1})) // answers probe 1
	f.Add(frame.ICMPEcho(h, false, 7, 7, nil))
	f.Add(append(bytes.Clone(req), make([]byte, 20)...)) // padded
	other := frame.ICMPEcho(frame.IPv4{SrcMAC: mac(2), DstMAC: mac(1), Src: peer, Dst: netip.MustParseAddr("10.0.0.9")}, false, 1, 2, nil)
	f.Add(other)
	frag := bytes.Clone(req)
	frag[20] |= 0x20 // more fragments
	f.Add(frag)
	short := bytes.Clone(req)
	short[16], short[17] = 0, 20 // total length shorter than the ICMP header
	f.Add(short)
	zero := bytes.Clone(req)
	zero[16], zero[17] = 0, 0 // total length 0 (TSO): the decoder takes the frame's
	f.Add(zero)
	opts := bytes.Clone(req)
	opts[14] = 0x46 // IHL 6
	f.Add(opts)
	v6 := bytes.Clone(req)
	v6[14] = 0x65 // version 6, IHL 5
	f.Add(v6)
	f.Fuzz(func(t *testing.T, b []byte) {
		newInst := func() (*Instance, *recorder) {
			in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.MustParseAddr("10.0.0.254"))
			in.arp[peer] = [6]byte(mac(2))
			r := &recorder{}
			in.Probe(0, r, ProbeSpec{Proto: ICMP, Dst: peer, ID: 1})
			return in, &recorder{}
		}
		a, ra := newInst()
		d, rd := newInst()
		a.Receive(0, 0, b, ra)
		if len(b) >= ethLen && (frame.DstMAC(b) == d.mac6 || frame.IsBroadcastOrMulticast(b)) {
			d.receiveDecoded(0, b, rd)
		} else {
			d.Receive(0, 0, b, rd)
		}
		if !slices.Equal(ra.events, rd.events) {
			t.Fatalf("events differ:\nfast    %+v\ndecoded %+v", ra.events, rd.events)
		}
		if !slices.EqualFunc(ra.sent, rd.sent, bytes.Equal) {
			t.Fatalf("frames sent differ:\nfast    % x\ndecoded % x", ra.sent, rd.sent)
		}
		if !slices.Equal(a.Replies(), d.Replies()) {
			t.Fatalf("replies differ: fast %+v, decoded %+v", a.Replies(), d.Replies())
		}
	})
}

func dual(name string, m byte, v4, v6 string) *Instance {
	in := New(name, mac(m), netip.MustParsePrefix(v4), netip.MustParseAddr("10.0.0.254"))
	in.SetIPv6(netip.MustParsePrefix(v6), netip.MustParseAddr("fd00::fffe"))
	return in
}

// Two dual-stack instances on one segment answer every probe kind over
// IPv6, resolving each other by neighbour discovery (no ARP), and replies
// name the IPv6 address they came from.
func TestProbeOnLinkIPv6(t *testing.T) {
	for _, spec := range []ProbeSpec{
		{Proto: ICMP, ID: 0x1234_5678_9abc}, {Proto: UDP, DstPort: 5353, ID: 78},
		{Proto: TCP, DstPort: 443, ID: 79}, {Proto: TCP, DstPort: 8080, ID: 80},
	} {
		t.Run(spec.Proto.String(), func(t *testing.T) {
			a := dual("a", 1, "10.0.0.1/24", "fd00::1/64")
			b := dual("b", 2, "10.0.0.2/24", "fd00::2/64")
			h := newHub(a, b)
			spec.Dst = b.Addr6().Addr()
			a.Probe(0, h.out[a], spec)
			h.run(t)
			rs := a.Replies()
			if len(rs) != 1 || rs[0].ID != spec.ID || rs[0].From != spec.Dst {
				t.Fatalf("replies = %+v, want one for %d from %s", rs, spec.ID, spec.Dst)
			}
			if n := count(h.out[a].events, datapath.ActOriginate, "ndisc:solicit"); n != 1 {
				t.Errorf("a sent %d solicitations, want 1", n)
			}
			if n := count(h.out[a].events, datapath.ActOriginate, "arp:request") + count(h.out[b].events, datapath.ActOriginate, "arp:request"); n != 0 {
				t.Errorf("%d ARP requests for an IPv6 probe", n)
			}
			if n := count(h.out[b].events, datapath.ActOriginate, "ndisc:solicit"); n != 0 {
				t.Errorf("b solicited %d times; it learns a from a's solicitation", n)
			}
			if m, ok := b.Neighbor(a.Addr6().Addr()); !ok || m.String() != a.MAC().String() {
				t.Errorf("b's neighbour entry for a: %v %v", m, ok)
			}
			// Every frame on the segment decodes as IPv6 (no malformed one).
			ps := frame.NewParser()
			for _, f := range h.seen {
				p, err := ps.Parse(f)
				if err != nil || !p.Has(layers.LayerTypeIPv6) || !p.Has(layers.LayerTypeICMPv6) && !p.Has(layers.LayerTypeUDP) && !p.Has(layers.LayerTypeTCP) {
					t.Errorf("frame %x: %v %v", f, err, p.Decoded)
				}
			}
		})
	}
}

// An IPv6 probe off the link goes through the IPv6 gateway, resolved by a
// solicitation to its solicited-node group; one without an IPv6 address
// has no route.
func TestOffLinkIPv6UsesGateway(t *testing.T) {
	a := dual("a", 1, "10.0.0.1/24", "fd00::1/64")
	r := &recorder{}
	dst := netip.MustParseAddr("fd00:9::9")
	a.Probe(0, r, ProbeSpec{Proto: ICMP, Dst: dst, ID: 5})
	if len(r.sent) != 1 {
		t.Fatalf("sent %d frames, want the solicitation", len(r.sent))
	}
	p, err := frame.NewParser().Parse(r.sent[0])
	if err != nil || !p.Has(layers.LayerTypeICMPv6) {
		t.Fatalf("first frame is not ICMPv6: %v", err)
	}
	nd, ok := frame.ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload)
	gw := a.Gateway6()
	if !ok || nd.Target != gw || nd.LLAddr != [6]byte(a.MAC()) {
		t.Fatalf("solicitation %+v, want one for the gateway %s with a's MAC", nd, gw)
	}
	if d, _ := netip.AddrFromSlice(p.IP6.DstIP); d != frame.SolicitedNode(gw) || frame.DstMAC(r.sent[0]) != frame.MulticastMAC(frame.SolicitedNode(gw)) {
		t.Errorf("solicitation to %s / %x", d, frame.DstMAC(r.sent[0]))
	}
	gwMAC := mac(0xfe)
	a.Receive(1, 0, frame.NeighborAdvertisement(gwMAC, gw, a.MAC(), a.Addr6().Addr(), frame.NASolicited|frame.NARouter), r)
	if len(r.sent) != 2 {
		t.Fatalf("sent %d frames after the advertisement, want 2", len(r.sent))
	}
	p, err = frame.NewParser().Parse(r.sent[1])
	if err != nil || net.HardwareAddr(p.Eth.DstMAC).String() != gwMAC.String() {
		t.Fatalf("probe to %v (%v), want the gateway's MAC", p.Eth.DstMAC, err)
	}
	if d, _ := netip.AddrFromSlice(p.IP6.DstIP); d != dst {
		t.Errorf("probe to %s, want %s", d, dst)
	}
	v4only := New("c", mac(3), netip.MustParsePrefix("10.0.0.3/24"), netip.MustParseAddr("10.0.0.254"))
	r = &recorder{}
	v4only.Probe(0, r, ProbeSpec{Proto: ICMP, Dst: dst, ID: 6})
	if len(r.sent) != 0 || count(r.events, datapath.ActDrop, "route:none") != 1 {
		t.Errorf("IPv4-only instance: sent %d, events %+v; want a no-route drop", len(r.sent), r.events)
	}
}

// A dual-stack instance announces its global IPv6 address too, and a
// neighbour holding a stale entry for it takes the new MAC.
func TestAnnounceIPv6(t *testing.T) {
	a := dual("a", 1, "10.0.0.1/24", "fd00::1/64")
	b := dual("b", 2, "10.0.0.2/24", "fd00::2/64")
	b.arp[a.Addr6().Addr()] = [6]byte(mac(0x77))
	h := newHub(a, b)
	a.Announce(0, h.out[a])
	if n := count(h.out[a].events, datapath.ActOriginate, "ndisc:unsolicited-na"); n != 2 {
		t.Errorf("%d unsolicited NAs, want 2 (link-local and global)", n)
	}
	h.run(t)
	if m, _ := b.Neighbor(a.Addr6().Addr()); m.String() != a.MAC().String() {
		t.Errorf("b's entry for a = %v, want %s", m, a.MAC())
	}
}
