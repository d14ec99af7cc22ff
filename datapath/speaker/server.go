package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Server is a speaker running in this process.
type Server struct {
	cfg Config
	srv *server.BgpServer

	// What took a peer's session down: its link's carrier (watchCarrier)
	// or BFD (runBFD), under mu. A peer comes back once neither holds it
	// down; a BFD verdict while the carrier is down does not count.
	mu          sync.Mutex
	carrierDown map[netip.Addr]bool
	bfdDown     map[netip.Addr]bool
}

// Serve validates cfg and starts its speaker in this process: BGP with
// every configured peer, and the gRPC API on cfg.GRPC. Sockets belong to
// the network namespace of the thread that creates them, and GoBGP
// creates its listener and its connections on goroutines of its own: in
// a process whose threads are not all in one namespace, run the speaker
// as its own process started inside the namespace (netbed speaker).
func Serve(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.Remove(cfg.GRPC); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("%s: stale gRPC socket: %w", cfg.Node, err)
	}
	s := &Server{cfg: cfg, carrierDown: map[netip.Addr]bool{}, bfdDown: map[netip.Addr]bool{}, srv: server.NewBgpServer(server.LoggerOption(quiet{}), server.GrpcListenAddress("unix://"+cfg.GRPC))}
	go s.srv.Serve()
	port := cfg.Port
	if port == 0 {
		port = 179
	}
	g := &api.Global{Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: port}
	for _, a := range cfg.Listen {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("start BGP on %s: %w", cfg.Node, err)
	}
	if cfg.EVPNNextHopUnchanged {
		if err := s.keepEVPNNextHop(ctx); err != nil {
			s.Stop()
			return nil, fmt.Errorf("%s: %w", cfg.Node, err)
		}
	}
	for _, p := range cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: cfg.apiPeer(p)}); err != nil {
			s.Stop()
			return nil, fmt.Errorf("%s: add peer %s: %w", cfg.Node, p.Address, err)
		}
	}
	return s, nil
}

// keepEVPNNextHop installs a global export policy that leaves the next
// hop of EVPN routes as it came (GoBGP's next-hop unchanged action) and
// accepts everything else as is.
func (s *Server) keepEVPNNextHop(ctx context.Context) error {
	pol := &api.Policy{Name: "evpn-next-hop-unchanged", Statements: []*api.Statement{{
		Name:       "evpn-next-hop-unchanged",
		Conditions: &api.Conditions{AfiSafiIn: []*api.Family{families[EVPN]}},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT, Nexthop: &api.NexthopAction{Unchanged: true}},
	}}}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return fmt.Errorf("EVPN next-hop-unchanged policy: %w", err)
	}
	err := s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: pol.Name}}, DefaultAction: api.RouteAction_ACCEPT}})
	if err != nil {
		return fmt.Errorf("assign the EVPN next-hop-unchanged policy: %w", err)
	}
	return nil
}

// Stop closes every session (with a NOTIFICATION, as an operator's
// shutdown does) and the gRPC socket. A speaker that should vanish
// without a word, as on power loss, is a process that gets SIGKILL or
// loses its links' carrier, not one that is stopped.
func (s *Server) Stop() {
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.srv.Stop()
	_ = os.Remove(s.cfg.GRPC)
}

// apiPeer is p as GoBGP's API configures it, with c's timers.
func (c *Config) apiPeer(p Peer) *api.Peer {
	t := c.Timers
	hold := t.Hold
	if hold == 0 {
		hold = DefaultHold
	}
	if hold == NoHold {
		hold = maxHold
	}
	keep := t.Keepalive
	if keep == 0 {
		keep = hold / 3
	}
	retry := t.ConnectRetry
	if retry == 0 {
		retry = DefaultConnectRetry
	}
	fams := p.Families
	if len(fams) == 0 {
		fams = []Family{EVPN}
	}
	peer := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: seconds(hold), KeepaliveInterval: seconds(keep),
			ConnectRetry: seconds(retry), IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)},
	}
	if p.Local.IsValid() {
		peer.Transport.LocalAddress = p.Local.String()
	}
	if p.RRClient {
		cluster := c.ClusterID
		if !cluster.IsValid() {
			cluster = c.RouterID
		}
		peer.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: cluster.String()}
	}
	for _, f := range fams {
		peer.AfiSafis = append(peer.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: families[f], Enabled: true}})
	}
	return peer
}

// seconds is d in whole seconds, at least 1: BGP's timers count seconds.
func seconds(d time.Duration) uint64 { return uint64(max(d/time.Second, 1)) }

// quiet is GoBGP's logger with everything dropped: sessions and routes
// are observed through the API (Sessions, Watch), which is what a test or
// a report reads.
type quiet struct{}

func (quiet) Panic(msg string, f gobgplog.Fields) { panic(msg) }
func (quiet) Fatal(msg string, f gobgplog.Fields) { panic(msg) }
func (quiet) Error(string, gobgplog.Fields)       {}
func (quiet) Warn(string, gobgplog.Fields)        {}
func (quiet) Info(string, gobgplog.Fields)        {}
func (quiet) Debug(string, gobgplog.Fields)       {}
func (quiet) SetLevel(gobgplog.LogLevel)          {}
func (quiet) GetLevel() gobgplog.LogLevel         { return gobgplog.ErrorLevel }
