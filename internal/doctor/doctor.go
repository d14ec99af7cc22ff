package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Names of the checks, in the order Run reports them.
const (
	Root                = "root"
	Netns               = "netns"
	Veth                = "veth"
	AFPacket            = "AF_PACKET"
	Bridge              = "bridge"
	VXLAN               = "vxlan"
	VXLANExternal       = "vxlan external"
	Macvlan             = "macvlan"
	TCClsact            = "tc clsact"
	BPFLoad             = "bpf load"
	TCBPF               = "tc bpf attach"
	Iptables            = "iptables"
	VLAN8021Q           = "802.1Q"
	BridgeVLANFiltering = "bridge vlan filtering"
	Bond                = "bond"
	Dummy               = "dummy"
	Netem               = "netem"
)

// CheckNames lists every check in report order.
var CheckNames = []string{Root, Netns, Veth, AFPacket, Bridge, VXLAN, VXLANExternal, Macvlan,
	TCClsact, BPFLoad, TCBPF, Iptables, VLAN8021Q, BridgeVLANFiltering, Bond, Dummy, Netem}

// Check is the outcome of one probe.
type Check struct {
	Name string
	OK   bool
	// Detail says what failed and why (the kernel's error), or a note.
	Detail string
}

// Backend says whether one of netbed's backends can run here.
type Backend struct {
	Name string
	// Needs are the checks the backend requires; Missing those that failed.
	Needs, Missing []string
}

// OK reports whether every need is met.
func (b Backend) OK() bool { return len(b.Missing) == 0 }

// backendNeeds is what each backend requires: sim runs anywhere; netns
// needs namespaces, veth pairs and AF_PACKET sockets for the userspace
// datapath; kernel also needs VXLAN, tc hooks and BPF programs.
var backendNeeds = []struct {
	name  string
	needs []string
}{
	{"sim", nil},
	{"netns", []string{Root, Netns, Veth, AFPacket}},
	{"kernel", []string{Root, Netns, Veth, AFPacket, VXLAN, TCClsact, BPFLoad, TCBPF}},
}

// Backends works out which backends the checks allow.
func Backends(checks []Check) []Backend {
	ok := map[string]bool{}
	for _, c := range checks {
		ok[c.Name] = c.OK
	}
	out := make([]Backend, 0, len(backendNeeds))
	for _, b := range backendNeeds {
		be := Backend{Name: b.name, Needs: b.needs}
		for _, n := range b.needs {
			if !ok[n] {
				be.Missing = append(be.Missing, n)
			}
		}
		out = append(out, be)
	}
	return out
}

// Result is what Run found.
type Result struct {
	Checks   []Check
	Backends []Backend
}

// Check returns the check called name.
func (r *Result) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// WriteTable prints the checks and backends as aligned tables.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, c := range r.Checks {
		res := "ok"
		if !c.OK {
			res = "MISSING"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, res, oneLine(c.Detail))
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "BACKEND\tCAN RUN\tNEEDS")
	for _, b := range r.Backends {
		res, note := "yes", strings.Join(b.Needs, ", ")
		if !b.OK() {
			res, note = "no", "missing: "+strings.Join(b.Missing, ", ")
		}
		if note == "" {
			note = "nothing (runs anywhere)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, res, note)
	}
	return tw.Flush()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
