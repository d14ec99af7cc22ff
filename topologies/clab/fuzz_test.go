package clab

import (
	"bytes"
	"os"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read. It must never panic, and whatever
// it accepts must write out, read back, and write again to the same bytes.
func FuzzRead(f *testing.F) {
	for _, file := range foreign(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, topo := range built(f) {
		b, err := Write(topo)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: x\ntopology:\n  nodes:\n    a: &n {kind: linux}\n    b: *n\n  links:\n    - endpoints: [a:eth1, b:eth1]\n"))
	f.Add([]byte("name: x\nprefix: ~\ntopology: {nodes: {a: null}, defaults: {kind: srl}, links: [{type: veth, endpoints: [{node: a, interface: ethernet-1/1}, {node: a, interface: e1-2}]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, rep, err := Read("fuzz.clab.yml", data)
		if err != nil {
			if topo != nil || rep != nil {
				t.Fatalf("error with results: %v", err)
			}
			return
		}
		first, err := Write(topo)
		if err != nil {
			t.Fatalf("write accepted topology: %v", err)
		}
		again, _, err := Read("again.clab.yml", first)
		if err != nil {
			t.Fatalf("cannot read what Write wrote: %v\n%s", err, first)
		}
		second, err := Write(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("write/read/write not stable:\n%s\n---\n%s", first, second)
		}
	})
}
