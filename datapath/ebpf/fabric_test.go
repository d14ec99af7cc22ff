package ebpf

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// capture is one frame seen on a host node's port.
type capture struct {
	node string
	port string
	out  bool
	b    []byte
}

// tap wraps a host node and records every frame it receives and sends.
type tap struct {
	datapath.Node
	log *[]capture
}

type tapOut struct {
	datapath.Output
	t *tap
}

func (o tapOut) Forward(port int, b []byte) { o.Send(port, b) }
func (o tapOut) Send(port int, b []byte) {
	*o.t.log = append(*o.t.log, capture{o.t.Name(), o.t.Ports()[port], true, append([]byte(nil), b...)})
	o.Output.Send(port, b)
}

func (t *tap) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	*t.log = append(*t.log, capture{t.Name(), t.Ports()[port], false, append([]byte(nil), b...)})
	t.Node.Receive(now, port, b, tapOut{out, t})
}

// tapFabric is the fabric with its Cilium nodes tapped.
type tapFabric struct {
	*Fabric
	log *[]capture
}

func (f tapFabric) Nodes() []datapath.Node {
	var out []datapath.Node
	for _, n := range f.Fabric.Nodes() {
		if _, ok := n.(*Node); ok {
			n = &tap{Node: n, log: f.log}
		}
		out = append(out, n)
	}
	return out
}

type env struct {
	f   *Fabric
	tf  tapFabric
	e   *sim.Engine
	log []capture
}

// newEnv builds 2 spines, 2 leaves, 2 hosts per leaf: host1 and host2 on
// leaf1, host3 and host4 on leaf2.
func newEnv(t *testing.T, mode Mode) *env {
	t.Helper()
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Mode: mode, PodsPerNode: 16})
	if err != nil {
		t.Fatal(err)
	}
	v := &env{f: f, e: sim.New(1)}
	v.tf = tapFabric{f, &v.log}
	if err := v.e.Load(v.tf, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	v.e.SetEventLimit(1_000_000)
	return v
}

func (v *env) pod(t *testing.T, name, host string, labels map[string]string) *stack.Instance {
	t.Helper()
	if _, err := v.e.AddInstance(v.tf, datapath.InstanceSpec{Name: name, Host: host, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	in, _ := v.f.Instance(name)
	return in
}

func (v *env) ip(t *testing.T, name string) netip.Addr {
	t.Helper()
	in, ok := v.f.Instance(name)
	if !ok {
		t.Fatalf("no pod %q", name)
	}
	return in.Addr().Addr()
}

// probe sends one probe, runs the engine until idle, checks packet
// conservation and returns the result.
func (v *env) probe(t *testing.T, from, to string, proto stack.Proto, port uint16) sim.Result {
	t.Helper()
	id, err := v.e.Probe(v.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: proto, Dst: v.ip(t, to), DstPort: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.RunUntilIdle(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Conservation(); err != nil {
		t.Fatal(err)
	}
	r, err := v.e.Result(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// render prints a result as golden text: one device a line with what it
// did and the rule.
func render(r sim.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "delivered=%v replied=%v hops=%d switch_hops=%d reason=%q rule=%q drop=%s/%s\n",
		r.Delivered, r.Replied, r.Hops, r.SwitchHops, r.Reason, r.Rule, r.DropNode, r.DropDevice)
	for _, sec := range []struct {
		name string
		p    datapath.Path
	}{{"forward", r.Forward}, {"return", r.Return}} {
		fmt.Fprintf(&b, "%s:\n", sec.name)
		devs := sec.p.Devices()
		for i, ev := range sec.p {
			fmt.Fprintf(&b, "  %-22s %-7s %-9s %s\n", devs[i], ev.Kind, ev.Action, ev.Rule)
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if string(want) != got {
		t.Errorf("path differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func kinds(p datapath.Path) map[datapath.DeviceKind]int {
	m := map[datapath.DeviceKind]int{}
	for _, ev := range p {
		m[ev.Kind]++
	}
	return m
}

// arpFor returns the ARP frames in the log asking for ip (who-has ip) or
// answering for it (ip is-at).
func arpFor(log []capture, ip netip.Addr) []capture {
	var out []capture
	ps := frame.NewParser()
	for _, c := range log {
		p, err := ps.Parse(c.b)
		if err != nil || !p.Has(layers.LayerTypeARP) {
			continue
		}
		if a, _ := netip.AddrFromSlice(p.ARP.DstProtAddress); a == ip && p.ARP.Operation == layers.ARPRequest {
			out = append(out, c)
		}
		if a, _ := netip.AddrFromSlice(p.ARP.SourceProtAddress); a == ip && p.ARP.Operation == layers.ARPReply {
			out = append(out, c)
		}
	}
	return out
}

func TestPaths(t *testing.T) {
	cases := []struct {
		name       string
		mode       Mode
		from, to   string
		switchHops int
		// devices that must (and must not) appear on the forward path
		want, never []datapath.DeviceKind
	}{
		{"tunnel-same-node", Tunnel, "a", "b", 0, []datapath.DeviceKind{datapath.KindVeth, datapath.KindBPF}, []datapath.DeviceKind{datapath.KindBridge, datapath.KindTunnel, datapath.KindRouter}},
		{"tunnel-same-leaf", Tunnel, "a", "c", 1, []datapath.DeviceKind{datapath.KindTunnel, datapath.KindNIC}, []datapath.DeviceKind{datapath.KindBridge}},
		{"tunnel-cross-leaf", Tunnel, "a", "d", 3, []datapath.DeviceKind{datapath.KindTunnel, datapath.KindNIC, datapath.KindRouter}, []datapath.DeviceKind{datapath.KindBridge}},
		{"direct-same-node", Direct, "a", "b", 0, []datapath.DeviceKind{datapath.KindVeth, datapath.KindBPF}, []datapath.DeviceKind{datapath.KindBridge, datapath.KindTunnel, datapath.KindRouter}},
		{"direct-same-leaf", Direct, "a", "c", 1, []datapath.DeviceKind{datapath.KindNIC}, []datapath.DeviceKind{datapath.KindBridge, datapath.KindTunnel}},
		{"direct-cross-leaf", Direct, "a", "d", 3, []datapath.DeviceKind{datapath.KindNIC, datapath.KindRouter}, []datapath.DeviceKind{datapath.KindBridge, datapath.KindTunnel}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newEnv(t, c.mode)
			v.pod(t, "a", "host1", map[string]string{"app": "a"})
			v.pod(t, "b", "host1", map[string]string{"app": "b"})
			v.pod(t, "c", "host2", map[string]string{"app": "c"})
			v.pod(t, "d", "host3", map[string]string{"app": "d"})
			r := v.probe(t, c.from, c.to, stack.ICMP, 0)
			if !r.Delivered || !r.Replied || r.ReplyKind != stack.ReplyEcho {
				t.Fatalf("probe not answered: %+v", r)
			}
			if r.SwitchHops != c.switchHops {
				t.Errorf("switch hops %d, want %d: %v", r.SwitchHops, c.switchHops, r.Forward.Devices())
			}
			k := kinds(r.Forward)
			for _, w := range c.want {
				if k[w] == 0 {
					t.Errorf("no %s on the path %v", w, r.Forward.Devices())
				}
			}
			for _, w := range c.never {
				if k[w] != 0 {
					t.Errorf("%s on the path %v", w, r.Forward.Devices())
				}
			}
			if c.switchHops == 0 {
				// Fig. 16: eth0 → lxc → BPF → lxc → eth0, nothing else.
				want := []string{c.from + "/eth0", "host1/lxc1", "host1/" + ProgLxc, "host1/lxc2", c.to + "/eth0"}
				if got := r.Forward.Devices(); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("path %v, want %v", got, want)
				}
			}
			// No ARP ever asks for or answers the peer pod's address, and
			// the destination pod receives no ARP at all.
			if arps := arpFor(v.log, v.ip(t, c.to)); len(arps) != 0 {
				t.Errorf("%d ARP frames for %s's address, first on %s/%s", len(arps), c.to, arps[0].node, arps[0].port)
			}
			if arps := arpFor(v.log, v.ip(t, c.from)); len(arps) != 0 {
				t.Errorf("%d ARP frames for %s's address", len(arps), c.from)
			}
			golden(t, c.name, render(r))
		})
	}
}

// TestWire checks what crosses the host NIC: real VXLAN with the source
// identity as VNI to the remote node IP in tunnel mode, the bare pod packet
// in direct mode; and that tunnel mode keeps pod CIDRs out of the underlay.
func TestWire(t *testing.T) {
	for _, mode := range []Mode{Tunnel, Direct} {
		t.Run(mode.String(), func(t *testing.T) {
			v := newEnv(t, mode)
			v.pod(t, "a", "host1", map[string]string{"app": "a"})
			v.pod(t, "d", "host3", map[string]string{"app": "d"})
			r := v.probe(t, "a", "d", stack.UDP, 7)
			if !r.Delivered {
				t.Fatalf("not delivered: %+v", r)
			}
			aID, _ := v.f.Identities().Lookup(map[string]string{"app": "a"})
			h3, _ := v.f.Host("host3")
			ps := frame.NewParser()
			seen := 0
			for _, c := range v.log {
				if c.node != "host1" || !c.out || !strings.HasPrefix(c.port, "eth") {
					continue
				}
				p, err := ps.Parse(c.b)
				if err != nil {
					t.Fatal(err)
				}
				if !p.Has(layers.LayerTypeIPv4) {
					continue
				}
				seen++
				dst, _ := netip.AddrFromSlice(p.IP4.DstIP)
				switch mode {
				case Tunnel:
					if !p.IsVXLAN() || p.VXLAN.VNI != uint32(aID) || dst != h3.Config().NodeIP {
						t.Errorf("tunnel frame: vxlan %v vni %d (want %d) outer dst %v (want %v)", p.IsVXLAN(), p.VXLAN.VNI, aID, dst, h3.Config().NodeIP)
					} else if in, _ := netip.AddrFromSlice(p.Inner.IP4.DstIP); in != v.ip(t, "d") {
						t.Errorf("inner dst %v, want %v", in, v.ip(t, "d"))
					}
				case Direct:
					if p.IsVXLAN() || dst != v.ip(t, "d") {
						t.Errorf("direct frame: vxlan %v dst %v", p.IsVXLAN(), dst)
					}
				}
			}
			if seen == 0 {
				t.Fatal("no IPv4 frame left host1's NIC")
			}
			leaf, _ := v.f.Router("leaf1")
			_, _, routed := leaf.Lookup(v.ip(t, "d"))
			if routed != (mode == Direct) {
				t.Errorf("leaf1 has a route to pod d: %v; want %v in %s mode", routed, mode == Direct, mode)
			}
		})
	}
}

func TestPolicyVerdicts(t *testing.T) {
	web, db, client := map[string]string{"app": "web"}, map[string]string{"app": "db"}, map[string]string{"app": "client"}
	policies := []Policy{
		{Name: "web-to-db", From: web, To: db, Proto: ProtoTCP, Port: 5432, Allow: true},
		{Name: "any-to-web", To: web, Proto: ProtoTCP, Port: 80, Allow: true},
		{Name: "no-client-web", From: client, To: web, Proto: ProtoTCP, Port: 80},
	}
	type want struct {
		delivered, replied bool
		reason             datapath.Reason
		rule               func(ids *Identities) string // the deciding rule
	}
	id := func(ids *Identities, l map[string]string) Identity { i, _ := ids.Lookup(l); return i }
	cases := []struct {
		name     string
		from, to string
		proto    stack.Proto
		port     uint16
		want     want
	}{
		{"allow-web-db", "web", "db", stack.TCP, 5432, want{true, true, "", func(ids *Identities) string {
			return RuleName(NewPolicyKey(id(ids, web), id(ids, db), ProtoTCP, 5432))
		}}},
		{"default-deny-port", "web", "db", stack.TCP, 80, want{false, false, datapath.ReasonPolicy, func(ids *Identities) string {
			return DefaultDenyRule(id(ids, web), id(ids, db))
		}}},
		{"default-deny-icmp", "web", "db", stack.ICMP, 0, want{false, false, datapath.ReasonPolicy, func(ids *Identities) string {
			return DefaultDenyRule(id(ids, web), id(ids, db))
		}}},
		{"default-deny-source", "client", "db", stack.TCP, 5432, want{false, false, datapath.ReasonPolicy, func(ids *Identities) string {
			return DefaultDenyRule(id(ids, client), id(ids, db))
		}}},
		{"deny-wins", "client", "web", stack.TCP, 80, want{false, false, datapath.ReasonPolicy, func(ids *Identities) string {
			return RuleName(NewPolicyKey(id(ids, client), id(ids, web), ProtoTCP, 80))
		}}},
		{"wildcard-source", "db", "web", stack.TCP, 80, want{true, true, "", func(ids *Identities) string {
			return RuleName(NewPolicyKey(IdentityAny, id(ids, web), ProtoTCP, 80))
		}}},
		{"unenforced", "db", "client", stack.ICMP, 0, want{true, true, "", nil}},
	}
	for _, mode := range []Mode{Tunnel, Direct} {
		for _, c := range cases {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				v := newEnv(t, mode)
				v.pod(t, "web", "host1", web)
				v.pod(t, "db", "host3", db).SetOpenPorts(5432)
				v.pod(t, "client", "host2", client)
				for _, p := range policies {
					if err := v.f.ApplyPolicy(p); err != nil {
						t.Fatal(err)
					}
				}
				r := v.probe(t, c.from, c.to, c.proto, c.port)
				golden(t, "policy-"+mode.String()+"-"+c.name, render(r))
				if r.Delivered != c.want.delivered || r.Replied != c.want.replied || r.Reason != c.want.reason {
					t.Fatalf("result %s", render(r))
				}
				var rule string
				if c.want.rule != nil {
					rule = c.want.rule(v.f.Identities())
				}
				if !r.Delivered {
					if r.Rule != rule || r.DropNode != v.hostOf(t, c.to) {
						t.Errorf("dropped at %s/%s by %q, want %q at %s", r.DropNode, r.DropDevice, r.Rule, rule, v.hostOf(t, c.to))
					}
					return
				}
				// The BPF program delivering to the pod names the rule.
				last := bpfEvents(r.Forward)
				if rule == "" {
					rule = "endpoint:" + v.ip(t, c.to).String()
				}
				if len(last) == 0 || last[len(last)-1].Rule != rule {
					t.Errorf("deciding BPF event %+v, want rule %q", last, rule)
				}
				// The reply to an enforced source passes by conntrack.
				if v.f.Compiled().Enforced[id(v.f.Identities(), v.labelsOf(t, c.from))] {
					back := bpfEvents(r.Return)
					if len(back) == 0 || back[len(back)-1].Rule != "ct:reply" {
						t.Errorf("reply admitted by %+v, want ct:reply", back)
					}
				}
			})
		}
	}
}

func (v *env) hostOf(t *testing.T, pod string) string {
	_, h, ok := v.f.Endpoint(pod)
	if !ok {
		t.Fatalf("no pod %q", pod)
	}
	return h
}

func (v *env) labelsOf(t *testing.T, pod string) map[string]string {
	ep, _, ok := v.f.Endpoint(pod)
	if !ok {
		t.Fatalf("no pod %q", pod)
	}
	return ep.Labels
}

func bpfEvents(p datapath.Path) []datapath.Event {
	var out []datapath.Event
	for _, ev := range p {
		if ev.Kind == datapath.KindBPF {
			out = append(out, ev)
		}
	}
	return out
}

func TestAddInstanceErrors(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Mode: Direct, PodsPerNode: 2})
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := f.Host("host1")
	cidr := h1.Config().NodeCIDR
	inCIDR := func(n int) netip.Prefix {
		a := cidr.Addr()
		for range n {
			a = a.Next()
		}
		return netip.PrefixFrom(a, 32)
	}
	cases := []struct {
		name string
		spec datapath.InstanceSpec
		is   error
	}{
		{"ok", datapath.InstanceSpec{Name: "p1", Host: "host1", IP: inCIDR(5)}, nil},
		{"outside", datapath.InstanceSpec{Name: "p2", Host: "host1", IP: netip.MustParsePrefix("10.0.9.9/32")}, ErrOutsideNodeCIDR},
		{"gateway", datapath.InstanceSpec{Name: "p3", Host: "host1", IP: inCIDR(1)}, ErrReservedAddr},
		{"network", datapath.InstanceSpec{Name: "p3", Host: "host1", IP: inCIDR(0)}, ErrReservedAddr},
		{"broadcast", datapath.InstanceSpec{Name: "p3", Host: "host1", IP: inCIDR(255)}, ErrReservedAddr},
		{"in-use", datapath.InstanceSpec{Name: "p4", Host: "host1", IP: inCIDR(5)}, ErrAddrInUse},
		{"duplicate", datapath.InstanceSpec{Name: "p1", Host: "host1"}, ErrExists},
		{"auto-ip", datapath.InstanceSpec{Name: "p5", Host: "host1"}, nil},
		{"full", datapath.InstanceSpec{Name: "p6", Host: "host1"}, ErrNodeFull},
		{"not-a-host", datapath.InstanceSpec{Name: "p7", Host: "leaf1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, w, err := f.AddInstance(c.spec)
			switch {
			case c.name == "not-a-host":
				if err == nil || !strings.Contains(err.Error(), "not a host") {
					t.Errorf("err = %v", err)
				}
			case c.is == nil && err != nil:
				t.Errorf("err = %v", err)
			case c.is != nil && !errors.Is(err, c.is):
				t.Errorf("err = %v, want %v", err, c.is)
			case c.is == nil && w.B.Node != "host1":
				t.Errorf("wire %+v", w)
			}
		})
	}
	_, _, err = f.AddInstance(datapath.InstanceSpec{Name: "p8", Host: "host1", IP: netip.MustParsePrefix("10.0.9.9/32")})
	if err == nil || !strings.Contains(err.Error(), cidr.String()) {
		t.Errorf("error %v does not name the node CIDR %v", err, cidr)
	}
	if err := f.RemoveInstance("p1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: "p9", Host: "host1"}); err != nil {
		t.Errorf("slot not reused after remove: %v", err)
	}
}

// TestPodToRemoteNode pings another node's underlay address from a pod:
// the request goes natively, the reply comes back through the tunnel in
// tunnel mode (pod addresses are not routable there) and natively in
// direct mode.
func TestPodToRemoteNode(t *testing.T) {
	for _, mode := range []Mode{Tunnel, Direct} {
		t.Run(mode.String(), func(t *testing.T) {
			v := newEnv(t, mode)
			v.pod(t, "a", "host1", nil)
			h3, _ := v.f.Host("host3")
			id, err := v.e.Probe(time.Millisecond, "a", stack.ProbeSpec{Proto: stack.ICMP, Dst: h3.Config().NodeIP})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			if _, err := v.e.Conservation(); err != nil {
				t.Fatal(err)
			}
			r, err := v.e.Result(id)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Delivered || r.To != "host3" || !r.Replied {
				t.Fatalf("result %s", render(r))
			}
			tunnelled := kinds(r.Return)[datapath.KindTunnel] > 0
			if tunnelled != (mode == Tunnel) {
				t.Errorf("reply through the tunnel: %v in %s mode\n%s", tunnelled, mode, render(r))
			}
			golden(t, "pod-to-node-"+mode.String(), render(r))
		})
	}
}

// TestEgressVerdicts: egress entries (SetCompiledRules) are checked on
// the source's node as the packet leaves its pod; the reply of an
// allowed flow passes by conntrack; an echo request the other way with
// the same echo ID is no reply.
func TestEgressVerdicts(t *testing.T) {
	web, db := map[string]string{"app": "web"}, map[string]string{"app": "db"}
	for _, mode := range []Mode{Tunnel, Direct} {
		t.Run(mode.String(), func(t *testing.T) {
			v := newEnv(t, mode)
			v.pod(t, "web", "host1", web)
			v.pod(t, "db", "host3", db).SetOpenPorts(5432)
			ids := v.f.Identities()
			w, _ := ids.Lookup(web)
			d, _ := ids.Lookup(db)
			allow := NewEgressKey(w, d, ProtoTCP, 5432)
			err := v.f.SetCompiledRules([]PolicyRule{{Key: allow, Action: PolicyAllow, From: "test"}, {Key: NewEgressKey(w, d, ProtoICMP, 0), Action: PolicyAllow}},
				nil, map[Identity]bool{w: true, d: true})
			if err != nil {
				t.Fatal(err)
			}
			if r := v.probe(t, "web", "db", stack.TCP, 5432); !r.Replied {
				t.Fatalf("allowed egress: %s", render(r))
			}
			r := v.probe(t, "web", "db", stack.TCP, 80)
			if r.Delivered || r.DropNode != "host1" || r.Rule != EgressDefaultDenyRule(w, d) {
				t.Fatalf("egress to an unlisted port dropped at %s by %q, want at host1 by %q: %s", r.DropNode, r.Rule, EgressDefaultDenyRule(w, d), render(r))
			}
			// db may only answer: its own echo request is dropped on host3.
			if r := v.probe(t, "web", "db", stack.ICMP, 0); !r.Replied {
				t.Fatalf("allowed echo: %s", render(r))
			}
			r = v.probe(t, "db", "web", stack.ICMP, 0)
			if r.Delivered || r.DropNode != "host3" || r.Rule != EgressDefaultDenyRule(d, w) {
				t.Fatalf("db's echo request dropped at %s by %q, want at host3 by %q", r.DropNode, r.Rule, EgressDefaultDenyRule(d, w))
			}
			if got := RuleName(allow); got != fmt.Sprintf("policy:egress:%d->%d:tcp/5432", w, d) {
				t.Errorf("rule name %q", got)
			}
		})
	}
}

// TestPodMTU: in tunnel mode a pod's MTU leaves room for VXLAN on the
// smallest link at a host (1450 on the builders' 1500-byte host links;
// less when a host link is smaller), and direct routing keeps the default.
func TestPodMTU(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode Mode
		want int
	}{{Tunnel, 1450}, {Direct, 0}} {
		f, err := New(topo, Options{Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.PodMTU(); got != c.want {
			t.Errorf("%s: pod MTU %d, want %d", f.Generation(), got, c.want)
		}
	}
	for _, l := range topo.Links {
		if l.A.Node == "host1" || l.B.Node == "host1" {
			l.MTU = 1400
		}
	}
	f, err := New(topo, Options{Mode: Tunnel})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.PodMTU(); got != 1350 {
		t.Errorf("a 1400-byte host link: pod MTU %d, want 1350", got)
	}
}
