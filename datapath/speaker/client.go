package speaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
)

// Client drives a speaker through its gRPC API, whichever process runs
// it (Serve in this one, netbed speaker in a namespace, or any GoBGP).
type Client struct {
	node string
	asn  uint32
	conn *grpc.ClientConn
	api  api.GobgpApiClient
}

// Dial connects to the speaker of node serving on the unix socket path;
// asn is the AS its routes' targets are numbered in.
func Dial(ctx context.Context, node, path string, asn uint32) (*Client, error) {
	conn, err := grpc.DialContext(ctx, "unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithBlock())
	if err != nil {
		return nil, fmt.Errorf("%s: connect to the speaker's API at %s: %w", node, path, err)
	}
	return &Client{node: node, asn: asn, conn: conn, api: api.NewGobgpApiClient(conn)}, nil
}

// Close closes the connection, not the speaker.
func (c *Client) Close() error { return c.conn.Close() }

// Node returns the speaker's node name.
func (c *Client) Node() string { return c.node }

// Advertise originates EVPN routes; their VTEP is the next hop.
func (c *Client) Advertise(ctx context.Context, routes ...evpn.Route) error {
	return c.paths(ctx, false, routes)
}

// Withdraw withdraws EVPN routes this speaker originated.
func (c *Client) Withdraw(ctx context.Context, routes ...evpn.Route) error {
	return c.paths(ctx, true, routes)
}

// paths sends routes on one AddPathStream (20,000 routes in one call
// rather than 20,000 round trips); a withdrawal is a path marked so.
func (c *Client) paths(ctx context.Context, withdraw bool, routes []evpn.Route) error {
	if len(routes) == 0 {
		return nil
	}
	ps := make([]*api.Path, 0, len(routes))
	for _, r := range routes {
		bp, err := bgpevpn.Encode(r, uint16(c.asn))
		if err != nil {
			return fmt.Errorf("%s: %w", c.node, err)
		}
		p, err := apiutil.NewPath(bp.NLRI, withdraw, bp.Attrs, time.Now())
		if err != nil {
			return fmt.Errorf("%s: %s as a GoBGP path: %w", c.node, r, err)
		}
		ps = append(ps, p)
	}
	return c.stream(ctx, ps, fmt.Sprintf("%d EVPN routes", len(routes)))
}

func (c *Client) stream(ctx context.Context, ps []*api.Path, what string) error {
	st, err := c.api.AddPathStream(ctx)
	if err != nil {
		return fmt.Errorf("%s: send %s: %w", c.node, what, err)
	}
	const batch = 1000
	for i := 0; i < len(ps); i += batch {
		req := &api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: ps[i:min(i+batch, len(ps))]}
		if err := st.Send(req); err != nil {
			return fmt.Errorf("%s: send %s: %w", c.node, what, err)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: send %s: %w", c.node, what, err)
	}
	return nil
}

// AdvertisePrefix originates IPv4 unicast routes (gen 3's direct
// routing: a node's pod CIDR with the node as next hop).
func (c *Client) AdvertisePrefix(ctx context.Context, routes ...PrefixRoute) error {
	return c.prefixes(ctx, false, routes)
}

// WithdrawPrefix withdraws IPv4 unicast routes this speaker originated.
func (c *Client) WithdrawPrefix(ctx context.Context, routes ...PrefixRoute) error {
	return c.prefixes(ctx, true, routes)
}

func (c *Client) prefixes(ctx context.Context, withdraw bool, routes []PrefixRoute) error {
	ps := make([]*api.Path, 0, len(routes))
	for _, r := range routes {
		if !r.Prefix.Addr().Is4() || !r.NextHop.Is4() {
			return fmt.Errorf("%s: prefix route %s via %s: IPv4 only", c.node, r.Prefix, r.NextHop)
		}
		nlri := bgp.NewIPAddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Masked().Addr().String())
		attrs := []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
			bgp.NewPathAttributeNextHop(r.NextHop.String()),
		}
		p, err := apiutil.NewPath(nlri, withdraw, attrs, time.Now())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", c.node, r.Prefix, err)
		}
		ps = append(ps, p)
	}
	return c.stream(ctx, ps, fmt.Sprintf("%d prefixes", len(routes)))
}

// Update is a change of the speaker's best paths (its Loc-RIB).
type Update struct {
	Adds, Withdrawn []evpn.Route
	// PrefixAdds and PrefixWithdrawn are IPv4 unicast best paths learnt
	// or lost (gen 3's pod CIDRs).
	PrefixAdds, PrefixWithdrawn []PrefixRoute
}

// PrefixRoute is an IPv4 unicast route.
type PrefixRoute struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// Watch calls fn with every change of the speaker's best paths, starting
// with the paths it holds now, until ctx ends or the speaker goes away;
// it returns then, nil when ctx ended. fn runs on the caller's goroutine.
//
// GoBGP sends each best path that changes as a message of its own (an
// EVPN UPDATE carries one route), so 20,000 routes are 20,000 messages.
// The stream is read and decoded on a goroutine of Watch's own; changes
// that arrive while fn is still busy with earlier ones reach fn together
// in as few Updates as keep their meaning (see merge), so a consumer
// that pauses its datapath per call pays per batch, not per route, when
// routes come faster than it applies them. One change on a quiet
// speaker still reaches fn at once, on its own.
func (c *Client) Watch(ctx context.Context, fn func(Update)) error {
	req := &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}},
	}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.api.WatchEvent(ctx, req)
	if err != nil {
		return fmt.Errorf("%s: watch best paths: %w", c.node, err)
	}
	var (
		mu      sync.Mutex
		pending []Update
		recvErr error
		wake    = make(chan struct{}, 1)
	)
	go func() {
		for {
			r, err := st.Recv()
			var u Update
			if err == nil {
				t := r.GetTable()
				if t == nil {
					continue
				}
				u = decodePaths(t.Paths)
			}
			mu.Lock()
			if err != nil {
				recvErr = err
			} else {
				pending = mergeInto(pending, u)
			}
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		mu.Lock()
		us, err := pending, recvErr
		pending = nil
		mu.Unlock()
		for _, u := range us {
			fn(u)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: watch best paths: %w", c.node, err)
		}
	}
}

// mergeInto appends u to the changes queued in us, folding it into the
// last one where that means the same: a consumer applies an Update's
// withdrawals before its adds, so two Updates are one unless the first
// adds a route and the second withdraws one (which might be it). Empty
// Updates are dropped.
func mergeInto(us []Update, u Update) []Update {
	if len(u.Adds)+len(u.Withdrawn)+len(u.PrefixAdds)+len(u.PrefixWithdrawn) == 0 {
		return us
	}
	if len(us) == 0 {
		return append(us, u)
	}
	last := &us[len(us)-1]
	if (len(last.Adds) > 0 && len(u.Withdrawn) > 0) || (len(last.PrefixAdds) > 0 && len(u.PrefixWithdrawn) > 0) {
		return append(us, u)
	}
	last.Adds = append(last.Adds, u.Adds...)
	last.Withdrawn = append(last.Withdrawn, u.Withdrawn...)
	last.PrefixAdds = append(last.PrefixAdds, u.PrefixAdds...)
	last.PrefixWithdrawn = append(last.PrefixWithdrawn, u.PrefixWithdrawn...)
	return us
}

// decodePaths turns GoBGP paths into netbed routes; routes netbed does
// not model (other EVPN route types) are skipped.
func decodePaths(paths []*api.Path) Update {
	var u Update
	for _, p := range paths {
		nlri, err := apiutil.GetNativeNlri(p)
		if err != nil {
			continue
		}
		attrs, err := routeAttrs(p)
		if err != nil {
			continue
		}
		switch n := nlri.(type) {
		case *bgp.EVPNNLRI:
			r, err := bgpevpn.Decode(bgpevpn.Path{NLRI: n, Attrs: attrs})
			if err != nil {
				continue
			}
			if p.IsWithdraw {
				u.Withdrawn = append(u.Withdrawn, r)
			} else {
				u.Adds = append(u.Adds, r)
			}
		case *bgp.IPAddrPrefix:
			pr, ok := decodePrefix(n, attrs)
			if !ok {
				continue
			}
			if p.IsWithdraw {
				u.PrefixWithdrawn = append(u.PrefixWithdrawn, pr)
			} else {
				u.PrefixAdds = append(u.PrefixAdds, pr)
			}
		}
	}
	return u
}

// routeAttrs returns the path attributes of p that a route is decoded
// from (bgpevpn.Decode, decodePrefix): the next hop, extended
// communities and PMSI tunnel. It leaves the others (origin, AS path,
// the route reflector's originator and cluster list) as they came, and
// reads only the next hop of MP_REACH_NLRI, not the NLRI in it again
// (the path's own NLRI is the route): a watch delivers every best path
// as its own message, and converting every attribute of each was most
// of the client's CPU time at 20,000 routes.
func routeAttrs(p *api.Path) ([]bgp.PathAttributeInterface, error) {
	attrs := make([]bgp.PathAttributeInterface, 0, 3)
	for _, a := range p.Pattrs {
		switch {
		case a.MessageIs((*api.MpReachNLRIAttribute)(nil)):
			var m api.MpReachNLRIAttribute
			if err := a.UnmarshalTo(&m); err != nil {
				return nil, fmt.Errorf("MP_REACH_NLRI: %w", err)
			}
			if len(m.NextHops) == 0 {
				continue
			}
			nh, err := netip.ParseAddr(m.NextHops[0])
			if err != nil {
				return nil, fmt.Errorf("MP_REACH_NLRI next hop %q: %w", m.NextHops[0], err)
			}
			attrs = append(attrs, &bgp.PathAttributeMpReachNLRI{Nexthop: nh.AsSlice()})
		case a.MessageIs((*api.ExtendedCommunitiesAttribute)(nil)), a.MessageIs((*api.PmsiTunnelAttribute)(nil)),
			a.MessageIs((*api.NextHopAttribute)(nil)):
			attr, err := apiutil.UnmarshalAttribute(a)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, attr)
		}
	}
	return attrs, nil
}

func decodePrefix(n *bgp.IPAddrPrefix, attrs []bgp.PathAttributeInterface) (PrefixRoute, bool) {
	a, ok := netip.AddrFromSlice(n.Prefix.To4())
	if !ok {
		return PrefixRoute{}, false
	}
	r := PrefixRoute{Prefix: netip.PrefixFrom(a, int(n.Length))}
	for _, at := range attrs {
		if nh, ok := at.(*bgp.PathAttributeNextHop); ok {
			r.NextHop, _ = netip.AddrFromSlice(nh.Value.To4())
		}
	}
	return r, true
}

// Routes returns the speaker's best EVPN paths, sorted by their text.
func (c *Client) Routes(ctx context.Context) ([]evpn.Route, error) {
	ps, err := c.Paths(ctx)
	if err != nil {
		return nil, err
	}
	rs := make([]evpn.Route, len(ps))
	for i, p := range ps {
		rs[i] = p.Route
	}
	return rs, nil
}

// Path is one best EVPN path with the route targets it carries (AS:N,
// sorted), which a Route leaves out.
type Path struct {
	Route        evpn.Route
	RouteTargets []string
}

// Paths returns the speaker's best EVPN paths with their route targets,
// sorted by the routes' text.
func (c *Client) Paths(ctx context.Context) ([]Path, error) {
	st, err := c.api.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: families[EVPN]})
	if err != nil {
		return nil, fmt.Errorf("%s: list EVPN paths: %w", c.node, err)
	}
	var paths []*api.Path
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: list EVPN paths: %w", c.node, err)
		}
		for _, p := range r.GetDestination().GetPaths() {
			if p.Best {
				paths = append(paths, p)
			}
		}
	}
	var out []Path
	for _, p := range paths {
		rs := decodePaths([]*api.Path{p}).Adds
		if len(rs) == 0 {
			continue
		}
		out = append(out, Path{Route: rs[0], RouteTargets: routeTargets(p)})
	}
	slices.SortFunc(out, func(a, b Path) int { return strings.Compare(a.Route.String(), b.Route.String()) })
	return out, nil
}

// Received returns how many EVPN paths the speaker holds from peer (its
// Adj-RIB-In for that neighbour), best or not: what it would drop were
// the session to end.
func (c *Client) Received(ctx context.Context, peer netip.Addr) (int, error) {
	st, err := c.api.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: peer.String(), Family: families[EVPN]})
	if err != nil {
		return 0, fmt.Errorf("%s: list EVPN paths from %s: %w", c.node, peer, err)
	}
	n := 0
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%s: list EVPN paths from %s: %w", c.node, peer, err)
		}
		n += len(r.GetDestination().GetPaths())
	}
}

// routeTargets returns the route targets among p's extended communities.
func routeTargets(p *api.Path) []string {
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return nil
	}
	var rts []string
	for _, a := range attrs {
		ec, ok := a.(*bgp.PathAttributeExtendedCommunities)
		if !ok {
			continue
		}
		for _, c := range ec.Value {
			if typ, sub := c.GetTypes(); sub == bgp.EC_SUBTYPE_ROUTE_TARGET && typ <= bgp.EC_TYPE_TRANSITIVE_FOUR_OCTET_AS_SPECIFIC {
				rts = append(rts, c.String())
			}
		}
	}
	slices.Sort(rts)
	return rts
}

// RouterID returns the router ID the speaker runs with.
func (c *Client) RouterID(ctx context.Context) (netip.Addr, error) {
	g, err := c.api.GetBgp(ctx, &api.GetBgpRequest{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: router ID: %w", c.node, err)
	}
	id, err := netip.ParseAddr(g.GetGlobal().GetRouterId())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: router ID %q: %w", c.node, g.GetGlobal().GetRouterId(), err)
	}
	return id, nil
}

// Session is one neighbour's state.
type Session struct {
	Peer        netip.Addr
	ASN         uint32
	Established bool
	State       string // idle, connect, active, opensent, openconfirm, established
	// Hold and Keepalive are the timers negotiated with the peer
	// (while established).
	Hold, Keepalive time.Duration
	// Up is when the session was last established; zero if it never
	// was since the peer was configured.
	Up time.Time
}

// Sessions returns the state of every configured neighbour, by address.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	st, err := c.api.ListPeer(ctx, &api.ListPeerRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: list peers: %w", c.node, err)
	}
	var out []Session
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: list peers: %w", c.node, err)
		}
		p := r.GetPeer()
		a, _ := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		state := p.GetState().GetSessionState()
		ts := p.GetTimers().GetState()
		out = append(out, Session{Peer: a, ASN: p.GetConf().GetPeerAsn(),
			Established: state == api.PeerState_ESTABLISHED, State: stateNames[state],
			Hold:      time.Duration(ts.GetNegotiatedHoldTime()) * time.Second,
			Keepalive: time.Duration(ts.GetKeepaliveInterval()) * time.Second})
		if up := ts.GetUptime().GetSeconds(); up > 0 {
			out[len(out)-1].Up = time.Unix(up, 0)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Peer.Compare(b.Peer) })
	return out, nil
}

// WatchPeers calls fn with every change of a session's state (the peer's
// address and whether the session is established), as the speaker's
// event stream reports it, until ctx ends or the speaker goes away; it
// returns then, nil when ctx ended. fn runs on the caller's goroutine.
func (c *Client) WatchPeers(ctx context.Context, fn func(peer netip.Addr, established bool)) error {
	st, err := c.api.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}})
	if err != nil {
		return fmt.Errorf("%s: watch peers: %w", c.node, err)
	}
	for {
		r, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: watch peers: %w", c.node, err)
		}
		p := r.GetPeer().GetPeer()
		if p == nil {
			continue
		}
		a, err := netip.ParseAddr(p.GetState().GetNeighborAddress())
		if err != nil {
			a, _ = netip.ParseAddr(p.GetConf().GetNeighborAddress())
		}
		fn(a, p.GetState().GetSessionState() == api.PeerState_ESTABLISHED)
	}
}

var stateNames = map[api.PeerState_SessionState]string{
	api.PeerState_UNKNOWN: "unknown", api.PeerState_IDLE: "idle", api.PeerState_CONNECT: "connect",
	api.PeerState_ACTIVE: "active", api.PeerState_OPENSENT: "opensent", api.PeerState_OPENCONFIRM: "openconfirm",
	api.PeerState_ESTABLISHED: "established",
}

// WaitEstablished polls until every configured session is established or
// ctx ends; the error then names the sessions that are not.
func (c *Client) WaitEstablished(ctx context.Context) error {
	for {
		ss, err := c.Sessions(ctx)
		if err != nil {
			return err
		}
		var down []string
		for _, x := range ss {
			if !x.Established {
				down = append(down, fmt.Sprintf("%s (%s)", x.Peer, x.State))
			}
		}
		if len(down) == 0 && len(ss) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: sessions not established: %s: %w", c.node, strings.Join(down, ", "), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// AddPeer configures one more neighbour on a running speaker, with
// timers; a route-reflector client's cluster is the speaker's router ID.
func (c *Client) AddPeer(ctx context.Context, p Peer, timers Timers) error {
	g, err := c.api.GetBgp(ctx, &api.GetBgpRequest{})
	if err != nil {
		return fmt.Errorf("%s: add peer %s: %w", c.node, p.Address, err)
	}
	id, err := netip.ParseAddr(g.GetGlobal().GetRouterId())
	if err != nil {
		return fmt.Errorf("%s: add peer %s: router ID: %w", c.node, p.Address, err)
	}
	cfg := Config{Timers: timers, RouterID: id}
	if _, err := c.api.AddPeer(ctx, &api.AddPeerRequest{Peer: cfg.apiPeer(p)}); err != nil {
		return fmt.Errorf("%s: add peer %s: %w", c.node, p.Address, err)
	}
	return nil
}

// Prefixes returns the speaker's best IPv4 unicast paths (gen 3's pod
// CIDRs), sorted by prefix.
func (c *Client) Prefixes(ctx context.Context) ([]PrefixRoute, error) {
	st, err := c.api.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: families[IPv4Unicast]})
	if err != nil {
		return nil, fmt.Errorf("%s: list IPv4 paths: %w", c.node, err)
	}
	var best []*api.Path
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: list IPv4 paths: %w", c.node, err)
		}
		for _, p := range r.GetDestination().GetPaths() {
			if p.Best {
				best = append(best, p)
			}
		}
	}
	out := decodePaths(best).PrefixAdds
	slices.SortFunc(out, func(a, b PrefixRoute) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out, nil
}
