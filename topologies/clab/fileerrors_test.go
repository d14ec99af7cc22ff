package clab

import (
	"errors"
	"testing"
)

// TestReadFileErrors: whatever is wrong with a topology file, the error
// names the file, and the line and the field where there is one; never
// the YAML library's words.
func TestReadFileErrors(t *testing.T) {
	const nodes = "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n"
	cases := []struct {
		name, data, want string
		class            error
	}{
		{"empty", "", "t.clab.yml:1: the file is empty; a topology needs at least name and topology.nodes", ErrSyntax},
		{"comments only", "# todo\n", "t.clab.yml:1: the file is empty; a topology needs at least name and topology.nodes", ErrSyntax},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00", "t.clab.yml: not a text file (it holds binary data): a topology is a containerlab YAML file (.clab.yml); is this the file you meant?", ErrSyntax},
		{"tab", "name: x\ntopology:\n\tnodes: {}\n", "t.clab.yml:3: nodes: this line is indented with a tab; YAML indents with spaces only", ErrSyntax},
		{"indent", "name: x\ntopology:\n  nodes:\n    leaf1:\n      kind: linux\n     labels: {a: b}\n", "t.clab.yml:6: labels: this line is indented by 5 spaces, as no line of the block above it (from line 3) is; line it up with its siblings", ErrSyntax},
		{"mtu: big", nodes + "    - endpoints: [a:eth1, b:eth1]\n      mtu: big\n", `t.clab.yml:8: topology.links[0].mtu: want a non-negative whole number, got "big"`, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Read("t.clab.yml", []byte(c.data))
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
			if !errors.Is(err, c.class) {
				t.Errorf("%v is not %v", err, c.class)
			}
		})
	}
}
