package ovs

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/datapath/kernel/kerneltest"
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
	binary.BigEndian.PutUint16(req[2:], inetsum.Sum(req))
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
	in := func(ns string) func(func() error) error { return func(fn func() error) error { return inNS(ns, fn) } }
	return kerneltest.TCPTransfer(in(from), in(to), netip.Addr{}, addr, n, 30*time.Second)
}
