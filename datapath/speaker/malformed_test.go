package speaker_test

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/datapath/speaker"
)

// rawPeer speaks just enough BGP by hand to send what no correct speaker
// would: it opens a session (EVPN, 4-octet AS) and then writes bytes.
type rawPeer struct {
	c net.Conn
}

func dialRaw(t *testing.T, local, remote netip.AddrPort) *rawPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local.Addr().AsSlice()}, Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	// The speaker accepts a peer only while that peer's state allows it
	// (after a reset it idles a second first).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err = d.Dial("tcp", remote.String()); err != nil {
			continue
		}
		p := &rawPeer{c: c}
		caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_EVPN), bgp.NewCapFourOctetASNumber(asn)}
		open := bgp.NewBGPOpenMessage(asn, 9, "10.255.0.99", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
		p.send(t, open)
		if m, err := p.read(); err != nil || m.Header.Type != bgp.BGP_MSG_OPEN {
			c.Close()
			continue
		}
		p.send(t, bgp.NewBGPKeepAliveMessage())
		return p
	}
	t.Fatalf("raw peer: no session with %s: %v", remote, err)
	return nil
}

func (p *rawPeer) send(t *testing.T, m *bgp.BGPMessage) {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, b)
}

func (p *rawPeer) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.c.Write(b); err != nil {
		t.Fatalf("raw peer write: %v", err)
	}
}

// read returns the next message, or an error once the speaker closed
// the session.
func (p *rawPeer) read() (*bgp.BGPMessage, error) {
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(p.c, h); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[16:18]))
	body := make([]byte, n-bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(p.c, body); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(append(h, body...))
}

// outcome waits up to a second for what the speaker does about the last
// message: "reset" (NOTIFICATION or close) or "kept" (the session lives).
func (p *rawPeer) outcome() string {
	_ = p.c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		m, err := p.read()
		switch {
		case err != nil:
			var ne net.Error
			if ok := asNetError(err, &ne); ok && ne.Timeout() {
				return "kept"
			}
			return "reset"
		case m.Header.Type == bgp.BGP_MSG_NOTIFICATION:
			return "reset"
		}
	}
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// updateAttrs returns the path attributes of an iBGP UPDATE that
// advertises r, each serialized on its own so a test can break one.
func updateAttrs(t *testing.T, r evpn.Route) [][]byte {
	t.Helper()
	p, err := bgpevpn.Encode(r, asn)
	if err != nil {
		t.Fatal(err)
	}
	list := append([]bgp.PathAttributeInterface{bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100)}, p.Attrs...)
	var out [][]byte
	for _, a := range list {
		b, err := a.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// updateMsg assembles an UPDATE with no IPv4 routes from attrs.
func updateMsg(attrs [][]byte) []byte {
	var body []byte
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := make([]byte, 16, 23+len(body))
	for i := range b {
		b[i] = 0xff
	}
	b = binary.BigEndian.AppendUint16(b, uint16(23+len(body)))
	b = append(b, bgp.BGP_MSG_UPDATE, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func attrType(a []byte) bgp.BGPAttrType { return bgp.BGPAttrType(a[1]) }

// TestMalformedUpdates: a peer that sends malformed UPDATEs neither
// crashes nor wedges the route reflector. Whatever it does about each
// (RFC 7606: reset the session or treat the routes as withdrawn), it
// installs nothing from the bad message, its session with a correct leaf
// stays established with that leaf's routes in place, and the bad peer's
// next correct UPDATE (on the same session, or a new one after a reset)
// is installed.
func TestMalformedUpdates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel) // the cases run in parallel, after this function returns
	dir := t.TempDir()
	port := 20000 + rand.IntN(20000)
	spineAddr, leafAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	// rawAddr is the address of case i's bad peer.
	rawAddr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(5 + i)}) }
	spineCfg := speaker.Config{Node: "spine1", ASN: asn, RouterID: netip.MustParseAddr("10.255.0.1"), Listen: []netip.Addr{spineAddr},
		Port: int32(port), GRPC: filepath.Join(dir, "spine.sock"),
		Peers: []speaker.Peer{{Address: leafAddr, ASN: asn, RRClient: true, Passive: true}}}
	leafCfg := speaker.Config{Node: "leaf1", ASN: asn, RouterID: netip.MustParseAddr("10.255.0.11"), Port: -1,
		GRPC: filepath.Join(dir, "leaf.sock"), Peers: []speaker.Peer{{Address: spineAddr, ASN: asn, Port: uint16(port), Local: leafAddr}}}
	var clients []*speaker.Client
	for _, c := range []speaker.Config{spineCfg, leafCfg} {
		s, err := speaker.Serve(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := speaker.Dial(ctx, c.Node, c.GRPC, c.ASN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(); s.Stop() })
		clients = append(clients, cl)
	}
	spine, leaf := clients[0], clients[1]
	for i := range 3 {
		if err := spine.AddPeer(ctx, speaker.Peer{Address: rawAddr(i), ASN: asn, RRClient: true, Passive: true}, speaker.Timers{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := leaf.WaitEstablished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Advertise(ctx, type2, type3); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, spine, []evpn.Route{type2, type3})
	remote := netip.AddrPortFrom(spineAddr, uint16(port))
	cases := []struct {
		name string
		// corrupt breaks one attribute of a correct UPDATE.
		corrupt func(a []byte) []byte
	}{
		{"truncated NLRI", func(a []byte) []byte {
			if attrType(a) != bgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
				return a
			}
			hl := 3
			if bgp.BGPAttrFlag(a[0])&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
				hl = 4
			}
			nh := int(a[hl+3])
			a[hl+4+nh+1+1] += 8 // after AFI, SAFI, next hop and reserved: the route's type, then its length
			return a
		}},
		{"bad attribute length", func(a []byte) []byte {
			if attrType(a) != bgp.BGP_ATTR_TYPE_ORIGIN {
				return a
			}
			return []byte{a[0], a[1], 2, 0, 0} // ORIGIN is one octet
		}},
		{"unknown well-known attribute", func(a []byte) []byte {
			if attrType(a) != bgp.BGP_ATTR_TYPE_ORIGIN {
				return a
			}
			// Type 250 with the optional bit clear: a well-known
			// attribute nobody knows (RFC 4271 6.3).
			return append(a, byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), 250, 1, 0)
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			local := netip.AddrPortFrom(rawAddr(i), 0)
			raw := dialRaw(t, local, remote)
			defer func() { raw.c.Close() }()
			r := evpn.Route{Type: evpn.MACIP, VNI: 10100, MAC: evpn.MAC{2, 0xbb, 0, 0, 0, byte(i)}, VTEP: netip.MustParseAddr("10.255.0.99")}
			var broken [][]byte
			for _, a := range updateAttrs(t, r) {
				broken = append(broken, c.corrupt(a))
			}
			raw.write(t, updateMsg(broken))
			what := raw.outcome()
			t.Logf("%s: the session was %s", c.name, what)
			if err := leaf.WaitEstablished(ctx); err != nil {
				t.Fatalf("the correct leaf's session: %v", err)
			}
			waitPresence(t, spine, type2, true)
			waitPresence(t, spine, type3, true)
			if holds(t, spine, r) {
				t.Fatalf("the route of a malformed UPDATE was installed: %s", r)
			}
			if what == "reset" {
				raw.c.Close()
				raw = dialRaw(t, local, remote)
			}
			// The same route, correct this time, is installed; closing
			// the session withdraws it.
			raw.write(t, updateMsg(updateAttrs(t, r)))
			waitPresence(t, spine, r, true)
			raw.c.Close()
			waitPresence(t, spine, r, false)
		})
	}
}

func holds(t *testing.T, c *speaker.Client, r evpn.Route) bool {
	t.Helper()
	rs, err := c.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(rs, r)
}

// waitPresence polls c until it holds r (or, with present false, not).
func waitPresence(t *testing.T, c *speaker.Client, r evpn.Route, present bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if holds(t, c, r) == present {
			return
		}
	}
	t.Fatalf("%s: %s present=%v, want %v", c.Node(), r, !present, present)
}
