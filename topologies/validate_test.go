package topologies

import (
	"errors"
	"strings"
	"testing"
)

// small returns a valid two-leaf, one-spine topology with one host per leaf.
func small() *Topology {
	t := &Topology{Name: "small"}
	t.AddNode("spine1", RoleSpine)
	t.AddNode("leaf1", RoleLeaf)
	t.AddNode("leaf2", RoleLeaf)
	t.AddNode("h1", RoleHost)
	t.AddNode("h2", RoleHost)
	t.Connect("leaf1", "eth1", "spine1", "eth1")
	t.Connect("leaf2", "eth1", "spine1", "eth2")
	t.Connect("h1", "eth1", "leaf1", "eth2")
	t.Connect("h2", "eth1", "leaf2", "eth2")
	return t
}

func TestValidate(t *testing.T) {
	type problem struct {
		class error
		names []string // words the message must contain
	}
	cases := []struct {
		name   string
		mutate func(*Topology)
		want   []problem
	}{
		{"valid", func(*Topology) {}, nil},
		{"dangling", func(t *Topology) { t.Connect("h1", "eth2", "leaf9", "eth1") },
			[]problem{{ErrDanglingLink, []string{`"leaf9"`, "link 4"}}}},
		{"duplicate interface", func(t *Topology) { t.Connect("h2", "eth2", "leaf1", "eth2") },
			[]problem{{ErrDuplicateIface, []string{`"leaf1"`, `"eth2"`, "link 2", "link 4"}}}},
		{"both ends reuse", func(t *Topology) { t.Connect("leaf1", "eth1", "spine1", "eth1") },
			[]problem{{ErrDuplicateIface, []string{`"leaf1"`}}, {ErrDuplicateIface, []string{`"spine1"`}}}},
		{"no role", func(t *Topology) { t.Node("h1").Role = "" },
			[]problem{{ErrNoRole, []string{`"h1"`, "netbed.role"}}}},
		{"unknown role", func(t *Topology) { t.Node("h2").Role = "router" },
			[]problem{{ErrUnknownRole, []string{`"h2"`, `"router"`}}}},
		{"isolated node", func(t *Topology) { t.AddNode("h3", RoleHost) },
			[]problem{{ErrDisconnected, []string{"h3"}}}},
		{"cut-off island", func(t *Topology) {
			t.AddNode("h3", RoleHost)
			t.AddNode("h4", RoleHost)
			t.Connect("h3", "eth1", "h4", "eth1")
		}, []problem{{ErrDisconnected, []string{"h3, h4"}}}},
		{"self-loop", func(t *Topology) { t.Connect("spine1", "eth3", "spine1", "eth4") },
			[]problem{{ErrSelfLoop, []string{`"spine1"`}}}},
		{"duplicate node", func(t *Topology) { t.AddNode("leaf2", RoleLeaf) },
			[]problem{{ErrDuplicateNode, []string{`"leaf2"`}}}},
		{"bad interface name", func(t *Topology) { t.Connect("h1", "ethernet-1/1", "leaf1", "averyveryverylongname") },
			[]problem{{ErrInvalidName, []string{"ethernet-1/1"}}, {ErrInvalidName, []string{"averyveryverylongname", "15"}}}},
		{"same bad name on both ends", func(t *Topology) { t.Connect("h1", "1/1/c1/1", "leaf1", "1/1/c1/1") },
			[]problem{{ErrInvalidName, []string{"endpoint h1:1/1/c1/1"}}, {ErrInvalidName, []string{"endpoint leaf1:1/1/c1/1"}}}},
		{"several at once", func(t *Topology) {
			t.Node("h1").Role = ""
			t.Connect("h2", "eth2", "ghost", "eth1")
		}, []problem{{ErrNoRole, []string{`"h1"`}}, {ErrDanglingLink, []string{`"ghost"`}}}},
	}
	all := []error{ErrDanglingLink, ErrDuplicateIface, ErrDuplicateNode, ErrNoRole, ErrUnknownRole, ErrDisconnected, ErrSelfLoop, ErrInvalidName}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo := small()
			c.mutate(topo)
			err := topo.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var got []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				got = j.Unwrap()
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(c.want), err)
			}
			for i, w := range c.want {
				if !errors.Is(got[i], w.class) {
					t.Errorf("problem %d: %v is not %v", i, got[i], w.class)
				}
				for _, s := range w.names {
					if !strings.Contains(got[i].Error(), s) {
						t.Errorf("problem %d: %q does not mention %s", i, got[i], s)
					}
				}
			}
			// Classes not expected are absent.
			for _, class := range all {
				expected := false
				for _, w := range c.want {
					expected = expected || w.class == class
				}
				if !expected && errors.Is(err, class) {
					t.Errorf("unexpected %v in %v", class, err)
				}
			}
		})
	}
}

func TestLabPrefix(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		prefix *string
		want   string
	}{
		{nil, "clab-lab-"},
		{str(""), ""},
		{str("myprefix"), "myprefix-lab-"},
		{str(PrefixLabName), "lab-"},
	}
	for _, c := range cases {
		topo := &Topology{Name: "lab", Prefix: c.prefix}
		if got := topo.LabPrefix(); got != c.want {
			t.Errorf("prefix %v: got %q, want %q", c.prefix, got, c.want)
		}
	}
}
