package bfd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Port is single-hop BFD's UDP port (RFC 5881).
const Port = 3784

// Peer is one single-hop session to run over UDP.
type Peer struct {
	// Local and Remote are the addresses on the link's two ends.
	Local, Remote netip.Addr
	// Port is the UDP port both ends listen on (default Port).
	Port   int
	Config Config
}

// Run carries a session with p over UDP until ctx ends: it listens on
// Local:Port, sends from a port of 49152–65535 with TTL 255 (RFC 5881),
// and calls change (from Run's goroutine) at every change of state.
func Run(ctx context.Context, p Peer, change func(State, Diag)) error {
	port := p.Port
	if port == 0 {
		port = Port
	}
	var lc net.ListenConfig
	rx, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(p.Local, uint16(port)).String())
	if err != nil {
		return fmt.Errorf("bfd %s -> %s: listen: %w", p.Local, p.Remote, err)
	}
	defer rx.Close()
	tx, err := dialTTL255(p.Local, netip.AddrPortFrom(p.Remote, uint16(port)))
	if err != nil {
		return fmt.Errorf("bfd %s -> %s: %w", p.Local, p.Remote, err)
	}
	defer tx.Close()
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	disc := binary.BigEndian.Uint32(seed[:]) | 1
	jit := mrand.New(mrand.NewPCG(uint64(disc), 5880))
	s := NewSession(p.Config, disc, jit.Float64)
	in := make(chan Packet, 16)
	go func() {
		buf := make([]byte, 128)
		for {
			n, from, err := rx.ReadFrom(buf)
			if err != nil {
				close(in)
				return
			}
			if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != p.Remote {
				continue
			}
			if pk, err := Parse(buf[:n]); err == nil {
				in <- pk
			}
		}
	}()
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	timer := time.NewTimer(0)
	defer timer.Stop()
	var out []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case pk, ok := <-in:
			if !ok {
				return fmt.Errorf("bfd %s -> %s: receive: socket closed", p.Local, p.Remote)
			}
			if s.Receive(now(), pk) {
				change(s.State(), s.Diag())
			}
		case <-timer.C:
		}
		send, changed := s.Tick(now())
		if changed {
			change(s.State(), s.Diag())
		}
		if send != nil {
			out = send.Marshal(out[:0])
			// A link without carrier, or a peer not listening yet,
			// refuses for a while: the session's timers decide.
			_, _ = tx.Write(out)
		}
		timer.Reset(max(s.Next()-now(), 0))
	}
}

// dialTTL255 connects a UDP socket from local (a port of 49152–65535)
// to dst with TTL 255.
func dialTTL255(local netip.Addr, dst netip.AddrPort) (*net.UDPConn, error) {
	var lastErr error
	for range 32 {
		sport := 49152 + mrand.IntN(65536-49152)
		d := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(sport))),
			Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, 255) })
				return errors.Join(err, serr)
			}}
		c, err := d.Dial("udp4", dst.String())
		if err == nil {
			return c.(*net.UDPConn), nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("send socket from %s: %w", local, lastErr)
}
