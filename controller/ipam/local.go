package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"sync"
)

// MaxNodeHostBits caps a node CIDR's size (2^24 addresses, a 2 MiB bitmap).
const MaxNodeHostBits = 24

// NodePool allocates the addresses of one node's CIDR: a bitmap with a
// next-free cursor, in memory. The first address after the network address
// is the node's gateway (cilium_host) and is held from the start, as are the
// network address and, for IPv4, the broadcast address. A NodePool is safe
// for concurrent use.
type NodePool struct {
	mu     sync.Mutex
	cidr   netip.Prefix
	size   uint32 // addresses in cidr
	words  []uint64
	used   uint32 // bits set, including the reserved ones
	cursor uint32 // next index to try
}

// NewNodePool returns the pool of cidr with the reserved addresses held.
func NewNodePool(cidr netip.Prefix) (*NodePool, error) {
	if !cidr.IsValid() {
		return nil, fmt.Errorf("node pool: invalid CIDR")
	}
	cidr = cidr.Masked()
	host := cidr.Addr().BitLen() - cidr.Bits()
	if host > MaxNodeHostBits {
		return nil, fmt.Errorf("node pool %v: %d host bits, at most %d (use a longer prefix per node)", cidr, host, MaxNodeHostBits)
	}
	if host < 2 {
		return nil, fmt.Errorf("node pool %v: too small for a gateway and one address (use /30 or shorter for IPv4, /126 for IPv6)", cidr)
	}
	size := uint32(1) << host
	p := &NodePool{cidr: cidr, size: size, words: make([]uint64, (size+63)/64)}
	p.set(0)
	p.set(1)
	if cidr.Addr().Is4() {
		p.set(size - 1)
	}
	p.cursor = 2
	return p, nil
}

// CIDR is the node's CIDR.
func (p *NodePool) CIDR() netip.Prefix { return p.cidr }

// Gateway is the node gateway: the first address after the network address.
func (p *NodePool) Gateway() netip.Addr { return p.addr(1) }

// Size is the number of addresses that can be allocated (reserved ones excluded).
func (p *NodePool) Size() int {
	if p.cidr.Addr().Is4() {
		return int(p.size) - 3
	}
	return int(p.size) - 2
}

// Used is the number of addresses allocated (reserved ones excluded).
func (p *NodePool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.used) - (int(p.size) - p.Size())
}

func (p *NodePool) set(i uint32) {
	p.words[i>>6] |= 1 << (i & 63)
	p.used++
}

func (p *NodePool) isSet(i uint32) bool { return p.words[i>>6]&(1<<(i&63)) != 0 }

func (p *NodePool) addr(i uint32) netip.Addr {
	a, _ := add(p.cidr.Addr(), uint64(i))
	return a
}

func (p *NodePool) index(a netip.Addr) (uint32, error) {
	if !p.cidr.Contains(a) {
		return 0, fmt.Errorf("%v: %w %v", a, ErrOutOfRange, p.cidr)
	}
	return uint32(diff(a, p.cidr.Addr())), nil
}

// Allocate hands out the next free address at or after the cursor, wrapping
// around; an *ExhaustedError when the CIDR is full.
func (p *NodePool) Allocate() (netip.Addr, error) {
	p.mu.Lock()
	i, ok := p.allocLocked()
	p.mu.Unlock()
	if !ok {
		return netip.Addr{}, &ExhaustedError{Pools: []string{p.cidr.String()}}
	}
	return p.addr(i), nil
}

func (p *NodePool) allocLocked() (uint32, bool) {
	if p.used >= p.size {
		return 0, false
	}
	n := uint32(len(p.words))
	w := p.cursor >> 6
	// First word: mask off bits below the cursor.
	// Bits past the pool's end count as free here; take refuses them and
	// the search goes on from the next word (wrapping to this one).
	if free := ^p.words[w] &^ (1<<(p.cursor&63) - 1); free != 0 {
		if i, ok := p.take(w, free); ok {
			return i, true
		}
	}
	for k := uint32(1); k <= n; k++ {
		wi := (w + k) % n
		if free := ^p.words[wi]; free != 0 {
			if i, ok := p.take(wi, free); ok {
				return i, true
			}
		}
	}
	return 0, false
}

func (p *NodePool) take(w uint32, free uint64) (uint32, bool) {
	i := w<<6 + uint32(bits.TrailingZeros64(free))
	if i >= p.size {
		return 0, false
	}
	p.words[w] |= 1 << (i & 63)
	p.used++
	p.cursor = i + 1
	if p.cursor >= p.size {
		p.cursor = 0
	}
	return i, true
}

// Reserve holds the specific address a.
func (p *NodePool) Reserve(a netip.Addr) error {
	i, err := p.index(a)
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isSet(i) {
		return fmt.Errorf("reserve %v: %w", a, ErrAddressInUse)
	}
	p.set(i)
	return nil
}

// Release frees a; the gateway and other reserved addresses cannot be freed.
func (p *NodePool) Release(a netip.Addr) error {
	i, err := p.index(a)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if i <= 1 || (p.cidr.Addr().Is4() && i == p.size-1) {
		return fmt.Errorf("release %v: reserved address of %v (network, gateway or broadcast)", a, p.cidr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isSet(i) {
		return fmt.Errorf("release %v: %w", a, ErrNotAllocated)
	}
	p.words[i>>6] &^= 1 << (i & 63)
	p.used--
	return nil
}

// InUse reports whether a is held (reserved addresses included).
func (p *NodePool) InUse(a netip.Addr) bool {
	i, err := p.index(a)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isSet(i)
}

type nodePoolJSON struct {
	CIDR   netip.Prefix `json:"cidr"`
	Cursor uint32       `json:"cursor"`
	Words  []uint64     `json:"bitmap"`
}

// MarshalJSON saves the pool's state.
func (p *NodePool) MarshalJSON() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return json.Marshal(nodePoolJSON{CIDR: p.cidr, Cursor: p.cursor, Words: p.words})
}

// UnmarshalJSON restores a pool saved by MarshalJSON.
func (p *NodePool) UnmarshalJSON(b []byte) error {
	var j nodePoolJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("node pool: %w", err)
	}
	q, err := NewNodePool(j.CIDR)
	if err != nil {
		return err
	}
	if len(j.Words) != len(q.words) || j.Cursor >= q.size {
		return fmt.Errorf("node pool %v: saved bitmap of %d words and cursor %d do not fit the CIDR", j.CIDR, len(j.Words), j.Cursor)
	}
	q.used = 0
	for wi, w := range j.Words {
		q.used += uint32(bits.OnesCount64(w))
		q.words[wi] = w
	}
	// Reserved addresses stay reserved whatever the file says.
	for _, i := range []uint32{0, 1} {
		if !q.isSet(i) {
			q.set(i)
		}
	}
	if q.cidr.Addr().Is4() && !q.isSet(q.size-1) {
		q.set(q.size - 1)
	}
	q.cursor = j.Cursor
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cidr, p.size, p.words, p.used, p.cursor = q.cidr, q.size, q.words, q.used, q.cursor
	return nil
}

// ErrUnknownNode: a node without a CIDR was asked for an address.
var ErrUnknownNode = errors.New("node has no CIDR")

// Local is the third generation's IPAM: a cluster CIDR carved into one CIDR
// per node; each node allocates only inside its own. Safe for concurrent use.
type Local struct {
	mu      sync.Mutex
	cluster netip.Prefix
	nodeLen int
	slots   uint32 // node CIDRs in the cluster CIDR
	next    uint32
	byNode  map[string]uint32
	taken   map[uint32]string
	pools   map[string]*NodePool
}

// MaxNodeSlots caps how many node CIDRs a cluster CIDR is carved into.
const MaxNodeSlots = 1 << 20

// NewLocal carves cluster into node CIDRs of prefix length nodeLen, e.g.
// 10.0.0.0/16 into /24s.
func NewLocal(cluster netip.Prefix, nodeLen int) (*Local, error) {
	if !cluster.IsValid() {
		return nil, fmt.Errorf("local IPAM: invalid cluster CIDR")
	}
	cluster = cluster.Masked()
	if nodeLen < cluster.Bits() || nodeLen > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("local IPAM: node prefix /%d must lie between the cluster's /%d and /%d", nodeLen, cluster.Bits(), cluster.Addr().BitLen())
	}
	if cluster.Addr().BitLen()-nodeLen > MaxNodeHostBits || cluster.Addr().BitLen()-nodeLen < 2 {
		return nil, fmt.Errorf("local IPAM: node prefix /%d gives node CIDRs of unusable size (2 to %d host bits)", nodeLen, MaxNodeHostBits)
	}
	if nodeLen-cluster.Bits() > 20 {
		return nil, fmt.Errorf("local IPAM: %v into /%d makes more than %d node CIDRs", cluster, nodeLen, MaxNodeSlots)
	}
	return &Local{
		cluster: cluster, nodeLen: nodeLen, slots: 1 << (nodeLen - cluster.Bits()),
		byNode: map[string]uint32{}, taken: map[uint32]string{}, pools: map[string]*NodePool{},
	}, nil
}

// Cluster is the cluster CIDR.
func (l *Local) Cluster() netip.Prefix { return l.cluster }

func (l *Local) slotPrefix(s uint32) netip.Prefix {
	host := l.cluster.Addr().BitLen() - l.nodeLen
	a, _ := add(l.cluster.Addr(), uint64(s)<<host)
	return netip.PrefixFrom(a, l.nodeLen)
}

// AssignNode gives node a CIDR (the same one again if it has one already).
func (l *Local) AssignNode(node string) (netip.Prefix, error) {
	if node == "" {
		return netip.Prefix{}, fmt.Errorf("assign node CIDR: empty node name")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.byNode[node]; ok {
		return l.slotPrefix(s), nil
	}
	if uint32(len(l.taken)) >= l.slots {
		return netip.Prefix{}, fmt.Errorf("assign node %q a CIDR: %w", node, &ExhaustedError{Pools: []string{fmt.Sprintf("%v in /%d per node", l.cluster, l.nodeLen)}})
	}
	for {
		s := l.next
		l.next = (l.next + 1) % l.slots
		if _, used := l.taken[s]; !used {
			p, err := NewNodePool(l.slotPrefix(s))
			if err != nil {
				return netip.Prefix{}, err
			}
			l.byNode[node], l.taken[s], l.pools[node] = s, node, p
			return p.CIDR(), nil
		}
	}
}

// RemoveNode frees node's CIDR (and every address in it).
func (l *Local) RemoveNode(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.byNode[node]; ok {
		delete(l.taken, s)
		delete(l.byNode, node)
		delete(l.pools, node)
	}
}

// Node returns node's pool, or ErrUnknownNode.
func (l *Local) Node(node string) (*NodePool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.pools[node]
	if !ok {
		return nil, fmt.Errorf("node %q: %w in %v (assign it one first)", node, ErrUnknownNode, l.cluster)
	}
	return p, nil
}

// Nodes lists the nodes with a CIDR, sorted.
func (l *Local) Nodes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.byNode))
	for n := range l.byNode {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Allocate hands out an address of node's CIDR.
func (l *Local) Allocate(node string) (netip.Addr, error) {
	p, err := l.Node(node)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("allocate: %w", err)
	}
	a, err := p.Allocate()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("allocate on node %q: %w", node, err)
	}
	return a, nil
}

// Release frees a on node.
func (l *Local) Release(node string, a netip.Addr) error {
	p, err := l.Node(node)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return p.Release(a)
}

type localJSON struct {
	Cluster netip.Prefix         `json:"cluster"`
	NodeLen int                  `json:"node_prefix_len"`
	Next    uint32               `json:"next"`
	Nodes   map[string]*NodePool `json:"nodes"`
}

// MarshalJSON saves the whole local IPAM (persist it in a file or a store).
func (l *Local) MarshalJSON() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return json.Marshal(localJSON{Cluster: l.cluster, NodeLen: l.nodeLen, Next: l.next, Nodes: l.pools})
}

// UnmarshalJSON restores a local IPAM saved by MarshalJSON.
func (l *Local) UnmarshalJSON(b []byte) error {
	var j localJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("local IPAM: %w", err)
	}
	n, err := NewLocal(j.Cluster, j.NodeLen)
	if err != nil {
		return err
	}
	for node, p := range j.Nodes {
		if p == nil {
			return fmt.Errorf("local IPAM: node %q has no saved pool", node)
		}
		c := p.CIDR()
		if c.Bits() != n.nodeLen || !n.cluster.Contains(c.Addr()) {
			return fmt.Errorf("local IPAM: node %q CIDR %v is not a /%d of %v", node, c, n.nodeLen, n.cluster)
		}
		s := uint32(diff(c.Addr(), n.cluster.Addr()) >> (n.cluster.Addr().BitLen() - n.nodeLen))
		if other, dup := n.taken[s]; dup {
			return fmt.Errorf("local IPAM: nodes %q and %q share CIDR %v", other, node, c)
		}
		n.byNode[node], n.taken[s], n.pools[node] = s, node, p
	}
	n.next = j.Next % n.slots
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cluster, l.nodeLen, l.slots, l.next, l.byNode, l.taken, l.pools = n.cluster, n.nodeLen, n.slots, n.next, n.byNode, n.taken, n.pools
	return nil
}
