package calibrate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/topologies/netns"
)

// The round trips: ICMP echo from namespace a to b (see roundTrip). Every
// path joins a and b in one subnet, 10.77.0.1 and .2, except the routed
// ones (10.77.1.1 and 10.77.2.2).
const warmup = 200

// path is one topology between a and b, built in its own namespaces.
type path struct {
	name    string
	ns      []string // namespaces to delete, in order
	cleanup []func() // run before the namespaces go
	client  int      // socket fd in a, connected to the echo server
	seq     uint16
	rtts    []time.Duration
}

type run struct {
	prefix  string
	o       Options
	paths   []*path
	ovsh    *ovsHost
	extraNS []string // namespaces of no one path (the shared OVS)
	cleanup []func() // run last first, before extraNS go
}

// Run builds every path, measures their round trips in interleaved rounds
// and derives the per-device costs (see the method in the returned table).
func Run(ctx context.Context, o Options) (*cost.Table, error) {
	if o.Samples <= 0 {
		o.Samples = 30000
	}
	if o.Rounds <= 0 {
		o.Rounds = 100
	}
	if o.Previous == nil {
		o.Previous = cost.Default()
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	r := &run{prefix: "nbcal-" + hex.EncodeToString(b[:]), o: o}
	defer r.close()

	builds := []struct {
		name  string
		build func(p *path) error
	}{
		{"direct", r.direct},
		{"redirect", func(p *path) error { return r.redirect(p, 0) }},
		{"bpf8", func(p *path) error { return r.redirect(p, 8) }},
		{"bpf16", func(p *path) error { return r.redirect(p, 16) }},
		{"bpf32", func(p *path) error { return r.redirect(p, 32) }},
		{"bridge", r.bridge},
		{"routed", func(p *path) error { return r.routed(p, -1) }},
		{"ipt0", func(p *path) error { return r.routed(p, 0) }},
		{"ipt250", func(p *path) error { return r.routed(p, 250) }},
		{"ipt500", func(p *path) error { return r.routed(p, 500) }},
		{"ipt1000", func(p *path) error { return r.routed(p, 1000) }},
		{"vxlan-base", func(p *path) error { return r.vxlan(p, false) }},
		{"vxlan", func(p *path) error { return r.vxlan(p, true) }},
	}
	if o.OVS {
		builds = append(builds,
			struct {
				name  string
				build func(p *path) error
			}{"ovs", func(p *path) error { return r.ovsPath(p, "s") }},
			struct {
				name  string
				build func(p *path) error
			}{"ovs-patch", func(p *path) error { return r.ovsPath(p, "p") }},
			struct {
				name  string
				build func(p *path) error
			}{"ovs-bond", func(p *path) error { return r.ovsPath(p, "k") }})
	}
	for i, bd := range builds {
		p := &path{name: bd.name, client: -1}
		r.paths = append(r.paths, p)
		base := fmt.Sprintf("%s-%d", r.prefix, i)
		p.ns = []string{base + "a", base + "b", base + "m", base + "n"}
		for _, ns := range p.ns {
			if err := sh("ip", "netns", "add", ns); err != nil {
				return nil, fmt.Errorf("calibrate %s: %w", p.name, err)
			}
			if err := sh("ip", "-n", ns, "link", "set", "dev", "lo", "up"); err != nil {
				return nil, fmt.Errorf("calibrate %s: %w", p.name, err)
			}
		}
		o.Progress("build " + p.name)
		if err := bd.build(p); err != nil {
			return nil, fmt.Errorf("calibrate: build path %s: %w", p.name, err)
		}
		if err := r.start(p); err != nil {
			return nil, fmt.Errorf("calibrate: path %s: %w", p.name, err)
		}
	}
	per := max(o.Samples/o.Rounds, 1)
	for round := range o.Rounds {
		o.Progress(fmt.Sprintf("round %d/%d", round+1, o.Rounds))
		for _, p := range r.paths {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := p.sample(per); err != nil {
				return nil, fmt.Errorf("calibrate: path %s: %w", p.name, err)
			}
		}
	}
	return r.table()
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// in runs a command in namespace ns.
func in(ns string, args ...string) error {
	return sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func (p *path) a() string { return p.ns[0] }
func (p *path) b() string { return p.ns[1] }
func (p *path) m() string { return p.ns[2] }
func (p *path) n() string { return p.ns[3] }

// veth joins ifA in nsA to ifB in nsB, both up.
func veth(nsA, ifA, nsB, ifB string) error {
	if err := sh("ip", "-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	if err := sh("ip", "-n", nsA, "link", "set", "dev", ifA, "up"); err != nil {
		return err
	}
	return sh("ip", "-n", nsB, "link", "set", "dev", ifB, "up")
}

// ends gives a and b their addresses on eth0 (a /24 each; gw routes
// another subnet's traffic, as the routed paths need).
func ends(p *path, aAddr, bAddr, aGW, bGW string) error {
	for _, c := range [][]string{
		{"ip", "-n", p.a(), "addr", "add", aAddr, "dev", "eth0"},
		{"ip", "-n", p.b(), "addr", "add", bAddr, "dev", "eth0"},
	} {
		if err := sh(c...); err != nil {
			return err
		}
	}
	if aGW != "" {
		if err := sh("ip", "-n", p.a(), "route", "add", "default", "via", aGW); err != nil {
			return err
		}
		if err := sh("ip", "-n", p.b(), "route", "add", "default", "via", bGW); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) direct(p *path) error {
	if err := veth(p.a(), "eth0", p.b(), "eth0"); err != nil {
		return err
	}
	return ends(p, "10.77.0.1/24", "10.77.0.2/24", "", "")
}

// viaM wires a and b to namespace m: a/eth0 — m/ma, m/mb — b/eth0.
func viaM(p *path) error {
	if err := veth(p.a(), "eth0", p.m(), "ma"); err != nil {
		return err
	}
	return veth(p.m(), "mb", p.b(), "eth0")
}

// redirect joins ma and mb in m with a tc BPF program on each one's
// ingress that redirects every frame to the other, after extra programs
// that each look a key up in a hash map and pass the frame on (TCX).
func (r *run) redirect(p *path, extra int) error {
	if err := viaM(p); err != nil {
		return err
	}
	if err := ends(p, "10.77.0.1/24", "10.77.0.2/24", "", ""); err != nil {
		return err
	}
	ns, err := vnetns.GetFromName(p.m())
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", p.m(), err)
	}
	defer ns.Close()
	var links []link.Link
	var objs []interface{ Close() error }
	p.cleanup = append(p.cleanup, func() {
		for _, l := range links {
			l.Close()
		}
		for _, o := range objs {
			o.Close()
		}
	})
	return netns.DoIn(ns, func() error {
		idx := map[string]int{}
		for _, n := range []string{"ma", "mb"} {
			ifc, err := net.InterfaceByName(n)
			if err != nil {
				return err
			}
			idx[n] = ifc.Index
		}
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
		if err != nil {
			return fmt.Errorf("create map: %w", err)
		}
		objs = append(objs, m)
		if err := m.Put(uint32(0), uint64(1)); err != nil {
			return fmt.Errorf("fill map: %w", err)
		}
		// A program can be attached once per hook: each attachment gets
		// its own copy.
		lookupSpec := &ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: asm.Instructions{
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.Mov.Imm(asm.R0, -1), // TCX_NEXT: the next program decides
			asm.Return(),
		}}
		for from, to := range map[string]string{"ma": "mb", "mb": "ma"} {
			for range extra {
				lookup, err := ebpf.NewProgram(lookupSpec)
				if err != nil {
					return fmt.Errorf("load lookup program: %w", err)
				}
				objs = append(objs, lookup)
				l, err := link.AttachTCX(link.TCXOptions{Interface: idx[from], Program: lookup, Attach: ebpf.AttachTCXIngress})
				if err != nil {
					return fmt.Errorf("attach lookup program to %s: %w", from, err)
				}
				links = append(links, l)
			}
			redir, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: asm.Instructions{
				asm.Mov.Imm(asm.R1, int32(idx[to])),
				asm.Mov.Imm(asm.R2, 0),
				asm.FnRedirect.Call(),
				asm.Return(),
			}})
			if err != nil {
				return fmt.Errorf("load redirect program: %w", err)
			}
			objs = append(objs, redir)
			l, err := link.AttachTCX(link.TCXOptions{Interface: idx[from], Program: redir, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				return fmt.Errorf("attach redirect program to %s: %w", from, err)
			}
			links = append(links, l)
		}
		return nil
	})
}

// bridge joins ma and mb with a Linux bridge.
func (r *run) bridge(p *path) error {
	if err := viaM(p); err != nil {
		return err
	}
	if err := linuxBridge(p.m(), "br0", "ma", "mb"); err != nil {
		return err
	}
	return ends(p, "10.77.0.1/24", "10.77.0.2/24", "", "")
}

func linuxBridge(ns, br string, ports ...string) error {
	if err := sh("ip", "-n", ns, "link", "add", br, "type", "bridge"); err != nil {
		return err
	}
	for _, port := range ports {
		if err := sh("ip", "-n", ns, "link", "set", "dev", port, "master", br); err != nil {
			return err
		}
	}
	return sh("ip", "-n", ns, "link", "set", "dev", br, "up")
}

// routed makes m a router between 10.77.1.0/24 (a) and 10.77.2.0/24 (b).
// rules < 0 leaves iptables alone in m; otherwise the filter table's
// FORWARD chain holds that many rules no packet matches, so each packet
// walks them all.
func (r *run) routed(p *path, rules int) error {
	if err := viaM(p); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"ip", "-n", p.m(), "addr", "add", "10.77.1.254/24", "dev", "ma"},
		{"ip", "-n", p.m(), "addr", "add", "10.77.2.254/24", "dev", "mb"},
		{"ip", "netns", "exec", p.m(), "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	} {
		if err := sh(c...); err != nil {
			return err
		}
	}
	if err := ends(p, "10.77.1.1/24", "10.77.2.2/24", "10.77.1.254", "10.77.2.254"); err != nil {
		return err
	}
	if rules < 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for i := range rules {
		fmt.Fprintf(&b, "-A FORWARD -s 198.18.%d.%d/32 -j DROP\n", i/250, i%250+1)
	}
	b.WriteString("COMMIT\n")
	cmd := exec.Command("ip", "netns", "exec", p.m(), "iptables-restore")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore %d rules: %w: %s", rules, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// vxlan joins a (behind m) and b (behind n) over an underlay veth m/u —
// n/u: with tunnel, each side bridges its instance veth with a VXLAN
// device over the underlay; without, with the underlay veth itself.
func (r *run) vxlan(p *path, tunnel bool) error {
	if err := veth(p.a(), "eth0", p.m(), "ma"); err != nil {
		return err
	}
	if err := veth(p.n(), "nb", p.b(), "eth0"); err != nil {
		return err
	}
	if err := veth(p.m(), "u", p.n(), "u"); err != nil {
		return err
	}
	sides := []struct{ ns, port, local, remote string }{
		{p.m(), "ma", "10.78.0.1", "10.78.0.2"},
		{p.n(), "nb", "10.78.0.2", "10.78.0.1"},
	}
	for _, s := range sides {
		if !tunnel {
			if err := linuxBridge(s.ns, "br0", s.port, "u"); err != nil {
				return err
			}
			continue
		}
		for _, c := range [][]string{
			{"ip", "-n", s.ns, "addr", "add", s.local + "/24", "dev", "u"},
			{"ip", "-n", s.ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "local", s.local, "remote", s.remote,
				"dstport", "4789", "dev", "u"},
			{"ip", "-n", s.ns, "link", "set", "dev", "vx0", "up"},
		} {
			if err := sh(c...); err != nil {
				return err
			}
		}
		if err := linuxBridge(s.ns, "br0", s.port, "vx0"); err != nil {
			return err
		}
	}
	return ends(p, "10.77.0.1/24", "10.77.0.2/24", "", "")
}

// ovsHost is one Open vSwitch (ovsdb-server and ovs-vswitchd with their
// own database and run directory) in its own namespace, shared by every
// OVS path so that their differences are the devices', not two daemons'.
type ovsHost struct {
	ns    string
	vsctl func(args ...string) error
}

// ovs starts the shared Open vSwitch on first use.
func (r *run) ovs() (*ovsHost, error) {
	if r.ovsh != nil {
		return r.ovsh, nil
	}
	ns := r.prefix + "-ovs"
	if err := sh("ip", "netns", "add", ns); err != nil {
		return nil, err
	}
	r.extraNS = append(r.extraNS, ns)
	dir, err := os.MkdirTemp("", ns+"-")
	if err != nil {
		return nil, err
	}
	r.cleanup = append(r.cleanup, func() { os.RemoveAll(dir) })
	env := []string{"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir}
	db := filepath.Join(dir, "conf.db")
	sock := filepath.Join(dir, "db.sock")
	run := func(args ...string) error {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	// The daemons are stopped before the directory goes (cleanups run
	// last first).
	r.cleanup = append(r.cleanup, func() {
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			b, err := os.ReadFile(filepath.Join(dir, d+".pid"))
			if err != nil {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = unix.Kill(pid, unix.SIGTERM)
			}
		}
	})
	for _, s := range [][]string{
		{"ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"},
		{"ovsdb-server", db, "--remote=punix:" + sock, "--pidfile=" + filepath.Join(dir, "ovsdb-server.pid"),
			"--detach", "--log-file=" + filepath.Join(dir, "ovsdb-server.log")},
		{"ovs-vsctl", "--db=unix:" + sock, "--no-wait", "init"},
		{"ovs-vswitchd", "unix:" + sock, "--pidfile=" + filepath.Join(dir, "ovs-vswitchd.pid"),
			"--detach", "--log-file=" + filepath.Join(dir, "ovs-vswitchd.log")},
	} {
		if err := run(s...); err != nil {
			return nil, err
		}
	}
	r.ovsh = &ovsHost{ns: ns, vsctl: func(args ...string) error {
		return run(append([]string{"ovs-vsctl", "--db=unix:" + sock, "--timeout=10"}, args...)...)
	}}
	return r.ovsh, nil
}

// ovsPath joins a and b through the shared Open vSwitch's userspace
// datapath (datapath_type=netdev): one bridge (variant "s"), two bridges
// joined by a patch pair ("p"), or one bridge whose b side is an
// active-backup bond of two veths that b bridges ("k").
func (r *run) ovsPath(p *path, v string) error {
	o, err := r.ovs()
	if err != nil {
		return err
	}
	if err := veth(p.a(), "eth0", o.ns, v+"a"); err != nil {
		return err
	}
	if err := veth(o.ns, v+"b", p.b(), "eth0"); err != nil {
		return err
	}
	netdev := "datapath_type=netdev"
	br := "br" + v
	switch v {
	case "s":
		err = o.vsctl("add-br", br, "--", "set", "bridge", br, netdev,
			"--", "add-port", br, v+"a", "--", "add-port", br, v+"b")
	case "p":
		br1 := br + "1"
		err = o.vsctl("add-br", br, "--", "set", "bridge", br, netdev,
			"--", "add-br", br1, "--", "set", "bridge", br1, netdev,
			"--", "add-port", br, v+"a", "--", "add-port", br1, v+"b",
			"--", "add-port", br, v+"p0", "--", "set", "interface", v+"p0", "type=patch", "options:peer="+v+"p1",
			"--", "add-port", br1, v+"p1", "--", "set", "interface", v+"p1", "type=patch", "options:peer="+v+"p0")
	case "k":
		if err := veth(o.ns, v+"c", p.b(), "eth1"); err != nil {
			return err
		}
		// b bridges its two ends; its address goes on the bridge (ends).
		if err := sh("ip", "-n", p.b(), "link", "set", "dev", "eth0", "name", "b0"); err != nil {
			return err
		}
		if err := linuxBridge(p.b(), "eth0", "b0", "eth1"); err != nil {
			return err
		}
		err = o.vsctl("add-br", br, "--", "set", "bridge", br, netdev,
			"--", "add-port", br, v+"a",
			"--", "add-bond", br, v+"bond", v+"b", v+"c", "bond_mode=active-backup")
	}
	if err != nil {
		return err
	}
	return ends(p, "10.77.0.1/24", "10.77.0.2/24", "", "")
}

// icmpSocket opens a raw ICMP socket in namespace ns, connected to dst,
// that stamps what it receives with the kernel's receive time.
func icmpSocket(ns string, dst [4]byte) (int, error) {
	h, err := vnetns.GetFromName(ns)
	if err != nil {
		return -1, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer h.Close()
	fd := -1
	err = netns.DoIn(h, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
		}
		tv := unix.NsecToTimeval(int64(time.Second))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: dst})
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
		fd = -1
	}
	return fd, err
}

// start opens p's client socket in a and warms the path up.
func (r *run) start(p *path) error {
	bAddr := [4]byte{10, 77, 0, 2}
	if strings.HasPrefix(p.name, "routed") || strings.HasPrefix(p.name, "ipt") {
		bAddr = [4]byte{10, 77, 2, 2}
	}
	var err error
	p.client, err = icmpSocket(p.a(), bAddr)
	if err != nil {
		return err
	}
	// The first round trips resolve ARP and set up flows (OVS installs its
	// datapath flows on the first packets): not measured.
	deadline := time.Now().Add(10 * time.Second)
	for ok := 0; ok < warmup; {
		if _, err := p.roundTrip(uint16(ok)); err == nil {
			ok++
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no echo reply from %s through the path within 10s: %w", p.b(), err)
		}
	}
	return nil
}

// roundTrip sends an ICMP echo request with sequence number seq and waits
// for its reply, which b's kernel sends without waking any process. The
// round trip runs from just before the send to the kernel's receive
// timestamp of the reply, so that no thread's wakeup is part of it.
func (p *path) roundTrip(seq uint16) (time.Duration, error) {
	req := []byte{8, 0, 0, 0, 0x4e, 0x42, byte(seq >> 8), byte(seq), 'n', 'e', 't', 'b', 'e', 'd', 0, 0}
	binary.BigEndian.PutUint16(req[2:], inetsum.Sum(req))
	buf := make([]byte, 128)
	oob := make([]byte, 128)
	t0 := time.Now()
	if _, err := unix.Write(p.client, req); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	for {
		n, oobn, _, _, err := unix.Recvmsg(p.client, buf, oob, 0)
		if err != nil {
			return 0, fmt.Errorf("receive: %w", err)
		}
		if n < 20 {
			continue
		}
		icmp := buf[int(buf[0]&0x0f)*4 : n]
		if len(icmp) < 8 || icmp[0] != 0 || binary.BigEndian.Uint16(icmp[4:]) != 0x4e42 {
			continue
		}
		if got := binary.BigEndian.Uint16(icmp[6:]); got != seq {
			continue // a late reply to an earlier request
		}
		at, err := rxStamp(oob[:oobn])
		if err != nil {
			return 0, err
		}
		return at.Sub(t0), nil
	}
}

// rxStamp reads the kernel's receive timestamp (SCM_TIMESTAMPNS).
func rxStamp(oob []byte) (time.Time, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return time.Unix(sec, nsec), nil
		}
	}
	return time.Time{}, errors.New("no receive timestamp on the reply")
}

// sample takes n round trips.
func (p *path) sample(n int) error {
	lost := 0
	for i := 0; i < n; i++ {
		d, err := p.roundTrip(p.seq)
		p.seq++
		if err != nil {
			if lost++; lost > n/10+10 {
				return fmt.Errorf("%d of %d round trips lost: %w", lost, i+1, err)
			}
			i--
			continue
		}
		p.rtts = append(p.rtts, d)
	}
	return nil
}

func (p *path) median() time.Duration {
	s := slices.Clone(p.rtts)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *run) close() {
	for _, p := range r.paths {
		if p.client >= 0 {
			unix.Close(p.client)
		}
		for _, f := range p.cleanup {
			f()
		}
		for _, ns := range p.ns {
			_ = sh("ip", "netns", "del", ns)
		}
	}
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
	for _, ns := range r.extraNS {
		_ = sh("ip", "netns", "del", ns)
	}
}

// table derives the costs from the paths' medians.
func (r *run) table() (*cost.Table, error) {
	m := medians{}
	n := 0
	for _, p := range r.paths {
		m[p.name] = p.median()
		n = len(p.rtts)
		r.o.Progress(fmt.Sprintf("%-10s median rtt %v (%d samples)", p.name, m[p.name], len(p.rtts)))
	}
	t, err := derive(m, n, r.o.Previous)
	if err != nil {
		return nil, err
	}
	t.Date = time.Now().UTC().Format(time.DateOnly)
	t.Machine, t.Command = r.o.Machine, r.o.Command
	t.Paths = map[string]time.Duration(m)
	return t, nil
}
