package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/netbed/netbed/topologies"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Deploy realises t: one namespace per node, named t.LabPrefix()+node and
// bind-mounted under NetnsDir, and one veth pair per link with the
// topology's interface names and MTU, both ends created directly in their
// namespaces and up, loopbacks up. Every interface netbed creates carries
// the alias Alias(t.Name), and the lab's state is recorded under StateRoot
// before anything is created.
//
// Deploy is idempotent: namespaces and veth pairs that already exist as
// they should are kept; the Report tells what was created and what was
// present. On error, what was created stays (Destroy removes it) and the
// returned Lab is nil. opt may be nil.
func Deploy(ctx context.Context, t *topologies.Topology, opt *Options) (*Lab, *Report, error) {
	if err := checkTopology(t); err != nil {
		return nil, nil, fmt.Errorf("deploy: %w", err)
	}
	start := time.Now()
	root := opt.stateRoot()
	lab := newLab(t, func(n string) string { return t.LabPrefix() + n })
	lab.owned, lab.stateRoot = true, root

	// Open what exists first: a namespace of another lab under the name
	// this lab wants must stop Deploy before its state claims that name.
	if err := lab.openExisting(ctx, workerCount(opt, len(lab.order))); err != nil {
		lab.Close()
		return nil, nil, fmt.Errorf("deploy lab %s: %w", t.Name, err)
	}

	// Record the lab before creating anything, keeping namespaces an
	// earlier deploy of this lab listed so that Destroy still finds them.
	st := &State{Lab: t.Name, Backend: opt.backend()}
	seen := map[string]bool{}
	if old, _, err := readState(root, t.Name); err == nil {
		st.TempDirs, st.Created = old.TempDirs, old.Created
		for _, ns := range old.Namespaces {
			if !seen[ns] {
				seen[ns] = true
				st.Namespaces = append(st.Namespaces, ns)
			}
		}
	}
	for _, name := range lab.order {
		if ns := lab.nodes[name].Netns; !seen[ns] {
			seen[ns] = true
			st.Namespaces = append(st.Namespaces, ns)
		}
	}
	if err := writeState(root, st, t); err != nil {
		lab.Close()
		return nil, nil, fmt.Errorf("deploy lab %s: %w", t.Name, err)
	}
	if err := prepareNetnsDir(); err != nil {
		lab.Close()
		return nil, nil, fmt.Errorf("deploy lab %s: %w", t.Name, err)
	}

	rep := &Report{Lab: t.Name, Nodes: len(t.Nodes), Links: len(t.Links)}
	stage := time.Now()
	fresh, err := lab.deployNamespaces(ctx, workerCount(opt, len(lab.order)), rep)
	rep.NamespacesTook = time.Since(stage)
	if err == nil {
		stage = time.Now()
		err = lab.removeStaleLinks(ctx, workerCount(opt, len(lab.order)), fresh, rep)
		if err == nil {
			err = lab.deployLinks(ctx, workerCount(opt, len(t.Links)), fresh, rep)
		}
		rep.LinksTook = time.Since(stage)
	}
	if err == nil {
		err = lab.removeStaleNamespaces(ctx, opt, st, rep)
	}
	if err != nil {
		lab.Close()
		return nil, nil, fmt.Errorf("deploy lab %s: %w (run `netbed down %s` to remove what was created)", t.Name, err, t.Name)
	}
	st.Complete = true
	if err := writeState(root, st, nil); err != nil {
		lab.Close()
		return nil, nil, fmt.Errorf("deploy lab %s: %w", t.Name, err)
	}
	rep.Duration = time.Since(start)
	return lab, rep, nil
}

// removeStaleNamespaces removes the namespaces st lists that the lab no
// longer has (nodes an earlier deploy had), and drops them from st.
func (l *Lab) removeStaleNamespaces(ctx context.Context, opt *Options, st *State, rep *Report) error {
	current := map[string]bool{}
	for _, n := range l.nodes {
		current[n.Netns] = true
	}
	var stale []string
	for _, ns := range st.Namespaces {
		if !current[ns] {
			stale = append(stale, ns)
		}
	}
	var removed atomic.Int64
	err := pool(ctx, len(stale), workerCount(opt, len(stale)), simple(func(i int) error {
		ok, err := removeNamespace(stale[i])
		if ok {
			removed.Add(1)
		}
		return err
	}))
	rep.NamespacesRemoved = int(removed.Load())
	if err == nil {
		st.Namespaces = slices.DeleteFunc(st.Namespaces, func(ns string) bool { return !current[ns] })
	}
	return err
}

// openExisting opens the namespaces that already exist and checks that
// they are this lab's.
func (l *Lab) openExisting(ctx context.Context, workers int) error {
	alias := Alias(l.Name)
	return pool(ctx, len(l.order), workers, simple(func(i int) error {
		n := l.nodes[l.order[i]]
		if !isNamespace(n.Path()) {
			return nil
		}
		s, err := openNode(n.Path())
		if err == nil {
			err = checkOwner(n, s, alias)
			if err != nil {
				s.close()
			}
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		n.sys = s
		return nil
	}))
}

// deployNamespaces opens or creates every node's namespace and reports which
// ones it created.
func (l *Lab) deployNamespaces(ctx context.Context, workers int, rep *Report) (map[string]bool, error) {
	alias := Alias(l.Name)
	created := make([]bool, len(l.order))
	var present, made atomic.Int64
	err := pool(ctx, len(l.order), workers, func() (func(int) error, func(), error) {
		var m *nsMaker // made on first use: present namespaces need no thread
		job := func(i int) error {
			n := l.nodes[l.order[i]]
			if n.sys.open { // opened by openExisting
				if err := setupLoopback(n.sys.nl, alias); err != nil {
					return fmt.Errorf("node %s: %w", n.Name, err)
				}
				present.Add(1)
				return nil
			}
			// A file that is not a namespace is left by a run killed
			// between creating and mounting it.
			if _, err := removeNamespace(n.Netns); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			if m == nil {
				var err error
				if m, err = newNsMaker(); err != nil {
					return err
				}
			}
			s, err := m.make(n.Netns, alias)
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			n.sys = s
			created[i] = true
			if testHook != nil {
				testHook("namespace", int(made.Add(1)))
			}
			return nil
		}
		done := func() {
			if m != nil {
				m.close()
			}
		}
		return job, done, nil
	})
	fresh := make(map[string]bool, len(l.order))
	for i, c := range created {
		if c {
			fresh[l.order[i]] = true
			rep.NamespacesCreated++
		}
	}
	rep.NamespacesPresent = int(present.Load())
	return fresh, err
}

// testHook, when set by a test, is called after each namespace ("namespace")
// and link ("link") Deploy creates, with how many it created so far.
var testHook func(stage string, done int)

// checkOwner refuses a namespace Deploy did not make for this lab: a
// symlink (containerlab links its containers' namespaces so) or one whose
// loopback carries another lab's mark. An unmarked namespace is taken over:
// it is what a run killed right after creating it leaves.
func checkOwner(n *Node, s nodeSys, alias string) error {
	if fi, err := os.Lstat(n.Path()); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink, as containerlab makes: %w; remove that lab or rename this one", n.Path(), ErrForeign)
	}
	lo, err := s.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if a := lo.Attrs().Alias; a != "" && a != alias {
		return fmt.Errorf("namespace %s is marked %q: %w; remove that lab or rename this one", n.Netns, a, ErrForeign)
	}
	return nil
}

// removeStaleLinks deletes, in namespaces that existed before this deploy,
// interfaces carrying the lab's mark that the topology no longer has (a
// link removed or re-wired in the file since the last deploy).
func (l *Lab) removeStaleLinks(ctx context.Context, workers int, fresh map[string]bool, rep *Report) error {
	alias := Alias(l.Name)
	var removed atomic.Int64
	err := pool(ctx, len(l.order), workers, simple(func(i int) error {
		n := l.nodes[l.order[i]]
		if fresh[n.Name] {
			return nil
		}
		links, err := n.sys.nl.LinkList()
		if err != nil {
			return fmt.Errorf("node %s: list links: %w", n.Name, err)
		}
		for _, lk := range links {
			a := lk.Attrs()
			if a.Alias != alias || a.Name == "lo" || slices.Contains(n.Ifaces, a.Name) {
				continue
			}
			// Its peer may have gone already, taking this end with it.
			if err := n.sys.nl.LinkDel(lk); err != nil && !isNotFound(err) && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("node %s: remove stale %s: %w", n.Name, a.Name, err)
			}
			removed.Add(1)
		}
		return nil
	}))
	rep.LinksRemoved = int(removed.Load())
	return err
}

type linkOutcome int

const (
	linkCreated linkOutcome = iota
	linkPresent
	linkReplaced
	linkFixed
)

func (l *Lab) deployLinks(ctx context.Context, workers int, fresh map[string]bool, rep *Report) error {
	var counts [4]atomic.Int64
	alias := Alias(l.Name)
	err := pool(ctx, len(l.Topology.Links), workers, simple(func(i int) error {
		lk := l.Topology.Links[i]
		out, err := l.ensureLink(lk, i, fresh[lk.A.Node] && fresh[lk.B.Node], alias)
		if err != nil {
			return fmt.Errorf("link %s--%s: %w", lk.A, lk.B, err)
		}
		counts[out].Add(1)
		if testHook != nil {
			testHook("link", int(counts[linkCreated].Load()))
		}
		return nil
	}))
	rep.LinksCreated = int(counts[linkCreated].Load())
	rep.LinksPresent = int(counts[linkPresent].Load())
	rep.LinksReplaced = int(counts[linkReplaced].Load())
	rep.LinksFixed = int(counts[linkFixed].Load())
	return err
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ensureLink makes lk exist as a veth pair between its two namespaces. When
// both namespaces are new it creates the pair without looking.
func (l *Lab) ensureLink(lk *topologies.Link, pos int, fresh bool, alias string) (linkOutcome, error) {
	a, b := l.nodes[lk.A.Node], l.nodes[lk.B.Node]
	mtu := linkMTU(lk)
	if fresh {
		return linkCreated, createVeth(a, b, lk, pos, mtu, alias)
	}
	la, errA := a.sys.nl.LinkByName(lk.A.Iface)
	if errA != nil && !isNotFound(errA) {
		return 0, fmt.Errorf("look up %s: %w", lk.A, errA)
	}
	lb, errB := b.sys.nl.LinkByName(lk.B.Iface)
	if errB != nil && !isNotFound(errB) {
		return 0, fmt.Errorf("look up %s: %w", lk.B, errB)
	}
	if errA == nil && errB == nil && pairedVeths(a, la, b, lb) {
		fixed, err := fixEnd(a, la, mtu, alias)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", lk.A, err)
		}
		fixedB, err := fixEnd(b, lb, mtu, alias)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", lk.B, err)
		}
		if fixed || fixedB {
			return linkFixed, nil
		}
		return linkPresent, nil
	}
	out := linkCreated
	if errA == nil {
		if err := a.sys.nl.LinkDel(la); err != nil && !isNotFound(err) {
			return 0, fmt.Errorf("remove stale %s: %w", lk.A, err)
		}
		out = linkReplaced
	}
	if errB == nil {
		// Deleting a's old veth may have taken b's end with it.
		if err := b.sys.nl.LinkDel(lb); err != nil && !isNotFound(err) && !errors.Is(err, unix.ENODEV) {
			return 0, fmt.Errorf("remove stale %s: %w", lk.B, err)
		}
		out = linkReplaced
	}
	return out, createVeth(a, b, lk, pos, mtu, alias)
}

// pairedVeths reports whether la (in a) and lb (in b) are the two ends of
// one veth pair.
func pairedVeths(a *Node, la netlink.Link, b *Node, lb netlink.Link) bool {
	if la.Type() != "veth" || lb.Type() != "veth" {
		return false
	}
	if la.Attrs().ParentIndex != lb.Attrs().Index || lb.Attrs().ParentIndex != la.Attrs().Index {
		return false
	}
	// Index numbers are per namespace: check the peer's namespace too.
	idB, err := a.sys.nl.GetNetNsIdByFd(int(b.sys.ns))
	if err != nil || idB != la.Attrs().NetNsID {
		return false
	}
	idA, err := b.sys.nl.GetNetNsIdByFd(int(a.sys.ns))
	return err == nil && idA == lb.Attrs().NetNsID
}

// vethIndexes are the interface indexes of the ends of the lab's link at
// position pos: distinct from each other, and from every index the
// kernel gives on its own in a new namespace (it counts from 1). Equal
// indexes on the two ends of a veth (each namespace counts its own, so a
// spine's first link and a leaf's first link are both 2) make the kernel
// take the pair for a device that is its own lower device: the carrier
// event loses its urgency and waits for linkwatch's next one-second run.
func vethIndexes(pos int) (a, b int) { return 1<<20 + 2*pos, 1<<20 + 2*pos + 1 }

// addVethIndexed creates the veth pair of lk with the given interface
// indexes, which the netlink library cannot ask for: RTM_NEWLINK with the
// index in the ifinfomsg of each end, each end placed in its namespace.
func addVethIndexed(a, b *Node, lk *topologies.Link, mtu, ia, ib int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(ia)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(lk.A.Iface)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(a.sys.ns))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	pm := nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	pm.Index = int32(ib)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(lk.B.Iface))
	peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu)))
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(b.sys.ns)))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// fixEnd corrects the MTU, state and alias of an existing end.
func fixEnd(n *Node, lk netlink.Link, mtu int, alias string) (bool, error) {
	fixed := false
	if lk.Attrs().MTU != mtu {
		if err := n.sys.nl.LinkSetMTU(lk, mtu); err != nil {
			return false, fmt.Errorf("set MTU %d: %w", mtu, err)
		}
		fixed = true
	}
	if lk.Attrs().Alias != alias {
		if err := n.sys.nl.LinkSetAlias(lk, alias); err != nil {
			return false, fmt.Errorf("set alias: %w", err)
		}
		fixed = true
	}
	if lk.Attrs().RawFlags&unix.IFF_UP == 0 {
		if err := n.sys.nl.LinkSetUp(lk); err != nil {
			return false, fmt.Errorf("bring up: %w", err)
		}
		fixed = true
	}
	return fixed, nil
}

// createVeth creates the pair with each end born in its namespace under its
// final name (no move, no rename), then marks both ends and brings the
// peer up (the kernel takes IFF_UP only for the first end at creation).
// pos is the link's position in the lab: it gives the two ends distinct
// interface indexes (vethIndexes).
func createVeth(a, b *Node, lk *topologies.Link, pos, mtu int, alias string) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = lk.A.Iface
	attrs.MTU = mtu
	attrs.Flags = net.FlagUp
	attrs.Namespace = netlink.NsFd(a.sys.ns)
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      lk.B.Iface,
		PeerNamespace: netlink.NsFd(b.sys.ns),
		PeerTxQLen:    -1,
	}
	ia, ib := vethIndexes(pos)
	if err := addVethIndexed(a, b, lk, mtu, ia, ib); err != nil {
		// An index taken (a lab repaired after hand edits): let the
		// kernel pick.
		if err := a.sys.nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s--%s: %w", lk.A, lk.B, err)
		}
	}
	l, err := a.sys.nl.LinkByName(lk.A.Iface)
	if err != nil {
		return fmt.Errorf("find new %s: %w", lk.A, err)
	}
	veth.LinkAttrs = *l.Attrs()
	if err := a.sys.nl.LinkSetAlias(veth, alias); err != nil {
		return fmt.Errorf("set alias of %s: %w", lk.A, err)
	}
	peer, err := b.sys.nl.LinkByName(lk.B.Iface)
	if err != nil {
		return fmt.Errorf("find new peer %s: %w", lk.B, err)
	}
	if err := b.sys.nl.LinkSetAlias(peer, alias); err != nil {
		return fmt.Errorf("set alias of %s: %w", lk.B, err)
	}
	if err := b.sys.nl.LinkSetUp(peer); err != nil {
		return fmt.Errorf("bring up %s: %w", lk.B, err)
	}
	return nil
}
