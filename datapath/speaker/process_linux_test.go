package speaker_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

const envConfig = "NETBED_SPEAKER_CONFIG"

// envProfile names a directory where each speaker process started with
// envConfig writes a CPU profile of its life (<node>.sock.json.prof),
// to see where a benchmark's speakers spend their time.
const envProfile = "NETBED_SPEAKER_CPUPROFILE_DIR"

// TestMain doubles as the speaker process: with envConfig set, the test
// binary runs that speaker until SIGTERM, as `netbed speaker` does.
func TestMain(m *testing.M) {
	if path := os.Getenv(envConfig); path != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if dir := os.Getenv(envProfile); dir != "" {
			if err := startProfile(filepath.Join(dir, filepath.Base(path)+".prof")); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		err := speaker.RunFile(ctx, path)
		pprof.StopCPUProfile()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startProfile(path string) error {
	w, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("speaker CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		return fmt.Errorf("speaker CPU profile %s: %w", path, err)
	}
	return nil
}

// nsFabric is a spine and two leaves as namespaces joined by veth pairs
// (a netns lab), each with its speaker as a process of its own inside
// it, peering over the links' /31 addresses.
type nsFabric struct {
	lab     *netns.Lab
	procs   map[string]*exec.Cmd
	clients map[string]*speaker.Client
	links   map[string]topologies.Link // leaf -> its link to the spine
	// spineAddr is the spine's address on each leaf's link.
	spineAddr map[string]netip.Addr
}

// startNsFabric deploys the fabric and starts netbed's speakers on the
// spine and on every leaf but those in others (whose speaker the test
// brings: FRR).
func startNsFabric(t testing.TB, timers speaker.Timers, others ...string) *nsFabric {
	t.Helper()
	testutil.RequireRoot(t)
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name("nbspk"), Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	opt := &netns.Options{StateRoot: t.TempDir()}
	t.Cleanup(func() {
		if _, err := netns.Destroy(tp.Name, opt); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lab, _, err := netns.Deploy(ctx, tp, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	f := &nsFabric{lab: lab, procs: map[string]*exec.Cmd{}, clients: map[string]*speaker.Client{}, links: map[string]topologies.Link{},
		spineAddr: map[string]netip.Addr{}}
	dir := t.TempDir()
	spine := speaker.Config{Node: "spine1", ASN: asn, RouterID: netip.MustParseAddr("10.255.0.1"), GRPC: filepath.Join(dir, "spine1.sock"), Timers: timers}
	var leaves []speaker.Config
	k := 0
	for _, lk := range tp.Links {
		if lk.A.Node != "spine1" && lk.B.Node != "spine1" {
			continue
		}
		s, l := lk.A, lk.B
		if l.Node == "spine1" {
			s, l = l, s
		}
		sa, la := netip.AddrFrom4([4]byte{10, 254, byte(k), 0}), netip.AddrFrom4([4]byte{10, 254, byte(k), 1})
		k++
		addAddr(t, lab, s, sa)
		addAddr(t, lab, l, la)
		f.links[l.Node] = *lk
		f.spineAddr[l.Node] = sa
		if slices.Contains(others, l.Node) {
			spine.Peers = append(spine.Peers, speaker.Peer{Address: la, ASN: asn, RRClient: true, Passive: true})
			continue
		}
		spine.Peers = append(spine.Peers, speaker.Peer{Address: la, ASN: asn, RRClient: true, Passive: true})
		leaves = append(leaves, speaker.Config{Node: l.Node, ASN: asn, RouterID: netip.AddrFrom4([4]byte{10, 255, 0, byte(10 + k)}),
			Port: -1, GRPC: filepath.Join(dir, l.Node+".sock"), Timers: timers,
			Peers: []speaker.Peer{{Address: sa, ASN: asn}}})
	}
	if err := lab.WaitUp(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]speaker.Config{spine}, leaves...) {
		f.start(t, ctx, c)
	}
	if len(others) == 0 {
		for _, c := range f.clients {
			if err := c.WaitEstablished(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

func addAddr(t testing.TB, lab *netns.Lab, e topologies.Endpoint, a netip.Addr) {
	t.Helper()
	h, err := lab.Handle(e.Node)
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName(e.Iface)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(31, 32)}}); err != nil {
		t.Fatalf("address %s on %s:%s: %v", a, e.Node, e.Iface, err)
	}
}

// start runs c's speaker as a process inside its node's namespace: it is
// forked from a thread that is in the namespace, so it is born there.
func (f *nsFabric) start(t testing.TB, ctx context.Context, c speaker.Config) {
	t.Helper()
	path := c.GRPC + ".json"
	if err := speaker.WriteConfig(path, c); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envConfig+"="+path)
	cmd.Stderr = os.Stderr
	if err := f.lab.Do(c.Node, cmd.Start); err != nil {
		t.Fatalf("start the speaker of %s: %v", c.Node, err)
	}
	f.procs[c.Node] = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	cl, err := dialRetry(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	f.clients[c.Node] = cl
	t.Cleanup(func() { cl.Close() })
}

// dialRetry waits for the process to open its socket.
func dialRetry(ctx context.Context, c speaker.Config) (*speaker.Client, error) {
	for {
		if _, err := os.Stat(c.GRPC); err == nil {
			return speaker.Dial(ctx, c.Node, c.GRPC, c.ASN)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no gRPC socket at %s: %w", c.Node, c.GRPC, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// setLink takes leaf's end of its link to the spine down or up.
func (f *nsFabric) setLink(leaf string, up bool) error {
	e := f.links[leaf].A
	if e.Node != leaf {
		e = f.links[leaf].B
	}
	h, err := f.lab.Handle(leaf)
	if err != nil {
		return err
	}
	l, err := h.LinkByName(e.Iface)
	if err != nil {
		return err
	}
	if up {
		return h.LinkSetUp(l)
	}
	return h.LinkSetDown(l)
}

// TestLeafFailuresWithdraw runs the speakers as processes in their
// namespaces and fails leaf1 three ways, as real equipment fails; each
// time leaf2 loses leaf1's routes through the spine, learning only what
// it can observe: a killed process (SIGKILL: its kernel closes the TCP
// session), a lost carrier (power loss: the spine's link goes down, fast
// external failover), and silence with the links up (a hung box: the
// spine's hold timer).
func TestLeafFailuresWithdraw(t *testing.T) {
	for _, mode := range []string{"sigkill", "carrier", "silent"} {
		t.Run(mode, func(t *testing.T) {
			f := startNsFabric(t, speaker.Timers{Hold: 3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second})
			ctx := context.Background()
			leaf1, leaf2 := f.clients["leaf1"], f.clients["leaf2"]
			if err := leaf1.Advertise(ctx, type2, type3); err != nil {
				t.Fatal(err)
			}
			waitRoutes(t, leaf2, []evpn.Route{type2, type3})
			start := time.Now()
			switch mode {
			case "sigkill":
				if err := f.procs["leaf1"].Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			case "carrier":
				// leaf1 loses power: its end of the link goes down, so
				// the spine's end loses carrier.
				if err := f.setLink("leaf1", false); err != nil {
					t.Fatal(err)
				}
			case "silent":
				// Everything leaf1 sends and receives is dropped; its
				// links stay up.
				ns, err := f.lab.NetnsName("leaf1")
				if err != nil {
					t.Fatal(err)
				}
				for _, chain := range []string{"INPUT", "OUTPUT"} {
					if out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-A", chain, "-j", "DROP").CombinedOutput(); err != nil {
						t.Fatalf("iptables: %v: %s", err, out)
					}
				}
			}
			waitRoutes(t, leaf2, nil)
			t.Logf("%s: leaf2 withdrew leaf1's routes after %v", mode, time.Since(start).Round(time.Millisecond))
			if mode == "silent" {
				// The spine's session to leaf1 ended on its own (the
				// hold timer): the speaker configures the peer afresh,
				// never established since, rather than leaving it idle
				// for GoBGP's fixed 5 s and then trying the old one.
				s := waitSession(t, f.clients["spine1"], f.leafAddr("leaf1"), func(s speaker.Session) bool { return s.State != "idle" })
				if !s.Up.IsZero() {
					t.Errorf("spine1's peer leaf1 after its hold timer expired: %+v; want a peer configured afresh (never established)", s)
				}
				// leaf1 speaks again: its sessions come back.
				start = time.Now()
				ns, err := f.lab.NetnsName("leaf1")
				if err != nil {
					t.Fatal(err)
				}
				for _, chain := range []string{"INPUT", "OUTPUT"} {
					if out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-D", chain, "-j", "DROP").CombinedOutput(); err != nil {
						t.Fatalf("iptables: %v: %s", err, out)
					}
				}
				waitRoutes(t, leaf2, []evpn.Route{type2, type3})
				t.Logf("silence over: leaf2 has leaf1's routes again after %v", time.Since(start).Round(time.Millisecond))
			}
			if mode == "carrier" {
				// Power is back: the link has carrier again, the
				// sessions come back and so do leaf1's routes.
				start = time.Now()
				if err := f.setLink("leaf1", true); err != nil {
					t.Fatal(err)
				}
				waitRoutes(t, leaf2, []evpn.Route{type2, type3})
				t.Logf("carrier back: leaf2 has leaf1's routes again after %v", time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

// leafAddr is leaf's address on its link to the spine.
func (f *nsFabric) leafAddr(leaf string) netip.Addr { return f.spineAddr[leaf].Next() }

// waitSession polls c's session to peer until ok holds of it, for at most
// 20 s, and returns it.
func waitSession(t *testing.T, c *speaker.Client, peer netip.Addr, ok func(speaker.Session) bool) speaker.Session {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ss, err := c.Sessions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ss, func(s speaker.Session) bool { return s.Peer == peer })
		if i >= 0 && ok(ss[i]) {
			return ss[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: session to %s not as wanted after 20 s", ss, peer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
