package doctor

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func checksWith(ok ...string) []Check {
	set := map[string]bool{}
	for _, n := range ok {
		set[n] = true
	}
	var out []Check
	for _, n := range CheckNames {
		out = append(out, Check{Name: n, OK: set[n]})
	}
	return out
}

func TestBackends(t *testing.T) {
	cases := []struct {
		name    string
		ok      []string
		missing map[string][]string // backend -> missing checks
	}{
		{"nothing works", nil, map[string][]string{
			"sim":    nil,
			"netns":  {Root, Netns, Veth, AFPacket},
			"kernel": {Root, Netns, Veth, AFPacket, VXLAN, TCClsact, BPFLoad, TCBPF},
		}},
		{"netns only", []string{Root, Netns, Veth, AFPacket, Bridge}, map[string][]string{
			"sim": nil, "netns": nil, "kernel": {VXLAN, TCClsact, BPFLoad, TCBPF},
		}},
		{"this CI kernel", []string{Root, Netns, Veth, AFPacket, Bridge, VXLAN, VXLANExternal, Macvlan, TCClsact, BPFLoad, TCBPF, Iptables},
			map[string][]string{"sim": nil, "netns": nil, "kernel": nil}},
		{"no BPF", []string{Root, Netns, Veth, AFPacket, VXLAN, TCClsact}, map[string][]string{
			"sim": nil, "netns": nil, "kernel": {BPFLoad, TCBPF},
		}},
		{"not root", []string{Netns, Veth, AFPacket}, map[string][]string{
			"sim": nil, "netns": {Root}, "kernel": {Root, VXLAN, TCClsact, BPFLoad, TCBPF},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Backends(checksWith(c.ok...))
			if len(got) != len(c.missing) {
				t.Fatalf("%d backends, want %d", len(got), len(c.missing))
			}
			for _, b := range got {
				want, ok := c.missing[b.Name]
				if !ok {
					t.Errorf("unexpected backend %s", b.Name)
					continue
				}
				if !reflect.DeepEqual(b.Missing, want) {
					t.Errorf("%s missing %v, want %v", b.Name, b.Missing, want)
				}
				if b.OK() != (len(want) == 0) {
					t.Errorf("%s OK() = %v", b.Name, b.OK())
				}
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	checks := checksWith(Root, Netns, Veth, AFPacket)
	checks[len(checks)-1].Detail = "add netem qdisc:\n no such file"
	r := &Result{Checks: checks, Backends: Backends(checks)}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, n := range CheckNames {
		if !strings.Contains(out, n) {
			t.Errorf("table lacks check %q", n)
		}
	}
	for _, want := range []string{"BACKEND", "sim", "missing: vxlan, tc clsact", "add netem qdisc: no such file"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if c, ok := r.Check(Veth); !ok || !c.OK {
		t.Errorf("Check(veth) = %+v, %v", c, ok)
	}
	if _, ok := r.Check("nope"); ok {
		t.Error("Check of an unknown name found something")
	}
}

// TestMachine: the description names the CPU count and Go version, and on
// Linux the kernel read from /proc.
func TestMachine(t *testing.T) {
	m := Machine()
	if !strings.Contains(m, runtime.Version()) || !strings.Contains(m, fmt.Sprintf("%d vCPU", runtime.NumCPU())) {
		t.Errorf("Machine() = %q: lacks the CPU count or Go version", m)
	}
	if _, err := os.Stat("/proc/sys/kernel/osrelease"); err == nil && !strings.Contains(m, ", Linux ") {
		t.Errorf("Machine() = %q: lacks the kernel", m)
	}
}
