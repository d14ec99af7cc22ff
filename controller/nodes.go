package controller

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// Buckets of the cluster pool.
const (
	bMeta  = "meta"  // "cluster_pool" -> ClusterPool
	bNodes = "nodes" // name -> Node
)

const keyClusterPool = "cluster_pool"

// ClusterPool is where generation 3's nodes get their pod CIDRs, as with
// Cilium's cluster-pool IPAM: CIDR cut into blocks of /MaskBits, one per
// node, handed out lowest first. Each node then allocates its pods'
// addresses from its block on its own.
type ClusterPool struct {
	CIDR     netip.Prefix `json:"cidr"`
	MaskBits int          `json:"mask_bits"`
}

// blocks is how many node blocks the pool holds.
func (p ClusterPool) blocks() uint64 { return 1 << (p.MaskBits - p.CIDR.Bits()) }

// block returns the i-th node block.
func (p ClusterPool) block(i uint64) netip.Prefix {
	a := p.CIDR.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) + uint32(i)<<(32-p.MaskBits)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.PrefixFrom(netip.AddrFrom4(a), p.MaskBits)
}

func (p ClusterPool) validate() error {
	field := func(f string, v any, why string) error {
		return &FieldError{Field: f, Value: fmt.Sprint(v), Reason: why}
	}
	switch {
	case !p.CIDR.IsValid() || !p.CIDR.Addr().Is4():
		return field("cidr", p.CIDR, "want an IPv4 CIDR such as 10.244.0.0/16")
	case p.CIDR.Masked() != p.CIDR:
		return field("cidr", p.CIDR, fmt.Sprintf("host bits set; did you mean %v?", p.CIDR.Masked()))
	case p.MaskBits < p.CIDR.Bits() || p.MaskBits > 30:
		return field("mask_bits", p.MaskBits, fmt.Sprintf("a node block must lie within %v and hold at least 4 addresses", p.CIDR))
	case p.MaskBits-p.CIDR.Bits() > 24:
		return field("mask_bits", p.MaskBits, "more than 16M node blocks")
	}
	return nil
}

// Node is a generation 3 node's block of the cluster pool.
type Node struct {
	Name    string       `json:"name"`
	PodCIDR netip.Prefix `json:"pod_cidr"`
	Created time.Time    `json:"created"`
}

// SetClusterPool sets the pool node blocks come from. Setting the pool it
// has is a no-op; changing it while nodes hold blocks is refused
// (ErrInUse): they would overlap or fall outside.
func (s *Service) SetClusterPool(ctx context.Context, p ClusterPool) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("cluster pool: %w", err)
	}
	return s.st.Update(ctx, func(tx store.Tx) error {
		var cur ClusterPool
		ok, err := getJSON(tx, bMeta, []byte(keyClusterPool), &cur)
		if err != nil || ok && cur == p {
			return err
		}
		if ok {
			nodes, err := listJSON[Node](tx, bNodes)
			if err != nil {
				return err
			}
			if len(nodes) > 0 {
				return fmt.Errorf("cluster pool %v/%d: %w: %d nodes hold blocks of %v/%d; delete them first", p.CIDR, p.MaskBits, ErrInUse, len(nodes), cur.CIDR, cur.MaskBits)
			}
		}
		return putJSON(tx, bMeta, []byte(keyClusterPool), p)
	})
}

// ClusterPool returns the pool, if one is set.
func (s *Service) ClusterPool(ctx context.Context) (ClusterPool, bool, error) {
	var p ClusterPool
	var ok bool
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		ok, err = getJSON(tx, bMeta, []byte(keyClusterPool), &p)
		return err
	})
	return p, ok, err
}

// EnsureNode returns node name's block of the cluster pool, giving it the
// lowest free one on its first call; created says it did. An exhausted
// pool is an *ipam.ExhaustedError naming it.
func (s *Service) EnsureNode(ctx context.Context, name string) (n Node, created bool, err error) {
	if err := validName("name", name); err != nil {
		return Node{}, false, fmt.Errorf("node: %w", err)
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		created = false
		ok, err := getJSON(tx, bNodes, []byte(name), &n)
		if err != nil || ok {
			return err
		}
		var p ClusterPool
		if ok, err := getJSON(tx, bMeta, []byte(keyClusterPool), &p); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: no cluster pool for node blocks (netbed controller serve --cluster-cidr)", ErrNotFound)
		}
		nodes, err := listJSON[Node](tx, bNodes)
		if err != nil {
			return err
		}
		used := make(map[netip.Prefix]bool, len(nodes))
		for _, o := range nodes {
			used[o.PodCIDR] = true
		}
		for i := uint64(0); i < p.blocks(); i++ {
			if b := p.block(i); !used[b] {
				n, created = Node{Name: name, PodCIDR: b, Created: s.clock.Now()}, true
				return putJSON(tx, bNodes, []byte(name), n)
			}
		}
		return &ipam.ExhaustedError{Pools: []string{fmt.Sprintf("cluster pool %v in /%d blocks", p.CIDR, p.MaskBits)}}
	})
	if err != nil {
		return Node{}, false, fmt.Errorf("node %q: %w", name, err)
	}
	return n, created, nil
}

// ListNodes returns every node with its block, by name.
func (s *Service) ListNodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		out, err = listJSON[Node](tx, bNodes)
		return err
	})
	return out, err
}

// DeleteNode gives node name's block back to the pool.
func (s *Service) DeleteNode(ctx context.Context, name string) (Node, error) {
	var n Node
	err := s.st.Update(ctx, func(tx store.Tx) error {
		ok, err := getJSON(tx, bNodes, []byte(name), &n)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("node %q: %w", name, ErrNotFound)
		}
		return tx.Delete(bNodes, []byte(name))
	})
	return n, err
}
