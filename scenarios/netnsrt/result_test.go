package netnsrt

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// parseTrace reads sim's WriteTrace output back into records by probe,
// with prev as an index into the probe's own records.
func parseTrace(t *testing.T, b []byte) map[uint64][]outcome.Record {
	t.Helper()
	type line struct {
		g, prev int64
		r       outcome.Record
	}
	byProbe := map[uint64][]line{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 12 {
			t.Fatalf("trace line %q: %d fields", sc.Text(), len(f))
		}
		num := func(s string) int64 {
			v, err := strconv.ParseInt(strings.TrimPrefix(s, "prev="), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		probe := uint64(num(f[2]))
		if probe == 0 {
			continue
		}
		ev := datapath.Event{Time: time.Duration(num(f[1])), Probe: probe, Node: f[3], Device: f[4], Kind: datapath.DeviceKind(f[5]),
			InPort: strings.TrimPrefix(f[6], "in="), OutPort: strings.TrimPrefix(f[7], "out="),
			Action: datapath.Action(f[8]), Reason: datapath.Reason(f[9]), Rule: f[10]}
		byProbe[probe] = append(byProbe[probe], line{g: num(f[0]), prev: num(f[11]), r: outcome.Record{Ev: ev}})
	}
	out := map[uint64][]outcome.Record{}
	for p, ls := range byProbe {
		pos := map[int64]int32{}
		for i, l := range ls {
			pos[l.g] = int32(i)
		}
		rs := make([]outcome.Record, len(ls))
		for i, l := range ls {
			rs[i] = l.r
			rs[i].Prev = -1
			if j, ok := pos[l.prev]; ok {
				rs[i].Prev = j
			}
		}
		out[p] = rs
	}
	return out
}

// TestDeriveMatchesSim is a differential test of outcome.Derive over
// records read back from sim's text trace (as a runtime that only sees a
// trace builds them) against sim's own Result: every probe of an all-pairs run (warm caches, so no ARP inside
// a probe) on an evpn fabric, plus probes to an address nobody has.
func TestDeriveMatchesSim(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{TapSlots: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []datapath.NetworkSpec{
		{Name: "a", Tenant: "t", Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"), VLAN: 10, VNI: 10010},
		{Name: "b", Tenant: "t", Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.2.1"), VLAN: 20, VNI: 10020},
	} {
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, h := range []string{"host1", "host2", "host3", "host4"} {
		net := []string{"a", "b"}[i%2]
		ip := netip.MustParsePrefix("10.0." + strconv.Itoa(i%2+1) + "." + strconv.Itoa(10+i) + "/24")
		name := "vm" + strconv.Itoa(i)
		if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: h, Network: net, IP: ip,
			MAC: netMAC(byte(i + 1))}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	for _, spec := range []stack.ProbeSpec{{Proto: stack.ICMP}, {Proto: stack.ICMP}, {Proto: stack.UDP}, {Proto: stack.TCP, DstPort: 81}} {
		if _, err := e.AllPairs(e.Now(), time.Millisecond, names, spec); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []string{"10.0.2.99", "10.9.9.9"} {
		if _, err := e.Probe(e.Now(), "vm0", stack.ProbeSpec{Proto: stack.ICMP, Dst: netip.MustParseAddr(dst)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.RunUntilIdle(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.WriteTrace(&buf); err != nil {
		t.Fatal(err)
	}
	traces := parseTrace(t, buf.Bytes())
	checked := map[string]int{}
	for id, rs := range traces {
		want, err := e.Result(id)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(rs, func(r outcome.Record) bool { return strings.HasPrefix(r.Ev.Rule, "arp:") }) {
			continue // ARP inside the probe: the text trace has no ARP flag
		}
		got := outcome.Derive(rs, want.From, nil)
		switch {
		case got.Delivered != want.Delivered || got.Replied != want.Replied || got.To != want.To:
			t.Errorf("probe %d: delivered/replied/to %v/%v/%s, sim %v/%v/%s", id, got.Delivered, got.Replied, got.To, want.Delivered, want.Replied, want.To)
		case !slices.Equal(got.Forward.Devices(), want.Forward.Devices()) || !slices.Equal(got.Return.Devices(), want.Return.Devices()):
			t.Errorf("probe %d: forward %v return %v\nsim forward %v return %v", id, got.Forward.Devices(), got.Return.Devices(), want.Forward.Devices(), want.Return.Devices())
		case got.OneWay != want.OneWay || got.RTT != want.RTT:
			t.Errorf("probe %d: one way %v RTT %v, sim %v %v", id, got.OneWay, got.RTT, want.OneWay, want.RTT)
		case got.DropNode != want.DropNode || got.DropDevice != want.DropDevice || got.Reason != want.Reason || got.Rule != want.Rule:
			t.Errorf("probe %d: drop %s/%s %s %s, sim %s/%s %s %s", id, got.DropNode, got.DropDevice, got.Reason, got.Rule, want.DropNode, want.DropDevice, want.Reason, want.Rule)
		}
		switch {
		case want.Replied:
			checked["replied"]++
		default:
			checked["dropped"]++
		}
	}
	if checked["replied"] < 12*3 || checked["dropped"] < 1 {
		t.Errorf("compared %v probes; want at least 36 answered and 1 dropped without ARP inside", checked)
	}
}

func netMAC(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0x20, 0, 0, 0, b} }
