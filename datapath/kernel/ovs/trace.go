package ovs

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// activeMember returns the active member named in `ovs-appctl bond/show`
// output ("" when none is).
func activeMember(bondShow string) string {
	member := ""
	sc := bufio.NewScanner(strings.NewReader(bondShow))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "member "); ok {
			member, _, _ = strings.Cut(rest, ":")
			continue
		}
		if line == "active member" && member != "" {
			return member
		}
	}
	return ""
}

// DPPort is one port of a datapath as `ovs-appctl dpif/show` lists it.
type DPPort struct {
	Bridge string
	Name   string
	OFPort string // OpenFlow port number, as printed
	ODP    int    // datapath port number; -1 for a patch port
	Type   string // "system", "tap", "internal", "patch"
	Peer   string // a patch port's peer
}

// ParseDPIFShow parses `ovs-appctl dpif/show`:
//
//	netdev@ovs-netdev: hit:0 missed:0
//	  br-bond:
//	    br-bond 65534/1: (tap)
//	    eth1 3/3: (system)
//	    phy-br-bond 1/none: (patch: peer=int-br-bond)
func ParseDPIFShow(s string) ([]DPPort, error) {
	var out []DPPort
	bridge := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trim == "" || indent == 0:
			continue
		case indent <= 2 && strings.HasSuffix(trim, ":"):
			bridge = strings.TrimSuffix(trim, ":")
		default:
			name, rest, ok := strings.Cut(trim, " ")
			nums, kind, ok2 := strings.Cut(rest, ": ")
			of, odp, ok3 := strings.Cut(nums, "/")
			if !ok || !ok2 || !ok3 || bridge == "" {
				return nil, fmt.Errorf("dpif/show line %d: %q: want \"name ofport/odpport: (type)\" under a bridge", n, trim)
			}
			p := DPPort{Bridge: bridge, Name: name, OFPort: of, ODP: -1}
			if odp != "none" {
				v, err := strconv.Atoi(odp)
				if err != nil {
					return nil, fmt.Errorf("dpif/show line %d: datapath port %q: %w", n, odp, err)
				}
				p.ODP = v
			}
			kind = strings.TrimSuffix(strings.TrimPrefix(kind, "("), ")")
			p.Type, _, _ = strings.Cut(kind, ":")
			if _, peer, ok := strings.Cut(kind, "peer="); ok {
				p.Peer = strings.TrimSpace(peer)
			}
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// Trace is what `ovs-appctl ofproto/trace` says of one packet: the
// bridges it crossed, in order (a patch port leads into the next), and
// the datapath ports it was output to ("Datapath actions"); Dropped when
// the datapath drops it.
type Trace struct {
	Bridges []string
	Outputs []int
	Dropped bool
	Actions string
}

// ParseTrace parses ofproto/trace output.
func ParseTrace(s string) (Trace, error) {
	var t Trace
	found := false
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if b, ok := strings.CutPrefix(line, `bridge("`); ok {
			if name, ok := strings.CutSuffix(b, `")`); ok {
				t.Bridges = append(t.Bridges, name)
			}
			continue
		}
		acts, ok := strings.CutPrefix(line, "Datapath actions: ")
		if !ok {
			continue
		}
		found = true
		t.Actions = acts
		depth, tok := 0, strings.Builder{}
		flush := func() {
			a := strings.TrimSpace(tok.String())
			tok.Reset()
			if a == "drop" {
				t.Dropped = true
			}
			if v, err := strconv.Atoi(a); err == nil {
				t.Outputs = append(t.Outputs, v)
			}
		}
		for _, r := range acts {
			switch {
			case r == '(':
				depth++
			case r == ')':
				depth--
			case r == ',' && depth == 0:
				flush()
				continue
			}
			tok.WriteRune(r)
		}
		flush()
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	if !found {
		return t, fmt.Errorf("ofproto/trace: no \"Datapath actions\" line in:\n%s", s)
	}
	if len(t.Outputs) == 0 {
		t.Dropped = true
	}
	return t, nil
}

// rstpStates maps each port of `ovs-appctl rstp/show` output to a
// spanning-tree state in the kernel bridge's words: "forwarding",
// "learning", "disabled", "blocking" for a discarding alternate or backup
// port, "listening" for a discarding root or designated port (not yet
// agreed with its peer).
func rstpStates(show string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(show))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		role, state := f[1], f[2]
		switch role {
		case "Root", "Designated", "Alternate", "Backup", "Disabled":
		default:
			continue
		}
		switch state {
		case "Forwarding":
			m[f[0]] = "forwarding"
		case "Learning":
			m[f[0]] = "learning"
		case "Disabled":
			m[f[0]] = "disabled"
		case "Discarding":
			if role == "Disabled" {
				m[f[0]] = "disabled"
			} else if role == "Alternate" || role == "Backup" {
				m[f[0]] = "blocking"
			} else {
				m[f[0]] = "listening"
			}
		}
	}
	return m
}
