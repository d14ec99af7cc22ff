package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"

	"github.com/netbed/netbed/datapath/bfd"
)

// runBFD runs a BFD session (RFC 5880 asynchronous mode, single hop)
// beside every peer on a connected subnet, as `neighbor X bfd` does in
// FRR: when a session that was Up goes Down (the peer stopped answering
// for the detection time, or said so), the BGP session is taken down at
// once (DisablePeer, as on carrier loss) instead of at the end of the
// hold timer; when BFD is Up again the peer is configured afresh. A BGP
// session comes up without waiting for BFD, and a BFD session that never
// came Up takes nothing down. It returns when ctx ends.
func (s *Server) runBFD(ctx context.Context) error {
	if s.cfg.BFD == nil {
		<-ctx.Done()
		return nil
	}
	local, err := localAddrs(s.cfg.Peers)
	if err != nil {
		return fmt.Errorf("%s: bfd: %w", s.cfg.Node, err)
	}
	errc := make(chan error, len(local))
	var wg sync.WaitGroup
	for peer, la := range local {
		wasUp := false // a session that never came Up says nothing
		wg.Go(func() {
			err := bfd.Run(ctx, bfd.Peer{Local: la, Remote: peer, Port: s.cfg.BFD.Port, Config: s.cfg.BFD.session()}, func(st bfd.State, _ bfd.Diag) {
				s.mu.Lock()
				carrierDown, bfdDown := s.carrierDown[peer], s.bfdDown[peer]
				switch {
				case st == bfd.Down && wasUp && !carrierDown && !bfdDown:
					wasUp = false
					s.bfdDown[peer] = true
					s.mu.Unlock()
					_ = s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: peer.String(), Communication: "BFD down"})
				case st == bfd.Up && !bfdDown:
					wasUp = true
					s.mu.Unlock()
				case st == bfd.Up && bfdDown:
					wasUp = true
					s.bfdDown[peer] = false
					s.mu.Unlock()
					if !carrierDown {
						s.renewPeer(ctx, peer)
					}
				default:
					s.mu.Unlock()
				}
			})
			if err != nil {
				errc <- err
			}
		})
	}
	select {
	case <-ctx.Done():
		wg.Wait()
		return nil
	case err := <-errc:
		return fmt.Errorf("%s: %w", s.cfg.Node, err)
	}
}

// localAddrs finds, for every peer on a connected subnet of this
// namespace, this end's address on that subnet.
func localAddrs(peers []Peer) (map[netip.Addr]netip.Addr, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := map[netip.Addr]netip.Addr{}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		pfx := netip.PrefixFrom(ip, ones)
		for _, p := range peers {
			if pfx.Contains(p.Address) && p.Address != ip && ones < 32 {
				out[p.Address] = ip
			}
		}
	}
	return out, nil
}
