//go:build v4

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const version = "v4.8.0"

type v4Speaker struct {
	srv  *server.BgpServer
	conn *grpc.ClientConn
	api  api.GoBgpServiceClient
}

var evpnFamily = &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}

func startSpeaker(ctx context.Context, c speakerConfig) (speaker, error) {
	_ = os.Remove(c.GRPC)
	srv := server.NewBgpServer(server.LoggerOption(slog.New(slog.DiscardHandler), new(slog.LevelVar)), server.GrpcListenAddress("unix://"+c.GRPC))
	go srv.Serve()
	g := &api.Global{Asn: asn, RouterId: c.RouterID.String(), ListenPort: c.Port}
	if c.Listen.IsValid() {
		g.ListenAddresses = []string{c.Listen.String()}
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start BGP: %w", err)
	}
	for _, p := range c.Peers {
		peer := &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: asn},
			Timers: &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3,
				ConnectRetry: 1, IdleHoldTimeAfterReset: 1}},
			Transport: &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)},
			AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: evpnFamily, Enabled: true}}},
		}
		if p.Local.IsValid() {
			peer.Transport.LocalAddress = p.Local.String()
		}
		if p.RRClient {
			peer.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: c.RouterID.String()}
		}
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			srv.Stop()
			return nil, fmt.Errorf("add peer %s: %w", p.Address, err)
		}
	}
	conn, err := grpc.NewClient("unix://"+c.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("gRPC client: %w", err)
	}
	return &v4Speaker{srv: srv, conn: conn, api: api.NewGoBgpServiceClient(conn)}, nil
}

func (s *v4Speaker) stop() {
	s.conn.Close()
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.srv.Stop()
}

func (s *v4Speaker) established(ctx context.Context) (bool, error) {
	all, n := true, 0
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		n++
		all = all && p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	return all && n > 0, err
}

func (s *v4Speaker) updates(ctx context.Context) (sent, received uint64, err error) {
	err = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		m := p.GetState().GetMessages()
		sent += m.GetSent().GetUpdate()
		received += m.GetReceived().GetUpdate()
	})
	return sent, received, err
}

// encode is r as netbed's bgpevpn.Encode builds it: RD VTEP:VNI, the
// labels L2 and L3 VNI, route targets 65000:VNI and 65000:L3VNI, VXLAN
// encapsulation and the router MAC, next hop the VTEP.
func encode(r route) (*api.Path, error) {
	rd, err := bgp.NewRouteDistinguisherIPAddressAS(r.VTEP, uint16(r.VNI))
	if err != nil {
		return nil, err
	}
	rt := func(v uint32) bgp.ExtendedCommunityInterface {
		return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, asn, v, true)
	}
	comms := []bgp.ExtendedCommunityInterface{rt(r.VNI), bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN),
		rt(r.L3VNI), bgp.NewRoutersMacExtended(net.HardwareAddr(r.RouterMAC[:]).String())}
	nlri, err := bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, r.VNI,
		net.HardwareAddr(r.MAC[:]).String(), r.IP, []uint32{r.VNI, r.L3VNI})
	if err != nil {
		return nil, err
	}
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: nlri}}, r.VTEP)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		mp,
		bgp.NewPathAttributeExtendedCommunities(comms),
	}
	return apiutil.NewPath(bgp.RF_EVPN, nlri, false, attrs, time.Now())
}

func (s *v4Speaker) advertise(ctx context.Context, routes []route) error {
	ps := make([]*api.Path, 0, len(routes))
	for _, r := range routes {
		p, err := encode(r)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	st, err := s.api.AddPathStream(ctx)
	if err != nil {
		return fmt.Errorf("add paths: %w", err)
	}
	const batch = 1000
	for i := 0; i < len(ps); i += batch {
		if err := st.Send(&api.AddPathStreamRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Paths: ps[i:min(i+batch, len(ps))]}); err != nil {
			return fmt.Errorf("add paths: %w", err)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("add paths: %w", err)
	}
	return nil
}

func (s *v4Speaker) watch(ctx context.Context, fn func([]route)) error {
	st, err := s.api.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_TYPE_BEST, Init: true}},
	}})
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	for {
		rsp, err := st.Recv()
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		var adds []route
		for _, p := range rsp.GetTable().GetPaths() {
			if p.IsWithdraw {
				continue
			}
			if r, ok := decode(p); ok {
				adds = append(adds, r)
			}
		}
		fn(adds)
	}
}

// decode reads a path back as netbed's client does: the NLRI, the
// MP_REACH next hop and the extended communities.
func decode(p *api.Path) (route, bool) {
	n, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return route{}, false
	}
	e, ok := n.(*bgp.EVPNNLRI)
	if !ok {
		return route{}, false
	}
	d, ok := e.RouteTypeData.(*bgp.EVPNMacIPAdvertisementRoute)
	if !ok || len(d.MacAddress) != 6 || len(d.Labels) < 2 {
		return route{}, false
	}
	var r route
	copy(r.MAC[:], d.MacAddress)
	r.VNI, r.L3VNI = d.Labels[0], d.Labels[1]
	r.IP = d.IPAddress.Unmap()
	for _, a := range p.Pattrs {
		switch {
		case a.GetMpReach() != nil:
			m := a.GetMpReach()
			if len(m.NextHops) == 0 {
				return route{}, false
			}
			r.VTEP, _ = netip.ParseAddr(m.NextHops[0])
		case a.GetExtendedCommunities() != nil:
			attr, err := apiutil.UnmarshalAttribute(a)
			if err != nil {
				return route{}, false
			}
			for _, c := range attr.(*bgp.PathAttributeExtendedCommunities).Value {
				if m, ok := c.(*bgp.RouterMacExtended); ok {
					copy(r.RouterMAC[:], m.Mac)
				}
			}
		}
	}
	return r, true
}
