package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetLinks sets node's interfaces names administratively up or down at
// once, as a switch losing power drops every port at the same moment: one
// netlink message per interface, all in one send, so the kernel takes
// them down back to back within one system call however busy this process
// is. (One call per interface left gaps of up to 90 ms between a node's
// links on a loaded machine, and its neighbours saw it fail link by link.)
// Every interface is tried; the error names each one that failed.
func (l *Lab) SetLinks(node string, names []string, up bool) error {
	if len(names) == 0 {
		return nil
	}
	var fd int
	err := l.Do(node, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s: netlink socket: %w", node, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("node %s: netlink socket: %w", node, err)
	}
	var buf []byte
	for i, name := range names {
		buf = appendSetLink(buf, uint32(i+1), name, up)
	}
	if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("node %s: set %d links up=%v: %w", node, len(names), up, err)
	}
	errs := make([]error, len(names))
	acked := 0
	rb := make([]byte, 1<<16)
	for acked < len(names) {
		n, _, err := unix.Recvfrom(fd, rb, 0)
		if err != nil {
			return fmt.Errorf("node %s: set links up=%v: read the acknowledgements: %w", node, up, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return fmt.Errorf("node %s: set links up=%v: %w", node, up, err)
		}
		for _, m := range msgs {
			i := int(m.Header.Seq) - 1
			if m.Header.Type != unix.NLMSG_ERROR || i < 0 || i >= len(names) || len(m.Data) < 4 {
				continue
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				errs[i] = fmt.Errorf("node %s: set %s up=%v: %w", node, names[i], up, syscall.Errno(-code))
			}
			acked++
		}
	}
	return errors.Join(errs...)
}

// appendSetLink appends an RTM_NEWLINK request that sets the IFF_UP flag
// of the interface called name (found by name: index 0) to up, asking for
// an acknowledgement.
func appendSetLink(b []byte, seq uint32, name string, up bool) []byte {
	attrLen := unix.SizeofRtAttr + len(name) + 1
	msgLen := unix.SizeofNlMsghdr + unix.SizeofIfInfomsg + nlAlign(attrLen)
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	ne := binary.NativeEndian
	b = ne.AppendUint32(b, uint32(msgLen))
	b = ne.AppendUint16(b, unix.RTM_NEWLINK)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // pid: the kernel's
	// ifinfomsg: family, pad, type, index (0: by IFLA_IFNAME), flags, change.
	b = append(b, unix.AF_UNSPEC, 0)
	b = ne.AppendUint16(b, 0)
	b = ne.AppendUint32(b, 0)
	b = ne.AppendUint32(b, flags)
	b = ne.AppendUint32(b, unix.IFF_UP)
	b = ne.AppendUint16(b, uint16(attrLen))
	b = ne.AppendUint16(b, unix.IFLA_IFNAME)
	b = append(b, name...)
	for range nlAlign(attrLen) - attrLen + 1 {
		b = append(b, 0)
	}
	return b
}

// nlAlign rounds n up to netlink's 4-byte alignment.
func nlAlign(n int) int { return (n + 3) &^ 3 }
