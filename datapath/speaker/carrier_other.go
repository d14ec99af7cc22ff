//go:build !linux

package speaker

import "context"

// watchCarrier needs netlink; elsewhere sessions fall to the hold timer.
func (s *Server) watchCarrier(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// runBFD needs netlink to find the sessions' local addresses; elsewhere
// sessions fall to the hold timer.
func (s *Server) runBFD(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
