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
