package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/netbed/netbed/topologies"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Attach opens a lab that is already deployed, by netbed or by anyone who
// named namespaces t.LabPrefix()+node under NetnsDir (containerlab links its
// containers' namespaces there), without creating anything. It checks that
// every node's namespace and every interface of the topology exist; what is
// missing is reported at once and wraps ErrNotDeployed.
func Attach(t *topologies.Topology) (*Lab, error) {
	if err := checkTopology(t); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	return attach(newLab(t, func(n string) string { return t.LabPrefix() + n }))
}

// AttachLab attaches to the lab called name: a lab netbed deployed (found
// through its state), or else a containerlab lab whose directory
// clab-<name>/ with topology-data.json is in the current directory.
// opt may be nil.
func AttachLab(name string, opt *Options) (*Lab, error) {
	root := opt.stateRoot()
	_, t, err := readState(root, name)
	if err == nil && t != nil {
		l, err := Attach(t)
		if err != nil {
			return nil, err
		}
		l.owned, l.stateRoot = true, root
		return l, nil
	}
	l, cerr := AttachClab(filepath.Join("clab-"+name, ClabDataFile))
	if errors.Is(cerr, errNoClabData) {
		return nil, fmt.Errorf("attach lab %s: no netbed state in %s and no containerlab clab-%s/%s here: %w; deploy it with `netbed up`",
			name, labDir(root, name), name, ClabDataFile, ErrNotDeployed)
	}
	return l, cerr
}

// AttachClab attaches to a lab containerlab deployed, described by its
// topology-data.json (path may also be the clab-<lab> directory holding it).
func AttachClab(path string) (*Lab, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ClabDataFile)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("attach: %s: %w", path, errNoClabData)
	}
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	cl, err := ParseClabData(b)
	if err != nil {
		return nil, fmt.Errorf("attach: %s: %w", path, err)
	}
	if err := checkTopology(cl.Topology); err != nil {
		return nil, fmt.Errorf("attach: %s: %w", path, err)
	}
	return attach(newLab(cl.Topology, func(n string) string { return cl.Netns[n] }))
}

func attach(l *Lab) (*Lab, error) {
	errs := make([]error, len(l.order))
	err := pool(context.Background(), len(l.order), workerCount(nil, len(l.order)), simple(func(i int) error {
		n := l.nodes[l.order[i]]
		if !isNamespace(n.Path()) {
			errs[i] = fmt.Errorf("node %s: namespace %s: %w", n.Name, n.Path(), ErrNotDeployed)
			return nil
		}
		s, err := openNode(n.Path())
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		n.sys = s
		var missing []error
		for _, ifc := range n.Ifaces {
			if _, err := s.nl.LinkByName(ifc); err != nil {
				missing = append(missing, fmt.Errorf("node %s: interface %s in namespace %s: %w", n.Name, ifc, n.Netns, ErrNotDeployed))
			}
		}
		errs[i] = errors.Join(missing...)
		return nil
	}))
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("attach lab %s: %w", l.Name, err)
	}
	return l, nil
}

// Close releases the lab's open namespaces and netlink sockets. It removes
// nothing; a namespace stays alive while anything holds it open, so close a
// Lab before checking that Destroy removed everything.
func (l *Lab) Close() error {
	for _, n := range l.nodes {
		n.sys.close()
	}
	return nil
}

// Destroy closes the lab and removes it (see the package function Destroy).
// Only a lab netbed deployed can be destroyed this way; a containerlab lab
// is containerlab's to remove.
func (l *Lab) Destroy() (*DestroyReport, error) {
	l.Close()
	if !l.owned {
		return nil, fmt.Errorf("destroy lab %s: it was not deployed by netbed; remove it with the tool that deployed it", l.Name)
	}
	return Destroy(l.Name, &Options{StateRoot: l.stateRoot})
}

func (l *Lab) open(node string) (*Node, error) {
	n, err := l.Node(node)
	if err != nil {
		return nil, err
	}
	if !n.sys.open {
		return nil, fmt.Errorf("lab %s: node %s: lab is closed", l.Name, node)
	}
	return n, nil
}

// Handle returns a netlink handle whose requests act inside node's
// namespace. The Lab owns it: do not close it.
func (l *Lab) Handle(node string) (*netlink.Handle, error) {
	n, err := l.open(node)
	if err != nil {
		return nil, err
	}
	return n.sys.nl, nil
}

// NsHandle returns node's open namespace. The Lab owns it: do not close it.
func (l *Lab) NsHandle(node string) (netns.NsHandle, error) {
	n, err := l.open(node)
	if err != nil {
		return netns.None(), err
	}
	return n.sys.ns, nil
}

// Do runs fn on a locked OS thread inside node's namespace and returns its
// error. Sockets fn opens stay in that namespace after it returns; fn must
// not start goroutines that expect to inherit the namespace.
func (l *Lab) Do(node string, fn func() error) error {
	n, err := l.open(node)
	if err != nil {
		return err
	}
	return DoIn(n.sys.ns, fn)
}

// DoIn runs fn on a locked OS thread inside the namespace ns.
func DoIn(ns netns.NsHandle, fn func() error) error {
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			res <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine
			// rather than serve others from the wrong namespace.
			res <- errors.Join(ferr, fmt.Errorf("leave namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		res <- ferr
	}()
	return <-res
}

// WaitUp waits until every interface that is up on every node is also
// operationally up: the kernel sets carrier on a new veth a moment after
// both ends come up, and a frame sent before is lost. It gives up at
// timeout, naming an interface still down.
func (l *Lab) WaitUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range l.Nodes() {
		h, err := l.Handle(n)
		if err != nil {
			return err
		}
		for {
			links, err := h.LinkList()
			if err != nil {
				return fmt.Errorf("node %s: list links: %w", n, err)
			}
			down := ""
			for _, lk := range links {
				a := lk.Attrs()
				if a.Name != "lo" && a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperUp {
					down = a.Name
					break
				}
			}
			if down == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s: interface %s is not operationally up after %v", n, down, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}
