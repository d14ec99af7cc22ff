package announce

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// SendIn writes frames, whole Ethernet frames, out of the interface
// ifname of the network namespace at nsPath ("" for the caller's own).
func SendIn(nsPath, ifname string, frames ...[]byte) error {
	if nsPath == "" {
		return send(ifname, frames)
	}
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("announce on %s: open namespace %s: %w", ifname, nsPath, err)
	}
	defer target.Close()
	res := make(chan error, 1)
	// A thread of its own, so that no other goroutine runs in the
	// namespace meanwhile and a failed return leaves no thread behind in it.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("announce on %s: open current namespace: %w", ifname, err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("announce on %s: enter namespace %s: %w", ifname, nsPath, err)
			return
		}
		serr := send(ifname, frames)
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with the goroutine.
			res <- errors.Join(serr, fmt.Errorf("announce on %s: leave namespace %s: %w", ifname, nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		res <- serr
	}()
	return <-res
}

// send writes frames out of ifname in the current namespace.
func send(ifname string, frames [][]byte) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("announce on %s: %w", ifname, err)
	}
	// Protocol 0: the socket receives nothing, it only sends.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("announce on %s: packet socket: %w", ifname, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index}
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			return fmt.Errorf("announce on %s: send %d bytes: %w", ifname, len(f), err)
		}
	}
	return nil
}
