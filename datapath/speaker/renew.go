package speaker

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// renewDropped follows the sessions' states and configures a peer afresh
// (renewPeer) when its session, or an attempt at one, ended on its own
// (OPENSENT, OPENCONFIRM or ESTABLISHED back to IDLE: the hold timer
// expired, a NOTIFICATION came, the peer closed the connection) while its
// admin state is up and neither its link's carrier nor BFD holds it down.
// GoBGP keeps such a peer IDLE for a fixed 5 s (its idle hold time, not
// configurable) and closes the peer's connections meanwhile; a restarted
// neighbour that dials then is refused and idles 5 s in turn, so a leaf
// rebooted after a silent failure came back only after about 9 s. A new
// peer is active at once and dials after its connect retry (1–2 s), as
// the configured ConnectRetry says. It returns when ctx ends.
func (s *Server) renewDropped(ctx context.Context) error {
	prev := map[netip.Addr]api.PeerState_SessionState{}
	renew := make(chan netip.Addr, 16)
	err := s.srv.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		st := r.GetPeer().GetPeer().GetState()
		a, err := netip.ParseAddr(st.GetNeighborAddress())
		if err != nil || r.GetPeer().GetType() != api.WatchEventResponse_PeerEvent_STATE {
			return
		}
		was, now := prev[a], st.GetSessionState()
		prev[a] = now
		if now == api.PeerState_IDLE && was >= api.PeerState_OPENSENT && st.GetAdminState() == api.PeerState_UP {
			select {
			case renew <- a:
			case <-ctx.Done():
			}
		}
	})
	if err != nil {
		return fmt.Errorf("%s: watch sessions: %w", s.cfg.Node, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-renew:
			if s.dropped(ctx, a) {
				s.renewPeer(ctx, a)
			}
		}
	}
}

// dropped says whether peer a is still configured, IDLE with its admin
// state up, and held down by neither carrier nor BFD: a session that
// ended on its own, not one netbed or an operator took down.
func (s *Server) dropped(ctx context.Context, a netip.Addr) bool {
	s.mu.Lock()
	held := s.carrierDown[a] || s.bfdDown[a]
	s.mu.Unlock()
	if held {
		return false
	}
	idle := false
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: a.String()}, func(p *api.Peer) {
		st := p.GetState()
		idle = st.GetSessionState() == api.PeerState_IDLE && st.GetAdminState() == api.PeerState_UP
	})
	return err == nil && idle
}
