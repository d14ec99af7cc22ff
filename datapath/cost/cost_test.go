package cost

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
)

// TestDefaultParses checks the calibration checked into the repository:
// it says when, where and how it was measured, and costs every class.
func TestDefaultParses(t *testing.T) {
	d := Default()
	if d.Date == "" || d.Machine == "" || !strings.HasPrefix(d.Command, "netbed calibrate") || d.Method == "" {
		t.Errorf("calibration lacks its provenance: date %q machine %q command %q method %d bytes", d.Date, d.Machine, d.Command, len(d.Method))
	}
	for _, c := range Classes {
		f, ok := d.Figures[c]
		if !ok {
			t.Errorf("no figure for %s", c)
			continue
		}
		if f.Measured && f.Samples == 0 {
			t.Errorf("%s: measured without samples", c)
		}
	}
	for _, c := range []Class{Switch, Router} {
		if d.Figures[c].Measured || !strings.Contains(d.Figures[c].Method, "http") {
			t.Errorf("%s: a physical device's figure must be documented with its source, got %+v", c, d.Figures[c])
		}
	}
}

// TestEveryKindCosted: every device kind the models emit has a class, so
// no device on a path is free by omission.
func TestEveryKindCosted(t *testing.T) {
	for _, k := range Kinds {
		for _, inst := range []bool{false, true} {
			ev := &datapath.Event{Kind: k, Action: datapath.ActForward}
			if len(Classify(ev, Where{Instance: inst})) == 0 {
				t.Errorf("kind %s (instance %v) has no class", k, inst)
			}
		}
	}
	if cs := Classify(&datapath.Event{Kind: "link", Action: datapath.ActDrop}, Where{}); len(cs) != 0 {
		t.Errorf("an engine's link drop costs %v, want nothing", cs)
	}
}

// TestOfIsClassifySum checks Model.Of, which sums precomputed variants,
// against the slow obvious sum of Classify's figures.
func TestOfIsClassifySum(t *testing.T) {
	tab := Default()
	m := NewModel(tab)
	var evs []datapath.Event
	for _, k := range Kinds {
		for _, a := range []datapath.Action{datapath.ActForward, datapath.ActEncap, datapath.ActDecap, datapath.ActDrop} {
			for _, rule := range []string{"", "bond:active-backup:eth1"} {
				for _, walked := range []int{0, 1, 7} {
					evs = append(evs, datapath.Event{Kind: k, Action: a, Rule: rule, Walked: walked})
				}
			}
		}
	}
	for _, ev := range evs {
		for _, at := range []Where{{}, {Instance: true}, {Prev: datapath.KindPatch}, {Prev: datapath.KindTap}} {
			var want time.Duration
			for _, c := range Classify(&ev, at) {
				want += tab.Figures[c].Cost
			}
			if got := m.Of(&ev, at); got != want {
				t.Errorf("Of(%+v, %+v) = %v, want %v (%v)", ev, at, got, want, Classify(&ev, at))
			}
		}
	}
}

// TestClassify pins the classes of the devices whose cost sets gen 1's
// ordering: stock's qbr with its security-group chain, the OVS bridges,
// a bridge entered from a patch (part of the patch pair's figure), a
// bonded NIC, VXLAN by direction.
func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		ev   datapath.Event
		at   Where
		want []Class
	}{
		{"qbr with 3 rules walked", datapath.Event{Kind: datapath.KindLinuxBridge, Walked: 3}, Where{},
			[]Class{LinuxBridge, IptablesChain, IptablesRule, IptablesRule, IptablesRule}},
		{"qbr, ARP (no iptables)", datapath.Event{Kind: datapath.KindLinuxBridge}, Where{}, []Class{LinuxBridge}},
		{"br-int from a tap", datapath.Event{Kind: datapath.KindBridge}, Where{Prev: datapath.KindTap}, []Class{OVSBridge}},
		{"br-bond from a patch", datapath.Event{Kind: datapath.KindBridge}, Where{Prev: datapath.KindPatch}, []Class{}},
		{"bonded NIC", datapath.Event{Kind: datapath.KindNIC, Rule: "bond:active-backup:eth1"}, Where{}, []Class{NIC, Bond}},
		{"host NIC", datapath.Event{Kind: datapath.KindNIC}, Where{}, []Class{NIC}},
		{"instance eth0", datapath.Event{Kind: datapath.KindNIC}, Where{Instance: true}, []Class{Instance}},
		{"cilium_vxlan encap", datapath.Event{Kind: datapath.KindTunnel, Action: datapath.ActEncap}, Where{}, []Class{VXLANEncap}},
		{"cilium_vxlan decap", datapath.Event{Kind: datapath.KindTunnel, Action: datapath.ActDecap}, Where{}, []Class{VXLANDecap}},
		{"leaf VTEP", datapath.Event{Kind: datapath.KindVTEP, Action: datapath.ActEncap}, Where{}, []Class{Switch}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Classify(&c.ev, c.at)
			if strings.Join(classStrings(got), ",") != strings.Join(classStrings(c.want), ",") {
				t.Errorf("Classify = %v, want %v", got, c.want)
			}
		})
	}
}

func classStrings(cs []Class) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	good, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("the default table does not round-trip: %v", err)
	}
	cases := []struct {
		name, from, to, want string
		is                   error
	}{
		{"missing class", `"bpf":`, `"bpf-gone":`, "unknown device class", nil},
		{"unknown field", `"date":`, `"dated":`, "unknown field", nil},
		{"negative", `"ns": 0`, `"ns": -5`, "negative", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := strings.Replace(string(good), c.from, c.to, 1)
			if b == string(good) {
				t.Skipf("the table has no %q to change", c.from)
			}
			_, err := Parse([]byte(b))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse = %v, want an error saying %q", err, c.want)
			}
		})
	}
	var tab Table
	tab.Date, tab.Machine, tab.Command = "d", "m", "c"
	tab.Figures = map[Class]Figure{Veth: {Cost: 1, Method: "x"}}
	b, _ := tab.Marshal()
	if _, err := Parse(b); !errors.Is(err, ErrIncomplete) {
		t.Errorf("an incomplete table parses with %v, want ErrIncomplete", err)
	}
}
