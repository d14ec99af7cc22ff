package ktrace

import (
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel"
)

// Namespaces is a Resolver over named network namespaces: a lab's nodes
// and its instances. Interface names are asked of netlink in the
// namespace once per index, and remembered.
type Namespaces struct {
	mu      sync.Mutex
	byInode map[uint32]*namespace
	byName  map[string]uint32
}

type namespace struct {
	name   string
	h      *netlink.Handle
	ifaces map[uint32]string
}

var _ Resolver = (*Namespaces)(nil)

// NewNamespaces returns an empty resolver.
func NewNamespaces() *Namespaces {
	return &Namespaces{byInode: map[uint32]*namespace{}, byName: map[string]uint32{}}
}

// Inode is the inode number of the network namespace ns, as the kernel
// programs report it.
func Inode(ns netns.NsHandle) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		return 0, fmt.Errorf("stat namespace: %w", err)
	}
	return uint32(st.Ino), nil
}

// Add names the namespace ns (which the caller keeps open or closes as it
// likes). Adding a name again replaces it.
func (n *Namespaces) Add(name string, ns netns.NsHandle) error {
	ino, err := Inode(ns)
	if err != nil {
		return fmt.Errorf("name namespace %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("name namespace %s: netlink: %w", name, err)
	}
	n.Remove(name)
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.byInode[ino]; ok {
		old.h.Close()
		delete(n.byName, old.name)
	}
	n.byInode[ino] = &namespace{name: name, h: h, ifaces: map[uint32]string{}}
	n.byName[name] = ino
	return nil
}

// AddLab names every node's namespace of lab.
func (n *Namespaces) AddLab(lab kernel.Lab) error {
	for _, node := range lab.Nodes() {
		ns, err := lab.NsHandle(node)
		if err != nil {
			return fmt.Errorf("name node %s: %w", node, err)
		}
		if err := n.Add(node, ns); err != nil {
			return err
		}
	}
	return nil
}

// Remove forgets name; removing an unknown name does nothing.
func (n *Namespaces) Remove(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ino, ok := n.byName[name]
	if !ok {
		return
	}
	n.byInode[ino].h.Close()
	delete(n.byInode, ino)
	delete(n.byName, name)
}

// Close forgets every namespace.
func (n *Namespaces) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ns := range n.byInode {
		ns.h.Close()
	}
	clear(n.byInode)
	clear(n.byName)
}

// Resolve implements Resolver. A device netlink cannot find (deleted
// since) is named "if<index>".
func (n *Namespaces) Resolve(inode, ifindex uint32) (string, string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ns, ok := n.byInode[inode]
	if !ok {
		return "", "", false
	}
	if ifindex == 0 {
		return ns.name, "", true
	}
	if name, ok := ns.ifaces[ifindex]; ok {
		return ns.name, name, true
	}
	name := fmt.Sprintf("if%d", ifindex)
	if l, err := ns.h.LinkByIndex(int(ifindex)); err == nil {
		name = l.Attrs().Name
		ns.ifaces[ifindex] = name
	}
	return ns.name, name, true
}
