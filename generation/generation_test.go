package generation

import (
	"slices"
	"testing"
)

func TestBuiltins(t *testing.T) {
	want := []Name{"vlan", "vlan-stock", "evpn", "ebpf", "ebpf-direct", "vpc", "hybrid"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v (report order)", got, want)
	}
	if got := Defaults(); !slices.Equal(got, []Name{"vlan", "evpn", "ebpf"}) {
		t.Errorf("Defaults() = %v", got)
	}
	for _, c := range []struct {
		name   Name
		family int
		local  bool
		policy bool
		seg    Segment
	}{
		{"vlan", 1, false, false, SegmentVLAN},
		{"vlan-stock", 1, false, true, SegmentVLAN},
		{"evpn", 2, false, false, SegmentVXLAN},
		{"ebpf", 3, true, true, SegmentNone},
		{"ebpf-direct", 3, true, true, SegmentNone},
		{"vpc", 4, false, false, SegmentNone},
		{"hybrid", 5, false, false, SegmentNone},
	} {
		d, ok := Lookup(c.name)
		if !ok {
			t.Fatalf("%s not registered", c.name)
		}
		if d.Family != c.family || d.LocalIPAM() != c.local || d.Controlled() == c.local || d.Policy != c.policy || d.Segment != c.seg {
			t.Errorf("%s: %+v", c.name, d)
		}
		if c.name.Family() != c.family {
			t.Errorf("%s.Family() = %d", c.name, c.name.Family())
		}
		if d.Colour == "" {
			t.Errorf("%s has no colour", c.name)
		}
	}
	if Known("vpc-nope") || Name("vpc-nope").Family() != 0 || Colour("vpc-nope") != "" {
		t.Error("an unregistered name is known")
	}
}

func TestRegisterRefuses(t *testing.T) {
	ok := Desc{Name: "t-ok", Family: 4, IPAM: IPAMGlobal, Policy: true, Instance: "vm", Roles: []string{"leaf"}}
	for name, d := range map[string]Desc{
		"taken":         func() Desc { d := ok; d.Name = "vlan"; return d }(),
		"no name":       func() Desc { d := ok; d.Name = ""; return d }(),
		"no family":     func() Desc { d := ok; d.Family = 0; return d }(),
		"no IPAM":       func() Desc { d := ok; d.IPAM = ""; return d }(),
		"CNI, no mode":  func() Desc { d := ok; d.PodsViaCNI = true; return d }(),
		"no policy why": func() Desc { d := ok; d.Policy = false; return d }(),
		"no instance":   func() Desc { d := ok; d.Instance = ""; return d }(),
		"no roles":      func() Desc { d := ok; d.Roles = nil; return d }(),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", d)
				}
			}()
			Register(d)
		})
	}
}

func TestRegisterOrder(t *testing.T) {
	n := len(Names())
	RegisterForTest(t, Desc{Name: "t-fam1", Family: 1, IPAM: IPAMGlobal, Policy: true, Instance: "vm", Roles: []string{"core"}})
	got := Names()
	if len(got) != n+1 || got[2] != "t-fam1" {
		t.Errorf("a family 1 generation registered last comes after family 1's others: %v", got)
	}
}

func TestRegisterForTestRemoves(t *testing.T) {
	t.Run("registers", func(t *testing.T) {
		RegisterForTest(t, Desc{Name: "t-gone", Family: 4, IPAM: IPAMLocal, Policy: true, Instance: "pod", Roles: []string{"leaf"}})
		if !Known("t-gone") {
			t.Fatal("not registered")
		}
	})
	if Known("t-gone") {
		t.Error("still registered after its test ended")
	}
}
