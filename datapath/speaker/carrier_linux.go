package speaker

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// watchCarrier follows the carrier of this namespace's links and takes
// the sessions of peers on a link's connected subnets down when it is
// lost, up again when it is back. It returns when ctx ends.
func (s *Server) watchCarrier(ctx context.Context) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{ListExisting: true}); err != nil {
		return fmt.Errorf("%s: watch links: %w", s.cfg.Node, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("%s: link updates ended", s.cfg.Node)
			}
			up := u.IfInfomsg.Flags&unix.IFF_LOWER_UP != 0
			for _, p := range s.peersOn(u.Link) {
				s.mu.Lock()
				if s.carrierDown[p] == !up {
					s.mu.Unlock()
					continue
				}
				s.carrierDown[p] = !up
				bfdDown := s.bfdDown[p]
				s.bfdDown[p] = false // superseded: BFD's next Up or Down counts afresh
				s.mu.Unlock()
				if up {
					s.renewPeer(ctx, p)
				} else if !bfdDown {
					_ = s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: p.String(), Communication: "carrier lost"})
				}
			}
		}
	}
}

// renewPeer configures peer p afresh once its link has carrier again.
// Enabling the disabled peer would leave it idle for GoBGP's idle hold
// time (5 s once a session has been up), refusing the peer's
// connections meanwhile; a new peer is active at once.
func (s *Server) renewPeer(ctx context.Context, addr netip.Addr) {
	for _, p := range s.cfg.Peers {
		if p.Address == addr {
			_ = s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()})
			_ = s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.cfg.apiPeer(p)})
			return
		}
	}
}

// peersOn returns the configured peers on link's connected subnets.
func (s *Server) peersOn(link netlink.Link) []netip.Addr {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		pfx := netip.PrefixFrom(ip.Unmap(), ones)
		for _, p := range s.cfg.Peers {
			if pfx.Contains(p.Address) && p.Address != pfx.Addr() {
				out = append(out, p.Address)
			}
		}
	}
	return out
}
