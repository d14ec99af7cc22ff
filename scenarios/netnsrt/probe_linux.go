package netnsrt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/datapath/kernel/ktrace"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/datapath/userspace"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies/netns"
)

var debugTrace = os.Getenv("NETNSRT_DEBUG") != ""

// DefaultTimeout is a probe's timeout when the request gives none.
const DefaultTimeout = time.Second

var protos = map[string]stack.Proto{"icmp": stack.ICMP, "udp": stack.UDP, "tcp": stack.TCP}

// srcPort is the source port of probe id, as stack.Instance picks it.
func srcPort(id uint64) uint16 {
	return uint16(stack.EphemeralBase + id%(65536-stack.EphemeralBase))
}

// Probe implements scenarios.Runtime: the source instance's kernel sends
// a real packet carrying the probe ID as stack.Instance does (ICMP echo
// with id = ID>>16, seq = ID and the ID as payload from a raw socket; a
// UDP datagram with the ID as payload from port srcPort(ID); a TCP
// connect from that port), and waits for the answer or the timeout. The
// path is the nodes' trace of the probe joined to the instances' eth0
// events read from the captures, and is derived as sim derives it.
func (r *Runtime) Probe(ctx context.Context, p scenarios.RuntimeProbe) (reports.Probe, error) {
	proto, ok := protos[p.Proto]
	if !ok {
		return reports.Probe{}, fmt.Errorf("probe: unknown protocol %q (icmp, udp, tcp)", p.Proto)
	}
	if p.Dst.Is6() && r.k != nil && !r.k.ipv6 {
		return reports.Probe{}, fmt.Errorf("probe %s -> %s over IPv6: the kernel backend (lab %s) runs %s over IPv4 only, for now (it runs %s dual-stack; or use --backend netns or sim)",
			p.From, p.To, r.name, r.k.gen, strings.Join(KernelIPv6Generations(), ", "))
	}
	src, err := r.instance(p.From)
	if err != nil {
		return reports.Probe{}, fmt.Errorf("probe: %w", err)
	}
	srcIP := src.ip.Addr()
	if p.Dst.Is6() {
		if !src.ip6.IsValid() {
			return reports.Probe{}, fmt.Errorf("probe %s -> %s over IPv6: %s has no IPv6 address", p.From, p.To, p.From)
		}
		srcIP = src.ip6.Addr()
	}
	dst, _ := r.instance(p.To)
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	port := p.Port
	switch {
	case proto == stack.UDP && port == 0:
		port = 7
	case proto == stack.TCP && port == 0:
		port = 80
	}
	if proto == stack.UDP && dst != nil {
		if err := dst.ensureUDP(port); err != nil {
			return reports.Probe{}, fmt.Errorf("probe: %w", err)
		}
	}
	if err := src.forgetFailedResolutions(); err != nil {
		return reports.Probe{}, fmt.Errorf("probe: %w", err)
	}
	id := r.nextProbe.Add(1)
	if p.Background {
		id = scenarios.StreamProbeIDs + r.streamProbes.Add(1)
	}
	var flow userspace.Flow
	if proto != stack.ICMP {
		pr := uint8(17)
		if proto == stack.TCP {
			pr = 6
		}
		flow = userspace.Flow{Proto: pr, Src: srcIP, Dst: p.Dst, SrcPort: srcPort(id), DstPort: port}
		r.addFlow(flow, id)
		defer r.dropFlow(flow)
		if p.Translated.IsValid() {
			// Past a one-to-one NAT the probe's frames are of the
			// translated flow: a TCP probe's SYN and its answer carry no
			// ID, so they are the probe's by their flow alone.
			nat := flow
			nat.Dst = p.Translated
			r.addFlow(nat, id)
			defer r.dropFlow(nat)
		}
	}
	var key ktrace.Key
	if r.k != nil {
		key = kernelKey(id, p.Proto, srcIP, p.Dst, port)
		if err := r.k.tr.Watch(key, id); err != nil {
			return reports.Probe{}, fmt.Errorf("probe %d %s -> %s: %w", id, p.From, p.To, err)
		}
		defer r.k.tr.Unwatch(key)
	}
	var replied bool
	switch proto {
	case stack.ICMP:
		replied, err = src.ping(ctx, p.Dst, id, timeout)
	case stack.UDP:
		replied, err = src.udpProbe(ctx, p.Dst, port, id, timeout)
	case stack.TCP:
		replied, err = src.tcpProbe(ctx, p.Dst, port, id, timeout)
	}
	if err != nil {
		return reports.Probe{}, fmt.Errorf("probe %d %s -> %s: %w", id, p.From, p.To, err)
	}
	r.settle(ctx, id, src, dst, replied)
	if debugTrace {
		fmt.Printf("probe %d %s -> %s %s: kernel answered %v\n", id, p.From, p.To, p.Proto, replied)
	}
	if r.k != nil {
		return r.kernelResult(ctx, id, p, key, src, dst, replied)
	}
	return r.result(id, p), nil
}

// settle waits until the captures hold the frames on the instances' eth0
// that an answered probe must have crossed: out of the source, into and
// out of the destination, back into the source (the captures are read
// asynchronously, one goroutine per namespace).
func (r *Runtime) settle(ctx context.Context, id uint64, src, dst *instance, replied bool) {
	if !replied {
		return
	}
	deadline := time.Now().Add(r.opts.Settle)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var seen [2][2]bool // [source, destination][in, out]
		for _, f := range r.cap.Frames(id) {
			if f.ARP || f.Iface != stack.Port {
				continue
			}
			dir := 0
			if f.Out {
				dir = 1
			}
			switch {
			case f.Netns == src.name:
				seen[0][dir] = true
			case dst != nil && f.Netns == dst.name:
				seen[1][dir] = true
			}
		}
		if seen[0][0] && seen[0][1] && (dst == nil || seen[1][0] && seen[1][1]) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// result joins the nodes' records of probe id with the instances' eth0
// frames and derives the outcome.
func (r *Runtime) result(id uint64, p scenarios.RuntimeProbe) reports.Probe {
	nrecs, gidx := r.us.TraceOf(id)
	local := make(map[int32]int32, len(gidx))
	for k, g := range gidx {
		local[g] = int32(k)
	}
	rs := make([]outcome.Record, 0, len(nrecs)+8)
	for _, nr := range nrecs {
		prev := int32(-1)
		if l, ok := local[nr.Prev]; ok && nr.Prev >= 0 {
			prev = l
		}
		rs = append(rs, outcome.Record{Ev: nr.Event, Prev: prev, ARP: nr.ARP})
	}
	start := r.us.Start()
	r.mu.Lock()
	insts := make(map[string]*instance, len(r.insts))
	for k, v := range r.insts {
		insts[k] = v
	}
	r.mu.Unlock()
	type synth struct {
		at   int32 // index in rs
		hash uint64
		inst *instance
		used bool
	}
	var outs, ins []*synth
	sentBySource := false
	for _, f := range r.cap.Frames(id) {
		in, ok := insts[f.Netns]
		if !ok || f.Iface != stack.Port {
			continue
		}
		ev := datapath.Event{Time: f.Time.Sub(start), Node: in.name, Device: stack.Port, Kind: datapath.KindNIC, Probe: id}
		if f.Out {
			ev.OutPort, ev.Action, ev.Rule = stack.Port, datapath.ActOriginate, "kernel"
			if in.name == p.From && !f.ARP {
				sentBySource = true
			}
		} else {
			ev.InPort = stack.Port
			if in.forMe(f.Data) {
				ev.Action, ev.Rule = datapath.ActDeliver, "kernel"
			} else {
				ev.Action, ev.Reason, ev.Rule = datapath.ActDrop, datapath.ReasonNotForMe, "ip"
			}
		}
		s := &synth{at: int32(len(rs)), hash: r.us.Hash(f.Data), inst: in}
		rs = append(rs, outcome.Record{Ev: ev, Prev: -1, ARP: f.ARP})
		if f.Out {
			outs = append(outs, s)
		} else {
			ins = append(ins, s)
		}
	}
	// A frame a node read from an instance's port continues from the
	// instance's originate of the same bytes.
	for k, nr := range nrecs {
		if nr.From == nil {
			continue
		}
		for _, s := range outs {
			if !s.used && s.hash == nr.From.Hash && s.inst.host == nr.From.Node && s.inst.hostPort == nr.From.Port {
				s.used = true
				rs[k].Prev = s.at
				break
			}
		}
	}
	egress := r.us.EgressOf(id)
	if r.bgp != nil && r.bgp.frrSync != nil {
		rs = r.frrCrossings(rs, nrecs, local, egress, id)
	}
	// A frame an instance received continues from the node's send.
	used := map[int]bool{}
	for _, s := range ins {
		for j, e := range egress {
			if used[j] || e.Hash != s.hash || e.Node != s.inst.host || e.Port != s.inst.hostPort {
				continue
			}
			used[j] = true
			if l, ok := local[e.Head]; ok && e.Head >= 0 {
				rs[s.at].Prev = l
			}
			break
		}
	}
	// An instance's answer continues from what it delivered last.
	for _, s := range outs {
		best := int32(-1)
		for _, d := range ins {
			ev := &rs[d.at].Ev
			if d.inst == s.inst && ev.Action == datapath.ActDeliver && !rs[d.at].ARP && ev.Time <= rs[s.at].Ev.Time &&
				(best < 0 || ev.Time >= rs[best].Ev.Time) {
				best = d.at
			}
		}
		rs[s.at].Prev = best
	}
	sorted := outcome.SortByTime(rs)
	if debugTrace {
		for i, r := range sorted {
			fmt.Printf("%d\t%v\t%s\t%s\t%s\t%s\t%s\tprev=%d arp=%v\n", i, r.Ev.Time, r.Ev.Node, r.Ev.Device, r.Ev.Action, r.Ev.Reason, r.Ev.Rule, r.Prev, r.ARP)
		}
	}
	pending := !sentBySource
	return scenarios.ProbeRecord(outcome.Derive(sorted, p.From, func() bool { return pending }), p)
}

// forMe reports whether a frame arriving on eth0 is for the instance's own
// stack: to its MAC (or a group address) and, for IPv4, to its address.
func (in *instance) forMe(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	if !frame.IsBroadcastOrMulticast(b) && !bytes.Equal(b[0:6], in.mac) {
		return false
	}
	if f, ok := userspace.FlowOf(b); ok && !frame.IsResolution(b) {
		return f.Dst == in.ip.Addr() || in.ip6.IsValid() && f.Dst == in.ip6.Addr() || f.Dst.IsMulticast()
	}
	return true
}

// ping sends an ICMP echo request from a raw socket in the instance's
// namespace and waits for the matching reply.
func (in *instance) ping(ctx context.Context, dst netip.Addr, id uint64, timeout time.Duration) (bool, error) {
	if dst.Is6() {
		return in.ping6(ctx, dst, id, timeout)
	}
	var fd int
	if err := netns.DoIn(in.ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		return false, fmt.Errorf("raw ICMP socket in %s: %w", in.name, err)
	}
	defer unix.Close(fd)
	icmpID, seq := uint16(id>>16), uint16(id)
	msg := []byte{8, 0, 0, 0, byte(icmpID >> 8), byte(icmpID), byte(seq >> 8), byte(seq)}
	msg = binary.BigEndian.AppendUint64(msg, id)
	binary.BigEndian.PutUint16(msg[2:], inetsum.Sum(msg))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return false, fmt.Errorf("send echo request from %s: %w", in.name, err)
	}
	buf := make([]byte, 1500)
	return waitFor(ctx, fd, timeout, func() (bool, error) {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return false, err
		}
		sa, ok := from.(*unix.SockaddrInet4)
		if !ok || netip.AddrFrom4(sa.Addr) != dst || n < 20 {
			return false, nil
		}
		ihl := int(buf[0]&0x0f) * 4
		m := buf[ihl:n]
		return len(m) >= 16 && m[0] == 0 && binary.BigEndian.Uint16(m[4:]) == icmpID &&
			binary.BigEndian.Uint16(m[6:]) == seq && binary.BigEndian.Uint64(m[8:]) == id, nil
	})
}

// ping6 sends an ICMPv6 echo request (the kernel fills in the checksum
// of a raw ICMPv6 socket) from the instance's IPv6 address and waits for
// the matching reply; the raw socket receives the ICMPv6 message without
// the IPv6 header.
func (in *instance) ping6(ctx context.Context, dst netip.Addr, id uint64, timeout time.Duration) (bool, error) {
	var fd int
	if err := netns.DoIn(in.ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: in.ip6.Addr().As16()}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	}); err != nil {
		return false, fmt.Errorf("raw ICMPv6 socket in %s: %w", in.name, err)
	}
	defer unix.Close(fd)
	icmpID, seq := uint16(id>>16), uint16(id)
	msg := []byte{128, 0, 0, 0, byte(icmpID >> 8), byte(icmpID), byte(seq >> 8), byte(seq)}
	msg = binary.BigEndian.AppendUint64(msg, id)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet6{Addr: dst.As16()}); err != nil {
		return false, fmt.Errorf("send ICMPv6 echo request from %s: %w", in.name, err)
	}
	buf := make([]byte, 1500)
	return waitFor(ctx, fd, timeout, func() (bool, error) {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return false, err
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok || netip.AddrFrom16(sa.Addr) != dst {
			return false, nil
		}
		m := buf[:n]
		return len(m) >= 16 && m[0] == 129 && binary.BigEndian.Uint16(m[4:]) == icmpID &&
			binary.BigEndian.Uint16(m[6:]) == seq && binary.BigEndian.Uint64(m[8:]) == id, nil
	})
}

// sockaddr is dst:port as a socket address of dst's family.
func sockaddr(dst netip.Addr, port uint16) unix.Sockaddr {
	if dst.Is6() {
		return &unix.SockaddrInet6{Addr: dst.As16(), Port: int(port)}
	}
	return &unix.SockaddrInet4{Addr: dst.As4(), Port: int(port)}
}

// fromAddr is the address and port of a socket address.
func fromAddr(sa unix.Sockaddr) (netip.Addr, int) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr), sa.Port
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr), sa.Port
	}
	return netip.Addr{}, 0
}

// udpProbe sends the ID from port srcPort(id) and waits for its echo.
func (in *instance) udpProbe(ctx context.Context, dst netip.Addr, port uint16, id uint64, timeout time.Duration) (bool, error) {
	fd, err := in.socket(unix.SOCK_DGRAM, id, dst.Is6())
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	pl := binary.BigEndian.AppendUint64(nil, id)
	if err := unix.Sendto(fd, pl, 0, sockaddr(dst, port)); err != nil {
		return false, fmt.Errorf("send UDP probe from %s: %w", in.name, err)
	}
	buf := make([]byte, 64)
	return waitFor(ctx, fd, timeout, func() (bool, error) {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.ECONNREFUSED) {
			return false, nil // an ICMP error for an earlier datagram
		}
		if err != nil {
			return false, err
		}
		a, p := fromAddr(from)
		return a == dst && p == int(port) && bytes.Equal(buf[:n], pl), nil
	})
}

// tcpProbe connects from port srcPort(id): a SYN-ACK or a RST answers it.
// The connection is reset at once (SO_LINGER 0).
func (in *instance) tcpProbe(ctx context.Context, dst netip.Addr, port uint16, id uint64, timeout time.Duration) (bool, error) {
	fd, err := in.socket(unix.SOCK_STREAM, id, dst.Is6())
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	// No retransmitted SYN inside the timeout of a probe.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1)
	err = unix.Connect(fd, sockaddr(dst, port))
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return errors.Is(err, unix.ECONNREFUSED), nil
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return false, ctx.Err()
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(min(left, 50*time.Millisecond)/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll TCP probe: %w", err)
		}
		if n == 0 {
			continue
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return false, fmt.Errorf("TCP probe: %w", err)
		}
		switch syscall.Errno(soerr) {
		case 0:
			return true, nil // SYN-ACK
		case unix.ECONNREFUSED:
			return true, nil // RST
		default:
			return false, nil // unreachable, timed out
		}
	}
}

// socket opens a non-blocking IPv4 (IPv6 when v6) socket of type typ in
// the instance's namespace, bound to the instance's address of that
// family and port srcPort(id).
func (in *instance) socket(typ int, id uint64, v6 bool) (int, error) {
	var fd int
	err := netns.DoIn(in.ns, func() error {
		var err error
		family, local := unix.AF_INET, in.ip.Addr()
		if v6 {
			family, local = unix.AF_INET6, in.ip6.Addr()
		}
		fd, err = unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, sockaddr(local, srcPort(id))); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind port %d: %w", srcPort(id), err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("socket in %s: %w", in.name, err)
	}
	return fd, nil
}

// waitFor polls fd until match reports the answer, the timeout passes or
// ctx ends.
func waitFor(ctx context.Context, fd int, timeout time.Duration, match func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(min(left, 50*time.Millisecond)/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll: %w", err)
		}
		for {
			ok, err := match()
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
	}
}
