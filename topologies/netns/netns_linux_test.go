package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newTestLab returns a spine-leaf topology with a unique lab name, and
// options whose state root is private to the test.
func newTestLab(t testing.TB, spines, leaves, hosts int) (*topologies.Topology, *Options) {
	t.Helper()
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{
		Name: testutil.Name(testLabPrefix), Spines: spines, Leaves: leaves, HostsPerLeaf: hosts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tp, &Options{StateRoot: t.TempDir()}
}

// deploy deploys tp and registers its destruction.
func deploy(t testing.TB, tp *topologies.Topology, opt *Options) (*Lab, *Report) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := Destroy(tp.Name, opt); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	lab, rep, err := Deploy(context.Background(), tp, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	return lab, rep
}

// ifaceState is what "changes nothing" compares.
type ifaceState struct {
	Index, MTU   int
	MAC, Alias   string
	Up           bool
	Peer, PeerNS int
}

func snapshot(t *testing.T, lab *Lab) map[string]ifaceState {
	t.Helper()
	out := map[string]ifaceState{}
	for _, node := range lab.Nodes() {
		h, err := lab.Handle(node)
		if err != nil {
			t.Fatal(err)
		}
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			a := l.Attrs()
			out[node+":"+a.Name] = ifaceState{a.Index, a.MTU, a.HardwareAddr.String(), a.Alias,
				a.RawFlags&unix.IFF_UP != 0, a.ParentIndex, a.NetNsID}
		}
	}
	return out
}

func TestDeploySpineLeaf(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 2, 4, 2)
	lab, rep := deploy(t, tp, opt)
	t.Log(rep)
	want := Report{Lab: tp.Name, Nodes: 14, Links: 16, NamespacesCreated: 14, LinksCreated: 16}
	rep.Duration, rep.NamespacesTook, rep.LinksTook = 0, 0, 0
	if *rep != want {
		t.Fatalf("first deploy report %+v, want %+v", *rep, want)
	}

	t.Run("namespaces and interfaces", func(t *testing.T) {
		for _, n := range tp.Nodes {
			name := tp.LabPrefix() + n.Name
			if !isNamespace(filepath.Join(NetnsDir, name)) {
				t.Errorf("node %s: %s is not a namespace", n.Name, name)
			}
			h, err := lab.Handle(n.Name)
			if err != nil {
				t.Fatal(err)
			}
			lo, err := h.LinkByName("lo")
			if err != nil || lo.Attrs().RawFlags&unix.IFF_UP == 0 || lo.Attrs().Alias != Alias(tp.Name) {
				t.Errorf("node %s: lo %+v, %v: want up with alias", n.Name, lo, err)
			}
		}
		for _, l := range tp.Links {
			for _, e := range []topologies.Endpoint{l.A, l.B} {
				h, _ := lab.Handle(e.Node)
				link, err := h.LinkByName(e.Iface)
				if err != nil {
					t.Errorf("%s: %v", e, err)
					continue
				}
				a := link.Attrs()
				if link.Type() != "veth" || a.MTU != linkMTU(l) || a.RawFlags&unix.IFF_UP == 0 || a.Alias != Alias(tp.Name) {
					t.Errorf("%s: type %s mtu %d (want %d) flags %v alias %q", e, link.Type(), a.MTU, linkMTU(l), a.Flags, a.Alias)
				}
			}
		}
	})

	t.Run("every link carries a frame both ways", func(t *testing.T) {
		for i, l := range tp.Links {
			for _, dir := range [][2]topologies.Endpoint{{l.A, l.B}, {l.B, l.A}} {
				if err := sendReceive(lab, dir[0], dir[1], fmt.Sprintf("link %d %s>%s", i, dir[0], dir[1])); err != nil {
					t.Errorf("%s -> %s: %v", dir[0], dir[1], err)
				}
			}
		}
	})

	t.Run("Do runs inside the node", func(t *testing.T) {
		var names []string
		err := lab.Do("leaf1", func() error {
			ifs, err := net.Interfaces()
			for _, i := range ifs {
				names = append(names, i.Name)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := append([]string{"lo"}, tp.Interfaces("leaf1")...)
		sort.Strings(names)
		sort.Strings(want)
		if !reflect.DeepEqual(names, want) {
			t.Errorf("interfaces seen in leaf1: %v, want %v", names, want)
		}
	})

	t.Run("ip netns exec sees the lab", func(t *testing.T) {
		if _, err := exec.LookPath("ip"); err != nil {
			testutil.Unavailable(t, "iproute2's ip is not installed")
		}
		out, err := exec.Command("ip", "netns", "exec", tp.LabPrefix()+"spine1", "ip", "-o", "link", "show", "eth1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "eth1@") {
			t.Errorf("ip netns exec: %v: %s", err, out)
		}
	})

	t.Run("second deploy changes nothing", func(t *testing.T) {
		before := snapshot(t, lab)
		lab2, rep2, err := Deploy(context.Background(), tp, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer lab2.Close()
		rep2.Duration, rep2.NamespacesTook, rep2.LinksTook = 0, 0, 0
		want := Report{Lab: tp.Name, Nodes: 14, Links: 16, NamespacesPresent: 14, LinksPresent: 16}
		if *rep2 != want || rep2.Changed() {
			t.Errorf("second deploy report %+v, want %+v", *rep2, want)
		}
		if after := snapshot(t, lab); !reflect.DeepEqual(before, after) {
			t.Errorf("second deploy changed interfaces:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("destroy leaves nothing", func(t *testing.T) {
		drep, err := lab.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		if drep.Namespaces != len(tp.Nodes) || !reflect.DeepEqual(drep.Labs, []string{tp.Name}) {
			t.Errorf("destroy report %+v", drep)
		}
		assertGone(t, tp.Name, opt)
	})
}

// assertGone checks that nothing of lab is left: no namespace under
// NetnsDir, no state, no interface carrying its alias anywhere.
func assertGone(t *testing.T, lab string, opt *Options) {
	t.Helper()
	ents, _ := os.ReadDir(NetnsDir)
	for _, e := range ents {
		if strings.Contains(e.Name(), lab) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if _, err := os.Stat(labDir(opt.stateRoot(), lab)); !os.IsNotExist(err) {
		t.Errorf("state of %s left behind (%v)", lab, err)
	}
	marked, err := scanMarked(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ns := marked[lab]; len(ns) > 0 {
		t.Errorf("namespaces with the lab's alias left: %v", ns)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Alias == Alias(lab) {
			t.Errorf("link %s with the lab's alias in the root namespace", l.Attrs().Name)
		}
	}
}

// testEtherType is IEEE's local experimental EtherType: nothing else on a
// fresh veth sends it.
const testEtherType = 0x88b5

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket inside node bound to iface.
func packetSocket(lab *Lab, e topologies.Endpoint) (fd int, mac net.HardwareAddr, err error) {
	err = lab.Do(e.Node, func() error {
		ifi, err := net.InterfaceByName(e.Iface)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		// Protocol 0 at socket() and the real one at bind(): a socket
		// made with a protocol is hooked at once, and bind() re-hooking
		// it waits for an RCU grace period.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to %s: %w", e, err)
		}
		tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	return fd, mac, err
}

// sendReceive sends one Ethernet frame built with gopacket out of from and
// waits, with a deadline, for it to arrive on to.
func sendReceive(lab *Lab, from, to topologies.Endpoint, payload string) error {
	sfd, smac, err := packetSocket(lab, from)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	rfd, rmac, err := packetSocket(lab, to)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: testEtherType}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, gopacket.Payload(payload)); err != nil {
		return err
	}
	// A veth whose peer came up a moment ago may not carry the first
	// frame, so the frame is sent again every half second until it
	// arrives or the deadline passes.
	deadline := time.Now().Add(10 * time.Second)
	var resend time.Time
	b := make([]byte, 2048)
	for time.Now().Before(deadline) {
		if time.Now().After(resend) {
			if _, err := unix.Write(sfd, buf.Bytes()); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			resend = time.Now().Add(500 * time.Millisecond)
		}
		n, sa, err := unix.Recvfrom(rfd, b, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if ll, ok := sa.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p := gopacket.NewPacket(b[:n], layers.LayerTypeEthernet, gopacket.Default)
		got, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !ok {
			continue
		}
		// Short frames are padded to 60 bytes on the wire.
		if got.SrcMAC.String() == smac.String() && strings.HasPrefix(string(got.Payload), payload) {
			return nil
		}
	}
	return fmt.Errorf("frame %q not received within the deadline", payload)
}

func TestRedeployRepairs(t *testing.T) {
	testutil.RequireRoot(t)
	cases := []struct {
		name   string
		damage func(t *testing.T, lab *Lab, l *topologies.Link)
		check  func(r *Report) bool
	}{
		{"deleted veth is recreated", func(t *testing.T, lab *Lab, l *topologies.Link) {
			h, _ := lab.Handle(l.A.Node)
			if err := h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.A.Iface}}); err != nil {
				t.Fatal(err)
			}
		}, func(r *Report) bool { return r.LinksCreated == 1 && r.LinksPresent == r.Links-1 }},
		{"wrong MTU is fixed", func(t *testing.T, lab *Lab, l *topologies.Link) {
			h, _ := lab.Handle(l.B.Node)
			if err := h.LinkSetMTU(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.B.Iface}}, 1280); err != nil {
				t.Fatal(err)
			}
		}, func(r *Report) bool { return r.LinksFixed == 1 && r.LinksPresent == r.Links-1 }},
		{"down end is brought up", func(t *testing.T, lab *Lab, l *topologies.Link) {
			h, _ := lab.Handle(l.B.Node)
			if err := h.LinkSetDown(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.B.Iface}}); err != nil {
				t.Fatal(err)
			}
		}, func(r *Report) bool { return r.LinksFixed == 1 && r.LinksPresent == r.Links-1 }},
		{"crossed veth is replaced", func(t *testing.T, lab *Lab, l *topologies.Link) {
			// Re-create l's pair between the wrong namespaces: l.A stays,
			// its peer lands in a third node under a spare name.
			h, _ := lab.Handle(l.A.Node)
			if err := h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.A.Iface}}); err != nil {
				t.Fatal(err)
			}
			other := lab.nodes[lab.order[0]]
			if other.Name == l.A.Node || other.Name == l.B.Node {
				other = lab.nodes[lab.order[1]]
			}
			attrs := netlink.NewLinkAttrs()
			attrs.Name = l.A.Iface
			veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "stray0", PeerNamespace: netlink.NsFd(other.sys.ns), PeerTxQLen: -1}
			if err := h.LinkAdd(veth); err != nil {
				t.Fatal(err)
			}
		}, func(r *Report) bool { return r.LinksReplaced == 1 && r.LinksPresent == r.Links-1 }},
		{"lost namespace is recreated", func(t *testing.T, lab *Lab, l *topologies.Link) {
			// Remove a host's namespace (its veth goes with it).
			n := lab.nodes[l.A.Node]
			lab.Close()
			if _, err := removeNamespace(n.Netns); err != nil {
				t.Fatal(err)
			}
		}, func(r *Report) bool {
			// The kernel frees the old namespace (and the veth end it
			// held) asynchronously: leaf1's end may still be there, and
			// is then replaced.
			return r.NamespacesCreated == 1 && r.LinksCreated+r.LinksReplaced == 1 && r.LinksPresent == r.Links-1
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, opt := newTestLab(t, 1, 2, 1)
			lab, _ := deploy(t, tp, opt)
			// The first link is host1--leaf1: host1 has only this link.
			c.damage(t, lab, tp.Links[0])
			lab.Close()
			lab2, rep, err := Deploy(context.Background(), tp, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer lab2.Close()
			if !c.check(rep) {
				t.Errorf("report %+v", *rep)
			}
			if err := sendReceive(lab2, tp.Links[0].A, tp.Links[0].B, "repaired"); err != nil {
				t.Error(err)
			}
			// A third deploy finds everything in place.
			lab3, rep3, err := Deploy(context.Background(), tp, opt)
			if err != nil {
				t.Fatal(err)
			}
			lab3.Close()
			if rep3.Changed() || rep3.LinksPresent != rep3.Links {
				t.Errorf("third deploy changed something: %+v", *rep3)
			}
		})
	}
}

func TestAttach(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 2, 1)
	deploy(t, tp, opt)

	t.Run("by topology", func(t *testing.T) {
		lab, err := Attach(tp)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Close()
		if err := sendReceive(lab, tp.Links[1].B, tp.Links[1].A, "attached"); err != nil {
			t.Error(err)
		}
	})
	t.Run("by lab name", func(t *testing.T) {
		lab, err := AttachLab(tp.Name, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Close()
		if got := lab.Nodes(); len(got) != len(tp.Nodes) {
			t.Errorf("nodes %v", got)
		}
	})
	t.Run("containerlab topology-data.json", func(t *testing.T) {
		// Describe the deployed lab as containerlab would.
		var nodes, links []string
		for i, n := range tp.Nodes {
			nodes = append(nodes, fmt.Sprintf(`%q: {"index": "%d", "shortname": %q, "longname": %q, "kind": "linux"}`,
				n.Name, i, n.Name, tp.LabPrefix()+n.Name))
		}
		for _, l := range tp.Links {
			links = append(links, fmt.Sprintf(`{"a": {"node": %q, "interface": %q}, "z": {"node": %q, "interface": %q}}`,
				l.A.Node, l.A.Iface, l.B.Node, l.B.Iface))
		}
		dir := filepath.Join(t.TempDir(), "clab-"+tp.Name)
		os.MkdirAll(dir, 0o755)
		data := fmt.Sprintf(`{"name": %q, "type": "clab", "clab": {"config": {"prefix": "clab"}}, "nodes": {%s}, "links": [%s]}`,
			tp.Name, strings.Join(nodes, ","), strings.Join(links, ","))
		if err := os.WriteFile(filepath.Join(dir, ClabDataFile), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		lab, err := AttachClab(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Close()
		if err := sendReceive(lab, tp.Links[0].A, tp.Links[0].B, "clab"); err != nil {
			t.Error(err)
		}
		if _, err := lab.Destroy(); err == nil {
			t.Error("Destroy of a containerlab lab succeeded; it must refuse")
		}
	})
	t.Run("missing parts", func(t *testing.T) {
		missing := *tp
		missing.Nodes = append(append([]*topologies.Node(nil), tp.Nodes...), &topologies.Node{Name: "ghost"})
		missing.Links = append(append([]*topologies.Link(nil), tp.Links...), &topologies.Link{
			A: topologies.Endpoint{Node: "spine1", Iface: "eth99"}, B: topologies.Endpoint{Node: "ghost", Iface: "eth1"}})
		_, err := Attach(&missing)
		if !errors.Is(err, ErrNotDeployed) {
			t.Fatalf("Attach with a ghost node: %v, want ErrNotDeployed", err)
		}
		for _, want := range []string{"node ghost", "interface eth99"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if _, err := AttachLab(testutil.Name(testLabPrefix), opt); !errors.Is(err, ErrNotDeployed) {
			t.Errorf("AttachLab of an unknown lab: %v", err)
		}
	})
}

// The SIGKILL test re-executes the test binary as a child that deploys a lab
// and stops at a chosen point; the parent kills it there.
const (
	childEnv      = "NETBED_NETNS_TEST_CHILD"     // lab name
	childStateEnv = "NETBED_NETNS_TEST_STATE"     // state root
	childStopEnv  = "NETBED_NETNS_TEST_STOP"      // "namespace:N" or "link:N" or ""
	childReady    = "deploy stopped, kill me now" // printed at the stop point
)

// childDeploy runs in the child process (see TestMain).
func childDeploy() int {
	stage, count, _ := strings.Cut(os.Getenv(childStopEnv), ":")
	n, _ := strconv.Atoi(count)
	block := make(chan struct{})
	if stage != "" {
		testHook = func(s string, done int) {
			if s == stage && done >= n {
				fmt.Println(childReady)
				<-block // until SIGKILL
			}
		}
	}
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: os.Getenv(childEnv), Spines: 4, Leaves: 16, HostsPerLeaf: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _, err = Deploy(context.Background(), tp, &Options{StateRoot: os.Getenv(childStateEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(childReady)
	<-block
	return 0
}

func TestDestroyAllAfterKill(t *testing.T) {
	testutil.RequireRoot(t)
	cases := []struct {
		name string
		stop string
		// loseState removes the state directory too, as if the run died
		// before writing it: only the aliases are left to find the lab.
		loseState bool
	}{
		{"killed while creating namespaces", "namespace:40", false},
		{"killed while creating links", "link:100", false},
		{"killed with state lost", "link:10", true},
		{"killed when namespaces appear", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lab := testutil.Name(testLabPrefix)
			opt := &Options{StateRoot: t.TempDir(), Match: func(l string) bool { return l == lab }}
			t.Cleanup(func() { DestroyAll(opt) })
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+lab, childStateEnv+"="+opt.StateRoot, childStopEnv+"="+c.stop)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if c.stop != "" {
				line, err := bufio.NewReader(out).ReadString('\n')
				if err != nil || !strings.Contains(line, childReady) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("child did not reach its stop point: %q %v", line, err)
				}
			} else {
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) && !anyNamespace(lab) {
					time.Sleep(time.Millisecond)
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if !anyNamespace(lab) {
				t.Fatal("the killed child left no namespace: nothing was tested")
			}
			if st, _, err := readState(opt.StateRoot, lab); err == nil {
				t.Logf("state at kill: complete=%v, %d namespaces listed", st.Complete, len(st.Namespaces))
				if c.stop != "" && st.Complete {
					t.Errorf("state says complete although the child stopped mid-deploy")
				}
			}
			if c.loseState {
				os.RemoveAll(opt.StateRoot)
			}
			rep, err := DestroyAll(opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep.Labs, []string{lab}) || rep.Namespaces == 0 {
				t.Errorf("DestroyAll report %+v", rep)
			}
			t.Log(rep)
			assertGone(t, lab, opt)
		})
	}
}

func anyNamespace(lab string) bool {
	ents, _ := os.ReadDir(NetnsDir)
	for _, e := range ents {
		if strings.Contains(e.Name(), lab) {
			return true
		}
	}
	return false
}

func TestDestroyWithoutState(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 2, 1)
	lab, _ := deploy(t, tp, opt)
	lab.Close()
	if err := os.RemoveAll(labDir(opt.stateRoot(), tp.Name)); err != nil {
		t.Fatal(err)
	}
	rep, err := Destroy(tp.Name, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Namespaces != len(tp.Nodes) {
		t.Errorf("Destroy found %d namespaces by their mark, want %d", rep.Namespaces, len(tp.Nodes))
	}
	assertGone(t, tp.Name, opt)
}

func TestDestroyUnknownLab(t *testing.T) {
	testutil.RequireRoot(t)
	rep, err := Destroy(testutil.Name(testLabPrefix), &Options{StateRoot: t.TempDir()})
	if err != nil || rep.Namespaces != 0 || len(rep.Labs) != 0 {
		t.Errorf("Destroy of an unknown lab: %+v, %v; want an empty report", rep, err)
	}
}

func TestDeployRefusesForeignNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	owner, opt := newTestLab(t, 1, 1, -1)
	deploy(t, owner, opt)
	taken := owner.LabPrefix() + "spine1"

	empty := ""
	cases := []struct {
		name  string
		setup func(t *testing.T) *topologies.Topology
	}{
		{"marked by another lab", func(t *testing.T) *topologies.Topology {
			// No prefix: the node's name is the namespace's name.
			tp := &topologies.Topology{Name: testutil.Name(testLabPrefix), Prefix: &empty}
			tp.AddNode(taken, topologies.RoleSpine)
			return tp
		}},
		{"a containerlab-style symlink", func(t *testing.T) *topologies.Topology {
			tp := &topologies.Topology{Name: testutil.Name(testLabPrefix)}
			tp.AddNode("a", topologies.RoleHost)
			link := filepath.Join(NetnsDir, tp.LabPrefix()+"a")
			if err := os.Symlink(filepath.Join(NetnsDir, taken), link); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(link) })
			return tp
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := c.setup(t)
			topt := &Options{StateRoot: t.TempDir()}
			_, _, err := Deploy(context.Background(), tp, topt)
			if !errors.Is(err, ErrForeign) {
				t.Fatalf("Deploy over a foreign namespace: %v, want ErrForeign", err)
			}
			if _, err := os.Stat(labDir(topt.StateRoot, tp.Name)); !os.IsNotExist(err) {
				t.Errorf("refused deploy left state (%v): a Destroy would remove the other lab's namespace", err)
			}
			// The owner's namespace is untouched.
			lab, err := Attach(owner)
			if err != nil {
				t.Fatalf("owner lab damaged: %v", err)
			}
			lab.Close()
		})
	}
}

func TestRedeployConverges(t *testing.T) {
	testutil.RequireRoot(t)
	t.Run("nodes removed from the topology", func(t *testing.T) {
		tp, opt := newTestLab(t, 1, 2, 1)
		deploy(t, tp, opt)
		smaller, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: tp.Name, Spines: 1, Leaves: 1, HostsPerLeaf: 1})
		if err != nil {
			t.Fatal(err)
		}
		lab, rep, err := Deploy(context.Background(), smaller, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Close()
		// leaf2 and host2 go; spine1's end of the spine1-leaf2 link too.
		if rep.NamespacesRemoved != 2 || rep.LinksRemoved != 1 || rep.NamespacesCreated != 0 || rep.LinksPresent != 2 {
			t.Errorf("report %+v", *rep)
		}
		for _, gone := range []string{"leaf2", "host2"} {
			if _, err := os.Lstat(filepath.Join(NetnsDir, tp.LabPrefix()+gone)); !os.IsNotExist(err) {
				t.Errorf("namespace of %s still there (%v)", gone, err)
			}
		}
		st, _, err := readState(opt.stateRoot(), tp.Name)
		if err != nil || len(st.Namespaces) != len(smaller.Nodes) || !st.Complete {
			t.Errorf("state after shrinking: %+v, %v", st, err)
		}
		h, _ := lab.Handle("spine1")
		if _, err := h.LinkByName("eth2"); !isNotFound(err) {
			t.Errorf("spine1:eth2 still there: %v", err)
		}
	})
	t.Run("link re-wired", func(t *testing.T) {
		tp := &topologies.Topology{Name: testutil.Name(testLabPrefix)}
		for _, n := range []string{"a", "b", "c"} {
			tp.AddNode(n, topologies.RoleHost)
		}
		tp.Connect("a", "eth1", "b", "eth1")
		opt := &Options{StateRoot: t.TempDir()}
		deploy(t, tp, opt)
		tp.Links[0].B = topologies.Endpoint{Node: "c", Iface: "eth1"}
		lab, rep, err := Deploy(context.Background(), tp, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer lab.Close()
		if rep.LinksRemoved != 1 || rep.LinksCreated != 1 {
			t.Errorf("report %+v", *rep)
		}
		if err := sendReceive(lab, tp.Links[0].A, tp.Links[0].B, "rewired"); err != nil {
			t.Error(err)
		}
		h, _ := lab.Handle("b")
		if _, err := h.LinkByName("eth1"); !isNotFound(err) {
			t.Errorf("b:eth1 still there: %v", err)
		}
	})
}

// TestWaitUp: after WaitUp every link end of the lab is operationally up;
// with a link end forced down it names that interface.
func TestWaitUp(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 2, 1)
	lab, _ := deploy(t, tp, opt)
	if err := lab.WaitUp(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, l := range tp.Links {
		for _, e := range []topologies.Endpoint{l.A, l.B} {
			h, err := lab.Handle(e.Node)
			if err != nil {
				t.Fatal(err)
			}
			lk, err := h.LinkByName(e.Iface)
			if err != nil {
				t.Fatal(err)
			}
			if st := lk.Attrs().OperState; st != netlink.OperUp {
				t.Errorf("%s after WaitUp: %s", e, st)
			}
			// An end whose index equals its peer's would wait a
			// second for its carrier (see vethIndexes).
			if at := lk.Attrs(); at.Index == at.ParentIndex {
				t.Errorf("%s: interface index %d equals its peer's", e, at.Index)
			}
		}
	}
	// Carrier goes when the peer end goes down; the end still set up
	// then never comes operationally up.
	e := tp.Links[0].B
	h, _ := lab.Handle(e.Node)
	peer, _ := h.LinkByName(e.Iface)
	if err := h.LinkSetDown(peer); err != nil {
		t.Fatal(err)
	}
	// The kernel notices the lost carrier a moment later.
	a := tp.Links[0].A
	ha, _ := lab.Handle(a.Node)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lk, err := ha.LinkByName(a.Iface)
		if err != nil {
			t.Fatal(err)
		}
		if lk.Attrs().OperState != netlink.OperUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed up with its peer down", a)
		}
	}
	err := lab.WaitUp(context.Background(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "node "+a.Node+": interface "+a.Iface) {
		t.Errorf("WaitUp with %s down: %v", e, err)
	}
}

// TestDestroyTakesMarkedInstances: Destroy also removes the namespaces a
// runtime added to the lab (named with its prefix, marked with its alias,
// not in its state), as a killed scenario run leaves its instances, and
// leaves one with the prefix but another lab's mark.
func TestDestroyTakesMarkedInstances(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 1, 1)
	deploy(t, tp, opt)
	mine, theirs := tp.LabPrefix()+"web-1", tp.LabPrefix()+"zz"
	for _, ns := range []struct{ name, lab string }{{mine, tp.Name}, {theirs, tp.Name + "-other"}} {
		if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v %s", ns.name, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
		if out, err := exec.Command("ip", "-n", ns.name, "link", "set", "lo", "alias", Alias(ns.lab)).CombinedOutput(); err != nil {
			t.Fatalf("mark %s: %v %s", ns.name, err, out)
		}
	}
	if _, err := Destroy(tp.Name, opt); err != nil {
		t.Fatal(err)
	}
	if isNamespace(nsPath(mine)) {
		t.Errorf("%s, marked with the lab's alias, survived Destroy", mine)
	}
	if !isNamespace(nsPath(theirs)) {
		t.Errorf("%s, marked for another lab, was removed", theirs)
	}
}

// A daemon a run started inside its lab (a BGP speaker, ovs-vswitchd)
// outlives the run when the run is killed; destroying the lab kills it,
// and leaves processes outside the lab alone.
func TestDestroyKillsLabProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 2, 1)
	lab, _ := deploy(t, tp, opt)
	start := func(node string) *exec.Cmd {
		cmd := exec.Command("sleep", "300")
		var err error
		if node == "" {
			err = cmd.Start()
		} else {
			err = lab.Do(node, cmd.Start)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	inLab := []*exec.Cmd{start("leaf1"), start("spine1"), start("leaf1")}
	outside := start("")
	lab.Close()
	rep, err := Destroy(tp.Name, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Processes != len(inLab) {
		t.Errorf("destroy killed %d processes, want %d: %v", rep.Processes, len(inLab), rep)
	}
	for _, c := range inLab {
		if alive(c.Process.Pid) {
			t.Errorf("process %d in the lab survived its destruction", c.Process.Pid)
		}
	}
	if !alive(outside.Process.Pid) {
		t.Error("destroy killed a process outside the lab")
	}
	if !strings.Contains(rep.String(), "3 processes killed") {
		t.Errorf("report %q does not say what it killed", rep)
	}
}

// A daemon recorded with the lab (RecordProcess: FRR's, on an FRR leaf)
// is killed by Destroy wherever its namespace is, even outside the lab's
// (a namespace already gone keeps no mount to find it by); an unrecorded
// process outside is left alone, and a process that no longer runs
// cannot be recorded.
func TestDestroyKillsRecordedProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 1, 1, 1)
	lab, _ := deploy(t, tp, opt)
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	recorded, other := start(), start()
	if err := RecordProcess(tp.Name, recorded.Process.Pid, "leaf1 bgpd", opt); err != nil {
		t.Fatal(err)
	}
	gone := start()
	gone.Process.Kill()
	gone.Wait()
	if err := RecordProcess(tp.Name, gone.Process.Pid, "leaf1 zebra", opt); err == nil {
		t.Error("a process that ended was recorded")
	}
	lab.Close()
	rep, err := Destroy(tp.Name, opt)
	if err != nil {
		t.Fatal(err)
	}
	if alive(recorded.Process.Pid) {
		t.Errorf("recorded process %d survived the lab's destruction", recorded.Process.Pid)
	}
	if !alive(other.Process.Pid) {
		t.Error("destroy killed an unrecorded process outside the lab")
	}
	if rep.Processes != 1 {
		t.Errorf("destroy killed %d processes, want the recorded one: %v", rep.Processes, rep)
	}
}

// TestSetLinks: SetLinks takes every named interface of a node down in
// one send (the peers lose carrier), brings them up again, and names the
// interface it could not find while still setting the others.
func TestSetLinks(t *testing.T) {
	testutil.RequireRoot(t)
	tp, opt := newTestLab(t, 2, 1, 1)
	lab, _ := deploy(t, tp, opt)
	if err := lab.WaitUp(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	leaf := "leaf1"
	names := tp.Interfaces(leaf)
	if len(names) < 3 {
		t.Fatalf("%s has interfaces %v, want at least 3", leaf, names)
	}
	state := func(e topologies.Endpoint) (up, carrier bool) {
		t.Helper()
		h, err := lab.Handle(e.Node)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := h.LinkByName(e.Iface)
		if err != nil {
			t.Fatal(err)
		}
		f := lk.Attrs().RawFlags
		return f&unix.IFF_UP != 0, f&unix.IFF_LOWER_UP != 0
	}
	peers := func() []topologies.Endpoint {
		var out []topologies.Endpoint
		for _, n := range names {
			p, _, ok := tp.Peer(topologies.Endpoint{Node: leaf, Iface: n})
			if !ok {
				t.Fatalf("%s:%s has no peer", leaf, n)
			}
			out = append(out, p)
		}
		return out
	}()
	err := lab.SetLinks(leaf, append(slices.Clone(names), "nosuch0"), false)
	if err == nil || !strings.Contains(err.Error(), "node leaf1: set nosuch0 up=false: no such device") {
		t.Errorf("SetLinks with an unknown interface: %v", err)
	}
	for i, n := range names {
		if up, _ := state(topologies.Endpoint{Node: leaf, Iface: n}); up {
			t.Errorf("%s:%s is up after SetLinks(down)", leaf, n)
		}
		if _, carrier := state(peers[i]); carrier {
			t.Errorf("%s kept its carrier with %s:%s down", peers[i], leaf, n)
		}
	}
	if err := lab.SetLinks(leaf, names, true); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitUp(context.Background(), 10*time.Second); err != nil {
		t.Errorf("after SetLinks(up): %v", err)
	}
	for _, p := range peers {
		if up, carrier := state(p); !up || !carrier {
			t.Errorf("%s: up %v carrier %v after SetLinks(up)", p, up, carrier)
		}
	}
}
