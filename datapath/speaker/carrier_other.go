//go:build !linux

package speaker

import "context"

// watchCarrier needs netlink; elsewhere sessions fall to the hold timer.
func (s *Server) watchCarrier(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
