package netnsrt

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/topologies"
)

// DefaultNodeASN is the AS of gen 3's hosts' speakers unless the hosts
// carry LabelASN: one private AS for every node, as Cilium's BGP control
// plane examples give them (localASN 64512), in eBGP with their leaves.
const DefaultNodeASN = 64512

// newDirectPlane designs gen 3's direct routing as BGP, as Cilium's BGP
// control plane runs it: a speaker on every host advertises the host's
// pod CIDR to each leaf it is attached to, over eBGP on the host–leaf
// veth itself (/31 session addresses from DefaultSessionPool); each
// leaf's speaker listens for its hosts, and the leaf routes a pod CIDR to
// a host's port only while its speaker's best path for it comes from
// that host (ebpf.Fabric.PodCIDRLearnt). The leaf–spine underlay's
// routes stay computed: no speakers run on the spines.
func newDirectPlane(r *Runtime, df *ebpf.Fabric, t *topologies.Topology, dir string) (*bgpPlane, error) {
	exe, err := r.ControllerBinary()
	if err != nil {
		return nil, fmt.Errorf("control_plane bgp: the speakers run as 'netbed speaker': %w", err)
	}
	asn, err := bgpevpn.FabricASN(t)
	if err != nil {
		return nil, err
	}
	nodeASN, err := hostASN(t)
	if err != nil {
		return nil, err
	}
	p := &bgpPlane{r: r, direct: df, asn: asn, dir: dir, exe: exe, nodes: map[string]*bgpNode{}, peers: map[netip.Addr]string{}}
	pods := df.PodCIDRs()
	for _, n := range t.Nodes {
		bn := &bgpNode{p: p, name: n.Name, ifaces: t.Interfaces(n.Name), wake: make(chan struct{}, 1)}
		var id netip.Addr
		switch {
		case n.Role == topologies.RoleLeaf || n.Role == topologies.RoleBorder:
			lo, ok := df.Loopback(n.Name)
			if !ok {
				return nil, fmt.Errorf("control_plane bgp: node %s: no loopback address for its router ID", n.Name)
			}
			id, bn.podRouter = lo, true
			bn.ifaceOf, bn.learnt = map[netip.Addr]string{}, map[netip.Prefix]string{}
			bn.cfg = speaker.Config{ASN: asn}
		case n.Role == topologies.RoleHost:
			h, ok := df.Host(n.Name)
			if !ok {
				continue
			}
			id, bn.pod = h.Config().NodeIP, pods[n.Name]
			bn.cfg = speaker.Config{ASN: nodeASN, Port: -1} // nodes dial their leaves
		default:
			continue
		}
		sock := filepath.Join(dir, n.Name+".sock")
		if len(sock) >= len(syscall.RawSockaddrUnix{}.Path) {
			return nil, fmt.Errorf("control_plane bgp: node %s: gRPC socket path %s is longer than a unix socket allows; use a shorter state directory", n.Name, sock)
		}
		bn.cfg.Node, bn.cfg.RouterID, bn.cfg.GRPC, bn.cfg.Timers = n.Name, id, sock, r.opts.BGPTimers
		p.nodes[n.Name] = bn
	}
	next := DefaultSessionPool.Masked().Addr()
	fams := []speaker.Family{speaker.IPv4Unicast}
	for _, lk := range t.Links {
		le, he := lk.A, lk.B
		if p.nodes[le.Node] == nil || !p.nodes[le.Node].podRouter {
			le, he = he, le
		}
		leaf, host := p.nodes[le.Node], p.nodes[he.Node]
		if leaf == nil || host == nil || !leaf.podRouter || !host.pod.IsValid() {
			continue // not a host–leaf link
		}
		la, ha := next, next.Next()
		next = ha.Next()
		if !DefaultSessionPool.Contains(ha) {
			return nil, fmt.Errorf("control_plane bgp: %s has more host–leaf links than %s holds", t.Name, DefaultSessionPool)
		}
		p.peers[la], p.peers[ha] = le.Node, he.Node
		for _, e := range []struct {
			ep topologies.Endpoint
			a  netip.Addr
		}{{le, la}, {he, ha}} {
			if err := p.addAddr(e.ep, e.a); err != nil {
				return nil, err
			}
		}
		leaf.ifaceOf[ha] = le.Iface
		leaf.cfg.Listen = append(leaf.cfg.Listen, la)
		leaf.cfg.Peers = append(leaf.cfg.Peers, speaker.Peer{Address: ha, ASN: host.cfg.ASN, Passive: true, Families: fams})
		host.cfg.Peers = append(host.cfg.Peers, speaker.Peer{Address: la, ASN: asn, Families: fams})
		if !host.local.IsValid() {
			host.local = ha
		}
	}
	// Leaves first, so that they listen before the hosts dial; a leaf
	// without hosts (or a host without a leaf) runs no speaker.
	for _, leaves := range []bool{true, false} {
		for _, n := range t.Nodes {
			bn := p.nodes[n.Name]
			if bn == nil || bn.podRouter != leaves {
				continue
			}
			if len(bn.cfg.Peers) == 0 {
				delete(p.nodes, n.Name)
				continue
			}
			if err := bn.cfg.Validate(); err != nil {
				return nil, fmt.Errorf("control_plane bgp: %w", err)
			}
			if err := speaker.WriteConfig(bn.configPath(), bn.cfg); err != nil {
				return nil, fmt.Errorf("control_plane bgp: %w", err)
			}
			p.order = append(p.order, n.Name)
		}
	}
	return p, nil
}

// hostASN is the AS of t's hosts' speakers: LabelASN where set (the same
// on every host), else DefaultNodeASN.
func hostASN(t *topologies.Topology) (uint32, error) {
	asn, from := uint32(0), ""
	for _, n := range t.NodesByRole(topologies.RoleHost) {
		v, ok := n.Labels[LabelASN]
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(v, 10, 32)
		if err != nil || a == 0 {
			return 0, fmt.Errorf("control_plane bgp: node %s: label %s: %q is not an AS number 1..4294967295", n.Name, LabelASN, v)
		}
		if asn != 0 && uint32(a) != asn {
			return 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d, but %s has AS %d; the hosts share one AS", n.Name, LabelASN, a, from, asn)
		}
		asn, from = uint32(a), n.Name
	}
	if asn == 0 {
		asn = DefaultNodeASN
	}
	return asn, nil
}

// watchPods has the leaf route the pod CIDRs its speaker's best paths
// bring from its hosts: learnt while a host's path is best, lost when it
// is withdrawn (or another host's path became best).
func (bn *bgpNode) watchPods(ctx context.Context, c *speaker.Client) {
	df := bn.p.direct
	set := func(pfx netip.Prefix, iface string, learnt bool) {
		if err := bn.p.r.exclusive(func() error { return df.PodCIDRLearnt(bn.name, iface, pfx, learnt) }); err != nil {
			bn.fail(err)
			return
		}
		bn.mu.Lock()
		if learnt {
			bn.learnt[pfx] = iface
		} else {
			delete(bn.learnt, pfx)
		}
		bn.mu.Unlock()
	}
	err := c.Watch(ctx, func(u speaker.Update) {
		for _, pr := range u.PrefixWithdrawn {
			if iface, ok := bn.learntOn(pr.Prefix); ok {
				set(pr.Prefix, iface, false)
			}
		}
		for _, pr := range u.PrefixAdds {
			iface, ok := bn.ifaceOf[pr.NextHop]
			if !ok {
				continue // not from a host on one of its links
			}
			old, had := bn.learntOn(pr.Prefix)
			if had && old == iface {
				continue
			}
			if had {
				set(pr.Prefix, old, false)
			}
			set(pr.Prefix, iface, true)
		}
	})
	if err != nil && ctx.Err() == nil {
		bn.fail(err)
	}
}

func (bn *bgpNode) learntOn(pfx netip.Prefix) (string, bool) {
	bn.mu.Lock()
	defer bn.mu.Unlock()
	iface, ok := bn.learnt[pfx]
	return iface, ok
}

// forgetPods has a failed leaf lose every pod CIDR it had learnt (its
// speaker, which held them, is gone).
func (bn *bgpNode) forgetPods() error {
	bn.mu.Lock()
	learnt := bn.learnt
	bn.learnt = map[netip.Prefix]string{}
	bn.mu.Unlock()
	return bn.p.r.exclusive(func() error {
		for pfx, iface := range learnt {
			if err := bn.p.direct.PodCIDRLearnt(bn.name, iface, pfx, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// missingPods names a running leaf and the pod CIDR of a running host on
// one of its links with carrier that it has not learnt ("" when none).
func (p *bgpPlane) missingPods() string {
	for _, name := range p.order {
		bn := p.nodes[name]
		if !bn.podRouter || !bn.running() {
			continue
		}
		h, err := p.r.lab.Handle(name)
		if err != nil {
			continue
		}
		for ha, iface := range bn.ifaceOf {
			host := p.nodes[p.peers[ha]]
			if host == nil || !host.running() {
				continue
			}
			l, err := h.LinkByName(iface)
			if err != nil || l.Attrs().RawFlags&unix.IFF_LOWER_UP == 0 || l.Attrs().OperState == netlink.OperDown {
				continue
			}
			if got, ok := bn.learntOn(host.pod); !ok || got != iface {
				return fmt.Sprintf("%s has not learnt %s's pod CIDR %s on %s", name, host.name, host.pod, iface)
			}
		}
	}
	return ""
}
