package ovs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/topologies/netns"
)

// inNS runs fn inside the named namespace.
func inNS(name string, fn func() error) error {
	h, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	defer h.Close()
	return netns.DoIn(h, fn)
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// echo sends one ICMP echo request from namespace ns to dst and waits up
// to wait for its reply; it returns the reply's TTL.
func echo(ns string, dst netip.Addr, id, seq uint16, wait time.Duration) (ttl int, err error) {
	var fd int
	if err := inNS(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		return 0, fmt.Errorf("raw socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	req := make([]byte, 8+32)
	req[0] = 8
	binary.BigEndian.PutUint16(req[4:], id)
	binary.BigEndian.PutUint16(req[6:], seq)
	binary.BigEndian.PutUint16(req[2:], csum(req))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return 0, fmt.Errorf("send echo to %v: %w", dst, err)
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		sa, ok := from.(*unix.SockaddrInet4)
		if !ok || netip.AddrFrom4(sa.Addr) != dst || n < 28 {
			continue
		}
		ihl := int(buf[0]&15) * 4
		if n < ihl+8 {
			continue
		}
		icmp := buf[ihl:n]
		if icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id && binary.BigEndian.Uint16(icmp[6:]) == seq {
			return int(buf[8]), nil
		}
	}
	return 0, fmt.Errorf("no echo reply from %v within %v", dst, wait)
}

// tcpTransfer sends n bytes over TCP from namespace from to a listener in
// namespace to at addr, and checks they all arrive.
func tcpTransfer(from, to string, addr netip.Addr, n int) error {
	var ln net.Listener
	if err := inNS(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(addr.String(), "0"))
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		m, err := io.Copy(io.Discard, c)
		if err == nil && m != int64(n) {
			err = fmt.Errorf("received %d bytes, want %d", m, n)
		}
		got <- err
	}()
	var c net.Conn
	if err := inNS(from, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, werr := c.Write(make([]byte, n))
	c.Close()
	return errors.Join(werr, <-got)
}
