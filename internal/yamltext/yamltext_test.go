package yamltext

import (
	"strings"
	"testing"
)

func TestBinary(t *testing.T) {
	long := strings.Repeat("a", 8<<10-1) + "é" // é cut by the 8 KiB window
	cases := []struct {
		name string
		data string
		want bool
	}{
		{"yaml", "name: x\n", false},
		{"utf-8", "description: café ✓\n", false},
		{"empty", "", false},
		{"nul", "name: x\x00\n", true},
		{"elf", "\x7fELF\x02\x01\x01\x00", true},
		{"latin-1", "name: caf\xe9\n", true},
		{"long text cut in a character", long + "\nmore", false},
		{"long binary", "\xff\xfe" + long, true},
	}
	for _, c := range cases {
		if got := Binary([]byte(c.data)); got != c.want {
			t.Errorf("%s: Binary = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEmpty(t *testing.T) {
	for data, want := range map[string]bool{
		"": true, "\n \n": true, "# a comment\n\n  # another\n": true, "---\n...\n": true,
		"name: x": false, "# c\nname: x\n": false, "[]": false,
	} {
		if got := Empty([]byte(data)); got != want {
			t.Errorf("Empty(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestTabIndent(t *testing.T) {
	cases := []struct {
		data string
		line int
		key  string
		ok   bool
	}{
		{"name: x\ntopology:\n  builder: y\n", 0, "", false},
		{"name: x\ntopology:\n\tbuilder: y\n", 3, "builder", true},
		{"steps:\n  \t- spawn: {name: a}\n", 2, "spawn", true},
		{"a:\n\t# a comment with a tab\n  b: 1\n\t\n", 0, "", false},
		{"name:\tx\n", 0, "", false}, // a tab after the key is not indentation
		{"x:\n\t[1, 2]\n", 2, "", true},
	}
	for _, c := range cases {
		line, key, ok := TabIndent([]byte(c.data))
		if line != c.line || key != c.key || ok != c.ok {
			t.Errorf("TabIndent(%q) = %d %q %v, want %d %q %v", c.data, line, key, ok, c.line, c.key, c.ok)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"leafs", "leaves", 2}, {"kind", "kinds", 1}, {"spines", "spines", 0}, {"abc", "", 3}, {"cuont", "count", 2}} {
		if got := EditDistance(c.a, c.b); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestMisIndented(t *testing.T) {
	cases := []struct {
		name, data string
		from       int
		line, ind  int
		key        string
		ok         bool
	}{
		{"one space short", "name: t2\ntopology:\n  nodes:\n    leaf1:\n      kind: linux\n     labels: {a: b}\n", 3, 6, 5, "labels", true},
		{"list item", "networks:\n  - name: app\n    subnet: 10.1.0.0/24\n   tenant: blue\nsteps: []\n", 1, 4, 3, "tenant", true},
		{"well indented", "a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", 1, 0, 0, "", false},
		{"comments and blanks", "a:\n  b: 1\n\n# x\n c: 2\n", 1, 5, 1, "c", true},
	}
	for _, c := range cases {
		line, ind, key, ok := MisIndented([]byte(c.data), c.from)
		if line != c.line || ind != c.ind || key != c.key || ok != c.ok {
			t.Errorf("%s: got line %d indent %d key %q %v, want %d %d %q %v", c.name, line, ind, key, ok, c.line, c.ind, c.key, c.ok)
		}
	}
}

func TestWhere(t *testing.T) {
	for _, c := range []struct {
		line        int
		field, want string
	}{
		{3, "steps[1].spawn", "x.yaml:3: steps[1].spawn: bad"},
		{0, "steps", "x.yaml: steps: bad"},
		{3, "", "x.yaml:3: bad"},
		{0, "", "x.yaml: bad"},
	} {
		if got := Where("x.yaml", c.line, c.field, "bad"); got != c.want {
			t.Errorf("Where(x.yaml, %d, %q, bad) = %q, want %q", c.line, c.field, got, c.want)
		}
	}
}
