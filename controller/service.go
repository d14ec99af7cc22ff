package controller

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// Buckets the service keeps in the store (besides ipam's).
const (
	bNetworks    = "networks"         // id -> Network
	bNetName     = "networks.name"    // name -> id
	bNetLabel    = "networks.label"   // label 0 id -> ""
	bNetSegment  = "networks.segment" // segment string -> id
	bSubnets     = "subnets"          // id -> Subnet
	bSubnetByNet = "subnets.net"      // network id 0 subnet id -> ""
	bPorts       = "ports"            // id -> Port
	bPortName    = "ports.name"       // name -> id
	bPortHost    = "ports.host"       // host 0 id -> ""
	bPortMAC     = "ports.mac"        // network id 0 mac -> id
	bNetMACSeq   = "networks.macseq"  // network id -> last generated MAC counter
)

// Buckets lists every bucket the service and its IPAM use, for dumps.
var Buckets = []string{bNetworks, bNetName, bNetLabel, bNetSegment, bNetMACSeq, bSubnets, bSubnetByNet,
	bPorts, bPortName, bPortHost, bPortMAC, bMeta, bNodes, ipam.BucketAddrs, ipam.BucketPools}

const portHolderPrefix = "port:"

// Service is the network service: networks, subnets, ports and addresses in
// a Store, with an Overlay hook told of port bindings. Safe for concurrent
// use. Every method that changes state does so in one store transaction.
type Service struct {
	st        store.Store
	overlayMu sync.RWMutex
	overlay   Overlay
	clock     Clock
	// feed is set when the store tells of changes other replicas commit
	// (store.Watcher): then overlay hooks and waiters follow the store's
	// change feed, for every replica's commits, instead of this one's.
	feed     bool
	stopFeed func()

	hookCtx  context.Context
	stopHook context.CancelFunc
	hookMu   sync.Mutex
	hookQ    map[string][]func(context.Context) // per port, in commit order
	hooks    sync.WaitGroup
	closed   bool

	watchMu  sync.Mutex
	watchers map[string]chan struct{}
}

// New returns a service over st. overlay may be nil (nothing programs the
// fabric; overlay states then change only by SetOverlayState); clock nil
// means the wall clock.
//
// Overlay calls happen after the change they report has committed, in a
// goroutine per port: the calls for one port arrive one at a time in commit
// order (bind, move, delete), calls for different ports run concurrently.
// Close cancels their context and waits for them.
func New(st store.Store, overlay Overlay, clock Clock) *Service {
	if clock == nil {
		clock = SystemClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{st: st, overlay: overlay, clock: clock, hookCtx: ctx, stopHook: cancel, hookQ: map[string][]func(context.Context){}, watchers: map[string]chan struct{}{}}
	if w, ok := st.(store.Watcher); ok {
		s.feed = true
		s.stopFeed = w.Watch(bPorts, s.portChanged)
	}
	return s
}

// SetOverlay sets the overlay hook (nil: none). The CNC needs the service
// to exist before it can be built; a replica that wins the CNC's election
// sets it, and one that loses leadership clears it.
func (s *Service) SetOverlay(o Overlay) {
	s.overlayMu.Lock()
	defer s.overlayMu.Unlock()
	s.overlay = o
}

func (s *Service) getOverlay() Overlay {
	s.overlayMu.RLock()
	defer s.overlayMu.RUnlock()
	return s.overlay
}

// portChanged follows the store's change feed of ports, committed by any
// replica: it wakes the port's waiters and tells the overlay of a new
// binding or an unbinding, as changed and DeletePort do for one process.
func (s *Service) portChanged(_, old, new []byte) {
	var before, after Port
	if old != nil && json.Unmarshal(old, &before) != nil {
		return
	}
	if new != nil && json.Unmarshal(new, &after) != nil {
		return
	}
	if new == nil {
		s.notify(before.Name)
		if o := s.getOverlay(); o != nil && before.Host != "" {
			s.runHook(before.Name, func(ctx context.Context) { o.PortUnbound(ctx, before, before.Host) })
		}
		return
	}
	s.notify(after.Name)
	if after.Host == before.Host {
		return
	}
	if o := s.getOverlay(); o != nil {
		switch {
		case after.Host != "":
			s.runHook(after.Name, func(ctx context.Context) { o.PortBound(ctx, after, before.Host) })
		default:
			s.runHook(after.Name, func(ctx context.Context) { o.PortUnbound(ctx, after, before.Host) })
		}
	}
}

// Store returns the service's store.
func (s *Service) Store() store.Store { return s.st }

// Close cancels running overlay hooks and waits for them. It does not close
// the store.
func (s *Service) Close() {
	if s.stopFeed != nil {
		s.stopFeed()
	}
	s.hookMu.Lock()
	s.closed = true
	s.hookMu.Unlock()
	s.stopHook()
	s.hooks.Wait()
}

// newID returns prefix, 12 hex digits of the time and 6 random ones: unique,
// and roughly ordered by creation so that new records append to the store's
// B+tree instead of dirtying random pages.
func newID(prefix string) string {
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()>>10)<<16) // ~µs, wraps in 8.9 years
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func key(parts ...string) []byte { return []byte(strings.Join(parts, "\x00")) }

func getJSON(tx store.Tx, bucket string, k []byte, v any) (bool, error) {
	b := tx.Get(bucket, k)
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("decode %s/%s: %w", bucket, k, err)
	}
	return true, nil
}

// scanJSON decodes every value of bucket, in key order, calling fn with
// its key.
func scanJSON[T any](tx store.Tx, bucket string, fn func(k []byte, v T)) error {
	var derr error
	err := tx.Scan(bucket, nil, nil, func(k, b []byte) bool {
		var v T
		if derr = json.Unmarshal(b, &v); derr != nil {
			derr = fmt.Errorf("decode %s/%s: %w", bucket, k, derr)
			return false
		}
		fn(k, v)
		return true
	})
	if derr != nil {
		return derr
	}
	return err
}

// listJSON decodes every value of bucket, in key order.
func listJSON[T any](tx store.Tx, bucket string) ([]T, error) {
	var out []T
	err := scanJSON(tx, bucket, func(_ []byte, v T) { out = append(out, v) })
	return out, err
}

func putJSON(tx store.Tx, bucket string, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, k, b)
}

// ---- networks ----

// CreateNetwork validates r and stores a new network.
func (s *Service) CreateNetwork(ctx context.Context, r NetworkRequest) (Network, error) {
	if err := r.validate(); err != nil {
		return Network{}, fmt.Errorf("create network %q: %w", r.Name, err)
	}
	n := Network{ID: newID("net-"), Name: r.Name, Labels: append([]string(nil), r.Labels...), Tenant: r.Tenant, Segment: r.Segment, Created: s.clock.Now()}
	sort.Strings(n.Labels)
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if id := tx.Get(bNetName, []byte(n.Name)); id != nil {
			return fmt.Errorf("%w: network %q (id %s); pick another name", ErrExists, n.Name, id)
		}
		if n.Segment.Type != SegmentNone {
			if id := tx.Get(bNetSegment, []byte(n.Segment.String())); id != nil {
				return fmt.Errorf("%w: segment %v is used by network %s; pick a free ID", ErrExists, n.Segment, id)
			}
			if err := tx.Put(bNetSegment, []byte(n.Segment.String()), []byte(n.ID)); err != nil {
				return err
			}
		}
		for _, l := range n.Labels {
			if err := tx.Put(bNetLabel, key(l, n.ID), nil); err != nil {
				return err
			}
		}
		if err := tx.Put(bNetName, []byte(n.Name), []byte(n.ID)); err != nil {
			return err
		}
		return putJSON(tx, bNetworks, []byte(n.ID), n)
	})
	if err != nil {
		return Network{}, fmt.Errorf("create network %q: %w", r.Name, err)
	}
	return n, nil
}

// resolveNetwork finds a network by ID or name.
func resolveNetwork(tx store.Tx, ref string) (Network, error) {
	n, ok, err := networkMemo.get(tx, bNetworks, []byte(ref))
	if ok || err != nil {
		return n, err
	}
	id := tx.Get(bNetName, []byte(ref))
	if id == nil {
		return n, fmt.Errorf("network %q: %w (list networks to see the names)", ref, ErrNotFound)
	}
	n, _, err = networkMemo.get(tx, bNetworks, id)
	return n, err
}

// GetNetwork returns a network by ID or name.
func (s *Service) GetNetwork(ctx context.Context, ref string) (Network, error) {
	var n Network
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		n, err = resolveNetwork(tx, ref)
		return err
	})
	return n, err
}

// ListNetworks returns the networks, sorted by name; with label, only those
// carrying it.
func (s *Service) ListNetworks(ctx context.Context, label string) ([]Network, error) {
	var out []Network
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		if label != "" {
			out, err = labelNetworks(tx, label)
			return err
		}
		if out, err = listJSON[Network](tx, bNetworks); err != nil {
			return err
		}
		sortNetworks(out)
		return nil
	})
	return out, err
}

func sortNetworks(ns []Network) {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].Name != ns[j].Name {
			return ns[i].Name < ns[j].Name
		}
		return ns[i].ID < ns[j].ID
	})
}

// labelNetworks returns the networks carrying label in the order label
// allocation tries them: by name, then ID.
func labelNetworks(tx store.Tx, label string) ([]Network, error) {
	out, err := networkMemo.indexed(tx, bNetLabel, key(label, ""), bNetworks)
	if err != nil {
		return nil, err
	}
	sortNetworks(out)
	return out, nil
}

// ---- subnets ----

// CreateSubnet validates r and adds a subnet to its network. It refuses a
// CIDR overlapping another subnet of the same network.
func (s *Service) CreateSubnet(ctx context.Context, r SubnetRequest) (Subnet, error) {
	sub, err := r.buildSubnet()
	if err != nil {
		return Subnet{}, fmt.Errorf("create subnet %v: %w", r.CIDR, err)
	}
	sub.ID = newID("sub-")
	sub.Created = s.clock.Now()
	err = s.st.Update(ctx, func(tx store.Tx) error {
		n, err := resolveNetwork(tx, r.Network)
		if err != nil {
			return err
		}
		sub.Network = n.ID
		others, err := networkSubnets(tx, n.ID)
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.CIDR.Overlaps(sub.CIDR) {
				return fmt.Errorf("%w subnet %s (%v) of network %q; pick a disjoint CIDR", ErrOverlap, o.ID, o.CIDR, n.Name)
			}
		}
		if err := tx.Put(bSubnetByNet, key(n.ID, sub.ID), nil); err != nil {
			return err
		}
		return putJSON(tx, bSubnets, []byte(sub.ID), sub)
	})
	if err != nil {
		return Subnet{}, fmt.Errorf("create subnet %v in network %q: %w", r.CIDR, r.Network, err)
	}
	return sub, nil
}

// networkSubnets returns a network's subnets in creation order (then ID).
func networkSubnets(tx store.Tx, netID string) ([]Subnet, error) {
	out, err := subnetMemo.indexed(tx, bSubnetByNet, key(netID, ""), bSubnets)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ListSubnets returns a network's subnets (all subnets when ref is empty).
func (s *Service) ListSubnets(ctx context.Context, ref string) ([]Subnet, error) {
	var out []Subnet
	err := s.st.View(ctx, func(tx store.Tx) error {
		if ref != "" {
			n, err := resolveNetwork(tx, ref)
			if err != nil {
				return err
			}
			out, err = networkSubnets(tx, n.ID)
			return err
		}
		var err error
		out, err = listJSON[Subnet](tx, bSubnets)
		return err
	})
	return out, err
}

// DeleteSubnet deletes a subnet whose addresses are all free; otherwise
// ErrInUse (delete its ports and release its addresses first).
func (s *Service) DeleteSubnet(ctx context.Context, id string) (Subnet, error) {
	var sub Subnet
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var ok bool
		var err error
		if sub, ok, err = subnetMemo.get(tx, bSubnets, []byte(id)); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("subnet %q: %w", id, ErrNotFound)
		}
		held := 0
		var first string
		if err := ipam.ForEach(tx, id, func(a netip.Addr, h string) bool {
			if held == 0 {
				first = fmt.Sprintf("%v (held by %s)", a, h)
			}
			held++
			return true
		}); err != nil {
			return err
		}
		if held > 0 {
			return fmt.Errorf("%w: %d addresses still held, e.g. %s; delete those ports and release those addresses first", ErrInUse, held, first)
		}
		if err := tx.Delete(bSubnetByNet, key(sub.Network, sub.ID)); err != nil {
			return err
		}
		if err := tx.Delete(bSubnets, []byte(id)); err != nil {
			return err
		}
		return ipam.DropPool(tx, id)
	})
	if err != nil {
		return Subnet{}, fmt.Errorf("delete subnet %q: %w", id, err)
	}
	return sub, nil
}

// DeleteNetwork deletes a network without subnets; otherwise ErrInUse
// (delete its subnets first).
func (s *Service) DeleteNetwork(ctx context.Context, ref string) (Network, error) {
	var n Network
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if n, err = resolveNetwork(tx, ref); err != nil {
			return err
		}
		subs, err := networkSubnets(tx, n.ID)
		if err != nil {
			return err
		}
		if len(subs) > 0 {
			return fmt.Errorf("%w: network %q has %d subnets, e.g. %s (%v); delete them first", ErrInUse, n.Name, len(subs), subs[0].ID, subs[0].CIDR)
		}
		for _, l := range n.Labels {
			if err := tx.Delete(bNetLabel, key(l, n.ID)); err != nil {
				return err
			}
		}
		if n.Segment.Type != SegmentNone {
			if err := tx.Delete(bNetSegment, []byte(n.Segment.String())); err != nil {
				return err
			}
		}
		for _, kv := range []struct {
			b string
			k string
		}{{bNetName, n.Name}, {bNetMACSeq, n.ID}, {bNetworks, n.ID}} {
			if err := tx.Delete(kv.b, []byte(kv.k)); err != nil {
				return err
			}
		}
		// Replicas' own MAC sequences (see macFor).
		var seqs [][]byte
		if err := tx.Scan(bNetMACSeq, key(n.ID, ""), nil, func(k, _ []byte) bool {
			seqs = append(seqs, append([]byte(nil), k...))
			return true
		}); err != nil {
			return err
		}
		for _, k := range seqs {
			if err := tx.Delete(bNetMACSeq, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Network{}, fmt.Errorf("delete network %q: %w", ref, err)
	}
	return n, nil
}

// ---- allocation ----

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func subnetsOfFamily(subs []Subnet, fam int) []Subnet {
	var out []Subnet
	for _, sub := range subs {
		if family(sub.CIDR.Addr()) == fam {
			out = append(out, sub)
		}
	}
	return out
}

func families(subs []Subnet) []int {
	var has4, has6 bool
	for _, sub := range subs {
		if sub.CIDR.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	var out []int
	if has4 {
		out = append(out, 4)
	}
	if has6 {
		out = append(out, 6)
	}
	return out
}

func poolNames(subs []Subnet) []string {
	var out []string
	for _, sub := range subs {
		for _, r := range sub.AllocationPools {
			out = append(out, r.String())
		}
	}
	return out
}

// hasRoom reports whether the network can give a port one address of each
// family it has subnets of.
func hasRoom(tx store.Tx, subs []Subnet) bool {
	fams := families(subs)
	if len(fams) == 0 {
		return false
	}
	for _, fam := range fams {
		ok := false
		for _, sub := range subnetsOfFamily(subs, fam) {
			if ipam.HasRoom(tx, sub.pool(), 1) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// pickNetwork resolves a port request's network, by name/ID or by label.
func pickNetwork(tx store.Tx, network, label string) (Network, []Subnet, error) {
	if network != "" {
		n, err := resolveNetwork(tx, network)
		if err != nil {
			return n, nil, err
		}
		subs, err := networkSubnets(tx, n.ID)
		if err != nil {
			return n, nil, err
		}
		if len(subs) == 0 {
			return n, nil, fmt.Errorf("network %q has no subnet: %w; create one first", n.Name, &ipam.ExhaustedError{Network: n.Name})
		}
		return n, subs, nil
	}
	nets, err := labelNetworks(tx, label)
	if err != nil {
		return Network{}, nil, err
	}
	if len(nets) == 0 {
		return Network{}, nil, fmt.Errorf("label %q: %w: no network carries it (create one with that label)", label, ErrNotFound)
	}
	var pools []string
	for _, n := range nets {
		subs, err := networkSubnets(tx, n.ID)
		if err != nil {
			return n, nil, err
		}
		if hasRoom(tx, subs) {
			return n, subs, nil
		}
		for _, p := range poolNames(subs) {
			pools = append(pools, n.Name+":"+p)
		}
	}
	return Network{}, nil, &ipam.ExhaustedError{Label: label, Pools: pools}
}

// allocatePortIPs gives p one address of each family of subs (or ip).
func allocatePortIPs(tx store.Tx, n Network, subs []Subnet, ip netip.Addr, holder string) ([]FixedIP, error) {
	if ip.IsValid() {
		for _, sub := range subs {
			if sub.CIDR.Contains(ip) {
				if ip == sub.Gateway {
					return nil, &FieldError{Field: "ip", Value: ip.String(), Reason: fmt.Sprintf("is the gateway of subnet %v", sub.CIDR)}
				}
				if d, ok := ipam.DefaultRange(sub.CIDR); !ok || !d.Contains(ip) {
					return nil, &FieldError{Field: "ip", Value: ip.String(), Reason: fmt.Sprintf("network or broadcast address of %v", sub.CIDR)}
				}
				if err := ipam.Reserve(tx, sub.pool(), ip, holder); err != nil {
					return nil, err
				}
				return []FixedIP{{Subnet: sub.ID, Address: ip, Prefix: sub.CIDR, Gateway: sub.Gateway}}, nil
			}
		}
		return nil, &FieldError{Field: "ip", Value: ip.String(), Reason: fmt.Sprintf("in no subnet of network %q", n.Name)}
	}
	var out []FixedIP
	for _, fam := range families(subs) {
		fsubs := subnetsOfFamily(subs, fam)
		done := false
		for _, sub := range fsubs {
			if !ipam.HasRoom(tx, sub.pool(), 1) {
				continue
			}
			a, err := ipam.Allocate(tx, sub.pool(), holder)
			if errors.Is(err, ipam.ErrPoolExhausted) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, FixedIP{Subnet: sub.ID, Address: a, Prefix: sub.CIDR, Gateway: sub.Gateway})
			done = true
			break
		}
		if !done {
			return nil, &ipam.ExhaustedError{Network: n.Name, Pools: poolNames(fsubs)}
		}
	}
	return out, nil
}

// AllocateBatch hands out r.Count addresses in one transaction, all or none:
// from the network, or filling the label's networks in order.
func (s *Service) AllocateBatch(ctx context.Context, r AllocRequest) ([]Allocation, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("allocate: %w", err)
	}
	var out []Allocation
	err := s.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		var nets []Network
		if r.Network != "" {
			n, err := resolveNetwork(tx, r.Network)
			if err != nil {
				return err
			}
			nets = []Network{n}
		} else {
			var err error
			if nets, err = labelNetworks(tx, r.Label); err != nil {
				return err
			}
			if len(nets) == 0 {
				return fmt.Errorf("label %q: %w: no network carries it (create one with that label)", r.Label, ErrNotFound)
			}
		}
		var pools []string
		left := r.Count
		for _, n := range nets {
			subs, err := networkSubnets(tx, n.ID)
			if err != nil {
				return err
			}
			fam := r.Family
			if fam == 0 {
				if fams := families(subs); len(fams) > 0 {
					fam = fams[0]
				}
			}
			for _, sub := range subnetsOfFamily(subs, fam) {
				p := sub.pool()
				for _, name := range poolNames([]Subnet{sub}) {
					pools = append(pools, n.Name+":"+name)
				}
				for left > 0 && ipam.HasRoom(tx, p, 1) {
					a, err := ipam.Allocate(tx, p, r.Holder)
					if errors.Is(err, ipam.ErrPoolExhausted) {
						break
					}
					if err != nil {
						return err
					}
					out = append(out, Allocation{Network: n.ID, Subnet: sub.ID, Address: a, Holder: r.Holder})
					left--
				}
			}
			if left == 0 {
				return nil
			}
		}
		e := &ipam.ExhaustedError{Label: r.Label, Network: r.Network, Pools: pools, Wanted: r.Count}
		return e
	})
	if err != nil {
		return nil, fmt.Errorf("allocate %d for %q: %w", r.Count, r.Holder, err)
	}
	return out, nil
}

// Reserve holds a specific address of a network for holder.
func (s *Service) Reserve(ctx context.Context, network string, a netip.Addr, holder string) (Allocation, error) {
	if err := validHolder(holder); err != nil {
		return Allocation{}, fmt.Errorf("reserve %v: %w", a, err)
	}
	var out Allocation
	err := s.st.Update(ctx, func(tx store.Tx) error {
		n, err := resolveNetwork(tx, network)
		if err != nil {
			return err
		}
		subs, err := networkSubnets(tx, n.ID)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			if sub.CIDR.Contains(a) {
				if a == sub.Gateway {
					return &FieldError{Field: "address", Value: a.String(), Reason: "is the subnet's gateway"}
				}
				if d, ok := ipam.DefaultRange(sub.CIDR); !ok || !d.Contains(a) {
					return &FieldError{Field: "address", Value: a.String(), Reason: fmt.Sprintf("network or broadcast address of %v", sub.CIDR)}
				}
				out = Allocation{Network: n.ID, Subnet: sub.ID, Address: a, Holder: holder}
				return ipam.Reserve(tx, sub.pool(), a, holder)
			}
		}
		return &FieldError{Field: "address", Value: a.String(), Reason: fmt.Sprintf("in no subnet of network %q", n.Name)}
	})
	if err != nil {
		return Allocation{}, fmt.Errorf("reserve %v in %q: %w", a, network, err)
	}
	return out, nil
}

// Release frees addresses of a network held by holder (any non-port holder
// when holder is empty), all or none. Addresses of ports are freed by
// deleting the port.
func (s *Service) Release(ctx context.Context, network string, addrs []netip.Addr, holder string) error {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		n, err := resolveNetwork(tx, network)
		if err != nil {
			return err
		}
		subs, err := networkSubnets(tx, n.ID)
		if err != nil {
			return err
		}
	next:
		for _, a := range addrs {
			for _, sub := range subs {
				if !sub.CIDR.Contains(a) {
					continue
				}
				h := ipam.Holder(tx, sub.ID, a)
				if strings.HasPrefix(h, portHolderPrefix) {
					return fmt.Errorf("release %v: %w by %s; delete the port instead", a, ErrInUse, h)
				}
				if err := ipam.Release(tx, sub.pool(), a, holder); err != nil {
					return err
				}
				continue next
			}
			return fmt.Errorf("release %v: %w in network %q", a, ipam.ErrNotAllocated, n.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %d addresses in %q: %w", len(addrs), network, err)
	}
	return nil
}

// ---- ports ----

func portByName(tx store.Tx, name string) (Port, bool, error) {
	var p Port
	id := tx.Get(bPortName, []byte(name))
	if id == nil {
		return p, false, nil
	}
	ok, err := getJSON(tx, bPorts, id, &p)
	if !ok && err == nil {
		err = fmt.Errorf("port %q: name index points at missing id %s", name, id)
	}
	return p, true, err
}

func mustPort(tx store.Tx, name string) (Port, error) {
	p, ok, err := portByName(tx, name)
	if err == nil && !ok {
		err = fmt.Errorf("port %q: %w", name, ErrNotFound)
	}
	return p, err
}

func savePort(tx store.Tx, p Port) error { return putJSON(tx, bPorts, []byte(p.ID), p) }

// macFor returns the MAC to give a new port: the asked one, or the next of
// the network's sequence, 02:hh:hh:cc:cc:cc (locally administered; hh a hash
// of the network ID, c a counter kept in the store), skipping MACs taken by
// hand. Sequential MACs keep the MAC index's writes on few pages.
func macFor(tx store.Tx, netID, asked string) (string, error) {
	if asked != "" {
		if id := tx.Get(bPortMAC, key(netID, asked)); id != nil {
			return "", fmt.Errorf("%w: MAC %s is used by port %s in this network; omit mac to get a free one", ErrExists, asked, id)
		}
		return asked, nil
	}
	h := fnv.New32a()
	h.Write([]byte(netID))
	hh := h.Sum32()
	// In a store several replicas write at once, each keeps a sequence of
	// its own, starting in a part of the 24-bit space its name picks, so
	// that two replicas' creates do not both want the next MAC.
	seqKey := []byte(netID)
	var seq uint32
	if sh, ok := tx.(store.Sharded); ok {
		seqKey = key(netID, sh.Shard())
		hs := fnv.New32a()
		hs.Write([]byte(sh.Shard()))
		seq = (hs.Sum32() & 0xff) << 16
	}
	if v := tx.Get(bNetMACSeq, seqKey); len(v) == 4 {
		seq = binary.BigEndian.Uint32(v)
	}
	for range 1 << 24 {
		seq = (seq + 1) & 0xffffff
		m := fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(hh>>8), byte(hh), byte(seq>>16), byte(seq>>8), byte(seq))
		if tx.Get(bPortMAC, key(netID, m)) == nil {
			return m, tx.Put(bNetMACSeq, seqKey, binary.BigEndian.AppendUint32(nil, seq))
		}
	}
	return "", fmt.Errorf("%w: every generated MAC of network %s is taken", ipam.ErrPoolExhausted, netID)
}

// createPortTx creates the port in tx: network choice, address, MAC, name
// and host indexes, binding states. now is the creation time.
func (s *Service) createPortTx(tx store.Tx, r PortRequest, id string) (Port, error) {
	if old := tx.Get(bPortName, []byte(r.Name)); old != nil {
		return Port{}, fmt.Errorf("%w: port %q (id %s); ports names are unique, delete it or use another name", ErrExists, r.Name, old)
	}
	n, subs, err := pickNetwork(tx, r.Network, r.Label)
	if err != nil {
		return Port{}, err
	}
	now := s.clock.Now()
	p := Port{ID: id, Name: r.Name, Network: n.ID, DeviceOwner: r.DeviceOwner, UnderlayState: StateDown, OverlayState: StateDown, Created: now}
	if p.MAC, err = macFor(tx, n.ID, r.MAC); err != nil {
		return Port{}, err
	}
	if p.IPs, err = allocatePortIPs(tx, n, subs, r.IP, portHolderPrefix+id); err != nil {
		return Port{}, err
	}
	if err := tx.Put(bPortMAC, key(n.ID, p.MAC), []byte(id)); err != nil {
		return Port{}, err
	}
	if err := tx.Put(bPortName, []byte(p.Name), []byte(id)); err != nil {
		return Port{}, err
	}
	if r.Host != "" {
		if err := s.bindTx(tx, &p, n, r.Host); err != nil {
			return Port{}, err
		}
	}
	return p, savePort(tx, p)
}

// bindTx moves p to host (or unbinds it for ""), resetting its states as a
// new wiring needs: underlay DOWN until the new host reports; overlay BUILD
// until the overlay reports (ACTIVE at once on a routed network, which has
// no overlay to program). It does not save p.
func (s *Service) bindTx(tx store.Tx, p *Port, n Network, host string) error {
	if p.Host == host {
		return nil
	}
	now := s.clock.Now()
	if p.Host != "" {
		if err := tx.Delete(bPortHost, key(p.Host, p.ID)); err != nil {
			return err
		}
	}
	reason := "bound to " + host
	if host == "" {
		reason = "unbound from " + p.Host
	} else if p.Host != "" {
		reason = "moved from " + p.Host + " to " + host
	}
	if _, err := p.transition(PlaneUnderlay, StateDown, now, reason); err != nil {
		return err
	}
	if host == "" {
		if _, err := p.transition(PlaneOverlay, StateDown, now, reason); err != nil {
			return err
		}
	} else {
		if _, err := p.transition(PlaneOverlay, StateBuild, now, reason); err != nil {
			return err
		}
		if n.Segment.Type == SegmentNone {
			if _, err := p.transition(PlaneOverlay, StateActive, now, "routed network: no overlay to program"); err != nil {
				return err
			}
		}
		if err := tx.Put(bPortHost, key(host, p.ID), nil); err != nil {
			return err
		}
	}
	p.Host = host
	return nil
}

// CreatePort creates a port and allocates its addresses in one transaction;
// with a host it is bound at once and the overlay is told asynchronously.
func (s *Service) CreatePort(ctx context.Context, r PortRequest) (Port, error) {
	if err := r.validate(); err != nil {
		return Port{}, fmt.Errorf("create port %q: %w", r.Name, err)
	}
	id := newID("port-")
	var p Port
	err := s.st.Update(ctx, func(tx store.Tx) (err error) {
		if p, err = s.createPortTx(tx, r, id); err != nil {
			return err
		}
		_, err = s.reportTx(tx, &p, r)
		return err
	})
	if err != nil {
		return Port{}, fmt.Errorf("create port %q: %w", r.Name, err)
	}
	s.changed(p, "")
	return p, nil
}

// EnsurePort gets the port named r.Name, creating it as CreatePort would
// when it does not exist; an existing port is bound to r.Host when that is
// set and differs (drift: the overlay hears PortBound with the old host).
// created tells which happened. An existing port in another network than
// r.Network, or without r.Label, is an ErrExists conflict.
func (s *Service) EnsurePort(ctx context.Context, r PortRequest) (p Port, created bool, err error) {
	if err := r.validate(); err != nil {
		return Port{}, false, fmt.Errorf("ensure port %q: %w", r.Name, err)
	}
	id := newID("port-")
	var oldHost string
	var reported bool
	err = s.st.Update(ctx, func(tx store.Tx) error {
		oldHost, created, reported = "", false, false
		cur, ok, err := portByName(tx, r.Name)
		if err != nil {
			return err
		}
		if !ok {
			created = true
			if p, err = s.createPortTx(tx, r, id); err != nil {
				return err
			}
			reported, err = s.reportTx(tx, &p, r)
			return err
		}
		n, err := networkOf(tx, cur)
		if err != nil {
			return err
		}
		if r.Network != "" && r.Network != n.ID && r.Network != n.Name {
			return fmt.Errorf("%w: port %q is in network %q, not %q", ErrExists, r.Name, n.Name, r.Network)
		}
		if r.Label != "" && !n.HasLabel(r.Label) {
			return fmt.Errorf("%w: port %q is in network %q, which lacks label %q", ErrExists, r.Name, n.Name, r.Label)
		}
		oldHost = cur.Host
		if err := guard(ctx, "ensure", cur); err != nil {
			return err
		}
		if r.Host != "" && r.Host != cur.Host {
			if err := s.bindTx(tx, &cur, n, r.Host); err != nil {
				return err
			}
			if err := savePort(tx, cur); err != nil {
				return err
			}
		}
		p = cur
		reported, err = s.reportTx(tx, &p, r)
		return err
	})
	if err != nil {
		return Port{}, false, fmt.Errorf("ensure port %q: %w", r.Name, err)
	}
	switch {
	case created:
		s.changed(p, "")
	case p.Host != oldHost:
		s.changed(p, oldHost)
	case reported:
		s.notify(p.Name)
	}
	return p, created, nil
}

// reportTx records r's underlay report on p, bound to r.Host by now, and
// saves p if its state changed; it reports whether it did.
func (s *Service) reportTx(tx store.Tx, p *Port, r PortRequest) (bool, error) {
	if r.Underlay.State == "" {
		return false, nil
	}
	changed, err := p.transition(PlaneUnderlay, r.Underlay.State, s.clock.Now(), r.Underlay.Reason)
	if err != nil || !changed {
		return false, err
	}
	return true, savePort(tx, *p)
}

func networkOf(tx store.Tx, p Port) (Network, error) {
	n, ok, err := networkMemo.get(tx, bNetworks, []byte(p.Network))
	if err == nil && !ok {
		err = fmt.Errorf("port %q: network %s: %w", p.Name, p.Network, ErrNotFound)
	}
	return n, err
}

// GetPort returns the port named name.
func (s *Service) GetPort(ctx context.Context, name string) (Port, error) {
	var p Port
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		p, err = mustPort(tx, name)
		return err
	})
	return p, err
}

// ListPorts returns every port, sorted by name.
func (s *Service) ListPorts(ctx context.Context) ([]Port, error) {
	var out []Port
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = listJSON[Port](tx, bPorts)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// PortsOnHost returns the ports bound to host, sorted by name.
func (s *Service) PortsOnHost(ctx context.Context, host string) ([]Port, error) {
	var out []Port
	err := s.st.View(ctx, func(tx store.Tx) error {
		out = nil
		prefix := key(host, "")
		var ids [][]byte
		if err := tx.Scan(bPortHost, prefix, nil, func(k, _ []byte) bool {
			ids = append(ids, append([]byte(nil), k[len(prefix):]...))
			return true
		}); err != nil {
			return err
		}
		for _, id := range ids {
			var p Port
			if _, err := getJSON(tx, bPorts, id, &p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// BindPort binds the port to host ("" unbinds). Binding to another host is
// drift: the overlay hears PortBound with the old host. Binding to the
// current host changes nothing.
func (s *Service) BindPort(ctx context.Context, name, host string) (Port, error) {
	if host != "" {
		if err := validName("host", host); err != nil {
			return Port{}, fmt.Errorf("bind port %q: %w", name, err)
		}
	}
	var p Port
	var oldHost string
	err := s.st.Update(ctx, func(tx store.Tx) error {
		cur, err := mustPort(tx, name)
		if err != nil {
			return err
		}
		if err := guard(ctx, "bind", cur); err != nil {
			return err
		}
		oldHost = cur.Host
		if cur.Host == host {
			p = cur
			return nil
		}
		n, err := networkOf(tx, cur)
		if err != nil {
			return err
		}
		if err := s.bindTx(tx, &cur, n, host); err != nil {
			return err
		}
		p = cur
		return savePort(tx, cur)
	})
	if err != nil {
		return Port{}, fmt.Errorf("bind port %q to %q: %w", name, host, err)
	}
	if oldHost != host {
		s.changed(p, oldHost)
	}
	return p, nil
}

// DeletePort deletes the port and releases its addresses in one
// transaction; the overlay hears PortUnbound if it was bound.
func (s *Service) DeletePort(ctx context.Context, name string) (Port, error) {
	var p Port
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if p, err = mustPort(tx, name); err != nil {
			return err
		}
		if err := guard(ctx, "delete", p); err != nil {
			return err
		}
		for _, ip := range p.IPs {
			sub, _, err := subnetMemo.get(tx, bSubnets, []byte(ip.Subnet))
			if err != nil {
				return err
			}
			if err := ipam.Release(tx, sub.pool(), ip.Address, portHolderPrefix+p.ID); err != nil {
				return err
			}
		}
		for _, kv := range []struct {
			b string
			k []byte
		}{{bPorts, []byte(p.ID)}, {bPortName, []byte(p.Name)}, {bPortMAC, key(p.Network, p.MAC)}, {bPortHost, key(p.Host, p.ID)}} {
			if err := tx.Delete(kv.b, kv.k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Port{}, fmt.Errorf("delete port %q: %w", name, err)
	}
	s.notify(p.Name)
	if o := s.getOverlay(); p.Host != "" && o != nil && !s.feed {
		s.runHook(p.Name, func(ctx context.Context) { o.PortUnbound(ctx, p, p.Host) })
	}
	return p, nil
}

// SetUnderlayState records the host agent's report of the port's wiring.
func (s *Service) SetUnderlayState(ctx context.Context, name string, u StateUpdate) (Port, error) {
	return s.setState(ctx, name, PlaneUnderlay, u)
}

// SetOverlayState records the overlay's report of the port's leaf
// configuration.
func (s *Service) SetOverlayState(ctx context.Context, name string, u StateUpdate) (Port, error) {
	return s.setState(ctx, name, PlaneOverlay, u)
}

func (s *Service) setState(ctx context.Context, name string, plane Plane, u StateUpdate) (Port, error) {
	var p Port
	err := s.st.Update(ctx, func(tx store.Tx) error {
		cur, err := mustPort(tx, name)
		if err != nil {
			return err
		}
		if err := guard(ctx, string(plane), cur); err != nil {
			return err
		}
		if u.Host != "" && u.Host != cur.Host {
			return fmt.Errorf("%w: %s report from host %q but the port is bound to %q", ErrStale, plane, u.Host, cur.Host)
		}
		if u.State != StateDown && cur.Host == "" {
			return fmt.Errorf("%w: %s %s for an unbound port; bind it to a host first", ErrIllegalTransition, plane, u.State)
		}
		changed, err := cur.transition(plane, u.State, s.clock.Now(), u.Reason)
		if err != nil {
			return err
		}
		p = cur
		if !changed {
			return nil // same state again: nothing to write
		}
		return savePort(tx, cur)
	})
	if err != nil {
		return Port{}, fmt.Errorf("set port %q %s state: %w", name, plane, err)
	}
	s.notify(name)
	return p, nil
}

// WaitPort returns the port once its status is want, or the port as it is
// and ctx's error when ctx ends first.
func (s *Service) WaitPort(ctx context.Context, name string, want Status) (Port, error) {
	for {
		ch := s.watch(name)
		p, err := s.GetPort(ctx, name)
		if err != nil {
			return p, err
		}
		if p.Status() == want {
			return p, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return p, fmt.Errorf("wait for port %q to be %s (now %s): %w", name, want, p.Status(), ctx.Err())
		}
	}
}

func (s *Service) watch(name string) <-chan struct{} {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	ch, ok := s.watchers[name]
	if !ok {
		ch = make(chan struct{})
		s.watchers[name] = ch
	}
	return ch
}

func (s *Service) notify(name string) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if ch, ok := s.watchers[name]; ok {
		close(ch)
		delete(s.watchers, name)
	}
}

// changed wakes watchers and tells the overlay of a new binding.
func (s *Service) changed(p Port, oldHost string) {
	s.notify(p.Name)
	o := s.getOverlay()
	if o == nil || s.feed {
		return
	}
	switch {
	case p.Host != "":
		s.runHook(p.Name, func(ctx context.Context) { o.PortBound(ctx, p, oldHost) })
	case oldHost != "":
		s.runHook(p.Name, func(ctx context.Context) { o.PortUnbound(ctx, p, oldHost) })
	}
}

// runHook runs fn in the background. Hooks of one port run one at a time,
// in the order their changes committed; hooks of different ports run
// concurrently.
// Idle waits until the overlay hooks queued so far have run. It must not
// race with calls that queue hooks (BindPort, DeletePort, EnsurePort).
func (s *Service) Idle() { s.hooks.Wait() }

func (s *Service) runHook(port string, fn func(ctx context.Context)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	if s.closed {
		return
	}
	q, running := s.hookQ[port]
	s.hookQ[port] = append(q, fn)
	if running {
		return
	}
	s.hooks.Add(1)
	go func() {
		defer s.hooks.Done()
		for {
			s.hookMu.Lock()
			q := s.hookQ[port]
			if len(q) == 0 {
				delete(s.hookQ, port)
				s.hookMu.Unlock()
				return
			}
			next := q[0]
			s.hookQ[port] = q[1:]
			s.hookMu.Unlock()
			next(s.hookCtx)
		}
	}()
}
