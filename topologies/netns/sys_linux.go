package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nodeSys is what a Lab keeps open per node: the namespace and a netlink
// socket inside it, so that link operations need no namespace switching.
type nodeSys struct {
	ns   netns.NsHandle
	nl   *netlink.Handle
	open bool
}

func (s *nodeSys) close() {
	if !s.open {
		return
	}
	s.nl.Close()
	s.ns.Close()
	s.open = false
}

func nsPath(name string) string { return filepath.Join(NetnsDir, name) }

// isNamespace reports whether path is a namespace bind mount (nsfs), not a
// leftover empty file from a run killed between create and mount.
func isNamespace(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

var netnsDirOnce struct {
	sync.Mutex
	done bool
}

// prepareNetnsDir creates NetnsDir and makes it a shared mount point, as
// iproute2 does, so that namespaces mounted under it are seen in every
// mount namespace (`ip netns exec` runs in a new one).
func prepareNetnsDir() error {
	netnsDirOnce.Lock()
	defer netnsDirOnce.Unlock()
	if netnsDirOnce.done {
		return nil
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", NetnsDir, err)
	}
	err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: bind it onto itself, then share it.
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", NetnsDir, err)
		}
		err = unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w (are you root?)", NetnsDir, err)
	}
	netnsDirOnce.done = true
	return nil
}

// openNode opens the existing namespace at path with a netlink handle in it.
func openNode(path string) (nodeSys, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nodeSys{}, fmt.Errorf("open namespace %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nodeSys{}, fmt.Errorf("netlink socket in %s: %w", path, err)
	}
	return nodeSys{ns: ns, nl: h, open: true}, nil
}

// nsMaker creates named namespaces on one locked OS thread. The thread
// unshares a fresh namespace per call and stays in it (the next unshare
// leaves it), so each namespace costs one unshare and one bind mount; Close
// puts the thread back where it started.
type nsMaker struct {
	orig netns.NsHandle
	tid  int
}

func newNsMaker() (*nsMaker, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open current namespace: %w", err)
	}
	return &nsMaker{orig: orig, tid: unix.Gettid()}, nil
}

// make creates namespace name under NetnsDir, brings its loopback up with
// alias on it, and returns it open.
func (m *nsMaker) make(name, alias string) (nodeSys, error) {
	path := nsPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nodeSys{}, fmt.Errorf("create namespace %s: %w", name, err)
	}
	f.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		os.Remove(path)
		return nodeSys{}, fmt.Errorf("create namespace %s: unshare: %w", name, err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", m.tid)
	if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return nodeSys{}, fmt.Errorf("create namespace %s: bind mount: %w", name, err)
	}
	ns, err := netns.GetFromPath(self)
	if err != nil {
		return nodeSys{}, fmt.Errorf("open namespace %s: %w", name, err)
	}
	// A handle made here talks to this namespace for its whole life.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nodeSys{}, fmt.Errorf("netlink socket in %s: %w", name, err)
	}
	s := nodeSys{ns: ns, nl: h, open: true}
	if err := setupLoopback(h, alias); err != nil {
		s.close()
		return nodeSys{}, fmt.Errorf("namespace %s: %w", name, err)
	}
	return s, nil
}

// setupLoopback brings lo up and marks it, which marks the namespace.
func setupLoopback(h *netlink.Handle, alias string) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if lo.Attrs().Alias != alias {
		if err := h.LinkSetAlias(lo, alias); err != nil {
			return fmt.Errorf("set alias of lo: %w", err)
		}
	}
	if lo.Attrs().RawFlags&unix.IFF_UP == 0 {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring lo up: %w", err)
		}
	}
	return nil
}

func (m *nsMaker) close() {
	err := netns.Set(m.orig)
	m.orig.Close()
	if err == nil {
		runtime.UnlockOSThread()
	}
	// Otherwise the thread stays locked and dies with its goroutine.
}

// removeNamespace unmounts and deletes a named namespace. It reports
// whether there was anything to remove.
func removeNamespace(name string) (bool, error) {
	path := nsPath(name)
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return false, fmt.Errorf("unmount namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("remove namespace %s: %w", name, err)
	}
	return true, nil
}
