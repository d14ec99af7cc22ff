package kerneltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/topologies/netns"
)

// Echo sends one ICMP (or, to an IPv6 dst, ICMPv6) echo request with id
// and seq from a raw socket that in opens (inside a namespace:
// netns.DoIn) and waits up to wait for the reply from dst. It returns
// the reply's TTL or hop limit, from which a test counts routed hops.
func Echo(in func(func() error) error, dst netip.Addr, id, seq uint16, wait time.Duration) (int, error) {
	v6 := dst.Is6()
	family, proto, req := unix.AF_INET6, unix.IPPROTO_ICMPV6, []byte{128, 0, 0, 0}
	var to unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
	if !v6 {
		family, proto, req[0] = unix.AF_INET, unix.IPPROTO_ICMP, 8
		to = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	req = binary.BigEndian.AppendUint16(req, id)
	req = binary.BigEndian.AppendUint16(req, seq)
	req = binary.BigEndian.AppendUint64(req, uint64(id)<<16|uint64(seq))
	if !v6 {
		binary.BigEndian.PutUint16(req[2:], inetsum.Sum(req)) // the kernel fills ICMPv6's
	}
	var fd int
	if err := in(func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		return err
	}); err != nil {
		return 0, fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1); err != nil {
			return 0, fmt.Errorf("raw socket: receive hop limits: %w", err)
		}
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Sendto(fd, req, 0, to); err != nil {
		return 0, fmt.Errorf("send echo request to %v: %w", dst, err)
	}
	buf, oob := make([]byte, 1500), make([]byte, 128)
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil || n < 8 || sockaddrAddr(from) != dst {
			continue // a timeout, or another host's message
		}
		msg, hops, reply := buf[:n], -1, byte(0)
		if v6 {
			reply = 129
			if hops, err = hopLimit(oob[:oobn]); err != nil {
				return 0, err
			}
		} else {
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+8 {
				continue
			}
			msg, hops = buf[ihl:n], int(buf[8])
		}
		if msg[0] == reply && binary.BigEndian.Uint16(msg[4:]) == id && binary.BigEndian.Uint16(msg[6:]) == seq {
			return hops, nil
		}
	}
	return 0, fmt.Errorf("no echo reply from %v within %v", dst, wait)
}

// sockaddrAddr is a socket address's IP address (the zero Addr for
// another kind).
func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr)
	}
	return netip.Addr{}
}

// hopLimit is the IPV6_HOPLIMIT control message's value.
func hopLimit(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, fmt.Errorf("control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4 {
			return int(binary.NativeEndian.Uint32(m.Data)), nil
		}
	}
	return 0, errors.New("an echo reply without its hop limit")
}

// In runs functions inside the named network namespace: the in of Echo
// and TCPTransfer.
func In(ns string) func(func() error) error {
	return func(fn func() error) error {
		h, err := vnetns.GetFromName(ns)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		defer h.Close()
		return netns.DoIn(h, fn)
	}
}
