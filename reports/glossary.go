package reports

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
)

// TermKind is what a glossary term names.
type TermKind string

// The kinds of term a report uses.
const (
	// KindReason is a drop reason (datapath.Reason and the netns
	// runtime's own), as in Probe.Reason and Run.Drops.
	KindReason TermKind = "drop reason"
	// KindRule is the prefix of a Probe.Rule, before its first ':'
	// ("bond" of "bond:backup"): the table or program that decided.
	KindRule TermKind = "rule prefix"
	// KindStep is a spawn step of SpawnEvent.Step, before its first ':'
	// ("1-schedule" of "1-schedule:host1").
	KindStep TermKind = "spawn step"
)

// Term is one glossary entry.
type Term struct {
	Kind    TermKind
	Name    string
	Meaning string
}

// Glossary is every drop reason, rule prefix and spawn step the runtimes
// emit, with a line on what it means. TestGlossaryComplete scans the
// sources for the terms and fails when one lacks an entry here.
var Glossary = []Term{
	// Drop reasons: datapath.Reason constants, gen 1's in datapath/vlan,
	// the runtimes' probe outcomes and the netns runtime's counters.
	{KindReason, "no-route", "no route or FIB entry matched the destination"},
	{KindReason, "arp-unresolved", "the next hop's MAC could not be resolved by ARP, or too many frames waited for it"},
	{KindReason, "policy-deny", "a policy denied the packet (gen 3 identity policy); the rule names the entry"},
	{KindReason, "port-down", "the port or link the frame used is down, detached or not wired"},
	{KindReason, "node-down", "the node that had the frame has failed"},
	{KindReason, "queue-full", "a link's egress queue was full: congestion"},
	{KindReason, "link-loss", "the link lost the frame (its configured loss rate)"},
	{KindReason, "ttl-exceeded", "the IP TTL ran out at a router"},
	{KindReason, "malformed", "the frame is not what the device handles: too short, not IPv4, an unknown protocol"},
	{KindReason, "not-for-me", "a copy for another MAC or address, or a flood copy with nowhere to go: normal for floods, not a lost probe"},
	{KindReason, "vlan-mismatch", "the frame's VLAN is not allowed on the port (tagged on an access port, not trunked, no local network)"},
	{KindReason, "no-tunnel", "no tunnel endpoint or VNI is known for the destination"},
	{KindReason, "split-horizon", "not sent back where it came from (gen 2: a flood or ARP the leaf's own port already has); normal"},
	{KindReason, "bond-backup", "arrived on an active-backup bond's backup NIC, which the bond ignores; normal for floods"},
	{KindReason, "stp-blocked", "arrived on a port the spanning tree blocks (in flight while the tree changed)"},
	{KindReason, "delivered-to-other-instance", "the probe reached an instance, but not the one it was sent to (another tenant's with the same address)"},
	{KindReason, "rx-ring-full", "netns: the kernel dropped frames a node's receive ring had no room for; the node could not keep up"},
	{KindReason, "send-error", "netns: the kernel refused to send a frame; unexplained"},
	{KindReason, "answer-late", "kernel backend: the answer reached the source after the probe's timeout (the trace saw it; the socket had given up)"},
	{KindReason, "trace-lost", "netns on kernel devices: trace events the kernel's ring buffer had no room for, so results may lack them; unexplained"},
	{KindReason, "capture-lost", "netns: frames the capture rings missed, so results may lack them; unexplained"},

	// Rule prefixes: the first word of the rule that decided.
	{KindRule, "access", "an access port's VLAN mapping (a tagged frame on an access port, a port with no VLAN mapped)"},
	{KindRule, "arp", "ARP: a request, a reply, resolution, or a frame that waited for it"},
	{KindRule, "arp-gateway", "gen 2: the leaf answers ARP for the anycast gateway"},
	{KindRule, "arp-suppress", "gen 2: the leaf answers ARP from its EVPN table instead of flooding it"},
	{KindRule, "bond", "a host's bond: which NIC is active, frames on the backup NIC, learning packets"},
	{KindRule, "ct", "gen 3: connection tracking let a reply of a tracked flow pass"},
	{KindRule, "endpoint", "gen 3: the traffic of a local endpoint (pod) allowed by its entry"},
	{KindRule, "ethertype", "an instance's stack: a frame of an EtherType it does not handle"},
	{KindRule, "fdb", "a MAC table (forwarding database) entry: local, remote, or learnt on the port the frame came in on"},
	{KindRule, "fib", "gen 3: the node's routing table (default route)"},
	{KindRule, "flood", "flooding an unknown or broadcast frame to the ports or VTEPs of its segment"},
	{KindRule, "frr", "gen 2 with frr_leaves: an FRR leaf's kernel (the bridge and VXLAN device zebra programs) forwarded the frame"},
	{KindRule, "frame", "a frame too short to parse"},
	{KindRule, "fw", "gen 1 stock: the per-instance iptables firewall rule n, or its default"},
	{KindRule, "gateway", "the gateway address's own traffic: pings to it, frames for it"},
	{KindRule, "host", "gen 3: traffic to or from the node's own stack (cilium_host)"},
	{KindRule, "icmp", "the instance's stack handling ICMP (echo request and reply)"},
	{KindRule, "icmp6", "the instance's stack handling ICMPv6 other than echo and neighbour discovery, or a truncated one"},
	{KindRule, "inner", "gen 3: the decapsulated inner packet"},
	{KindRule, "ip", "an IP stack's handling: too short, TTL, another protocol, or the kernel's routing (netns)"},
	{KindRule, "ip6", "an IPv6 packet's handling: for another address, too short, or its hop limit spent"},
	{KindRule, "ipv6", "gen 3: a pod's IPv6 packet the node does not forward (ipv6:multicast: a multicast destination other than neighbour discovery)"},
	{KindRule, "irb", "gen 2: the leaf's integrated routing (local host, L3 VNI, EVPN type-5 prefix, host not yet known)"},
	{KindRule, "kernel", "netns: the Linux kernel of the instance's namespace sent or received it; kernel backend: kernel:<reason> is the kernel's own drop reason (enum skb_drop_reason), reported by its kfree_skb tracepoint"},
	{KindRule, "line", "hybrid: a dedicated line between sites: the route over it to the far site (line:<site>), or a frame on it not addressed to the far end"},
	{KindRule, "timeout", "the probe's timeout passed before its answer reached the source"},
	{KindRule, "local", "delivered to the router itself"},
	{KindRule, "mac", "an instance's stack: a frame for another MAC"},
	{KindRule, "ndisc", "IPv6 neighbour discovery, where IPv4 uses ARP: a solicitation for a next hop, the advertisement answering it, or an unsolicited advertisement after a move"},
	{KindRule, "nd-gateway", "gen 2: the leaf answers neighbour solicitations for the anycast gateway's IPv6 address"},
	{KindRule, "nd-suppress", "gen 2: the leaf answers neighbour solicitations from its EVPN table instead of flooding them"},
	{KindRule, "ndp", "gen 3: the node answers its pods' router and neighbour discovery itself, as Cilium does (ndp:responder, ndp:advertisement; ndp:ignored for other messages)"},
	{KindRule, "nic", "a host NIC that is not part of the bond"},
	{KindRule, "no-endpoint", "gen 3: a pod veth with no endpoint behind it"},
	{KindRule, "not-ipv4", "gen 3: a pod sent something other than IPv4 or ARP"},
	{KindRule, "not-ipv6", "gen 3: a pod's IPv6 program was given a frame that is not IPv6"},
	{KindRule, "parse", "gen 1: a host bridge could not parse the frame"},
	{KindRule, "ovs", "gen 1 on Open vSwitch: the actions ofproto/trace gave a frame the switch did not forward (ovs:<actions>)"},
	{KindRule, "policy", "gen 3: the identity policy entry <src-id>-><dst-id>:<proto>/<port>, or default-deny; policy:egress:… is checked on the source node as the packet leaves its pod"},
	{KindRule, "port", "a switch or router port: unknown or down"},
	{KindRule, "probe", "the probe sender: which protocol it sends"},
	{KindRule, "rarp", "the RARP announcement a migrated VM's hypervisor sends"},
	{KindRule, "route", "a routing table entry (the route to a prefix, the default route, none)"},
	{KindRule, "route6", "gen 1: the core has no IPv6 route to the destination (IPv6 beyond the networks is not routed)"},
	{KindRule, "routed", "a routed port's input (not IPv4)"},
	{KindRule, "sg", "a security group: gen 1 stock's rule <group>:<n>, conntrack, or the default; vpc's ENI group rule, established, or no-ingress-rule"},
	{KindRule, "sim", "the simulator's links and nodes: down, not wired, lossy, queue full, a source that failed"},
	{KindRule, "source-ip-check", "gen 3: a pod sent from an address that is not its own (anti-spoofing)"},
	{KindRule, "stp", "the spanning tree blocks the port"},
	{KindRule, "svi", "gen 1: the core's VLAN interface (the subnet's gateway): ARP, pings, routing"},
	{KindRule, "tap", "the instance's tap device: detached, or a slot with no instance"},
	{KindRule, "tagged", "an instance's stack: a VLAN-tagged frame, which it does not take"},
	{KindRule, "tcp", "the instance's stack handling TCP (open, closed, SYN-ACK, RST)"},
	{KindRule, "tunnel", "gen 3: the tunnel map entry for the destination node, or its miss"},
	{KindRule, "udp", "the instance's stack echoing UDP"},
	{KindRule, "underlay", "gen 2: the leaf's underlay: routes between VTEPs, frames not for its VTEP"},
	{KindRule, "userspace", "netns: the userspace node's links: down, not wired, frame too large"},
	{KindRule, "vlan", "a host's VLAN translation (local VLAN to network VLAN), or a VLAN not allowed"},
	{KindRule, "vxlan", "VXLAN: a VNI the leaf does not import, or a frame without a known VNI"},
	{KindRule, "igw", "vpc: the internet gateway: an address with no floating IP cannot leave or be reached from outside"},
	{KindRule, "nat", "vpc: the internet gateway's one-to-one NAT of a floating IP and the private address it is associated with"},
	{KindRule, "rtb", "vpc: the VPC router's route table: a subnet (local, to the ENI holding the address) or a target"},
	{KindRule, "sg-egress", "vpc: the sending ENI's security groups let the packet out and track its connection"},
	{KindRule, "src-dst-check", "vpc: the provider's source/destination check: the source address is not on the sending ENI"},
	{KindRule, "unassigned", "vpc: no ENI holds the destination address (the VPC delivers only to assigned addresses)"},

	// Spawn steps: the seed's spawn flow (Fig. 10) as the fabric backend
	// marks it, numbered as there, and the steps around it.
	{KindStep, "1-schedule", "the scheduler placed the instance on a host (named after the colon)"},
	{KindStep, "2-4-port-created", "gens 1 and 2: the controller created the port, allocated its address and synced it to the CNC"},
	{KindStep, "5-vnic-attached", "gens 1 and 2: the vNIC was created and attached to br-int"},
	{KindStep, "announced", "the instance, just attached, announced itself (gratuitous ARP; after a move the RARP rounds too)"},
	{KindStep, "7-8-host-bound", "gens 1 and 2: the port was bound to the host and the binding reached the CNC"},
	{KindStep, "6-underlay-active", "gens 1 and 2: the OVS agent wired the port and reported its underlay ACTIVE"},
	{KindStep, "9-overlay-active", "gens 1 and 2: the CNC reported the port's overlay ACTIVE: the instance is reachable"},
	{KindStep, "2-ipam-local", "gen 3: the node's own IPAM allocated the address"},
	{KindStep, "3-endpoint-bpf-maps", "gen 3: the endpoint was created and written to the node's BPF maps"},
	{KindStep, "2-3-cni-add-local-ipam-endpoint", "a pod by CNI ADD with node-local IPAM: address and endpoint in one call"},
	{KindStep, "2-7-cni-add-port-bound-underlay-active", "a pod by CNI ADD through the controller: port, binding and underlay in one call"},
	{KindStep, "drift-unplugged", "a drift began: the instance was unplugged from its old host (named after the colon)"},
	{KindStep, "2-ipam-warm-pool", "vpc: the node's warm pool (ipamd) gave an address already on one of its ENIs: no cloud call"},
	{KindStep, "2-ipam-cloud", "vpc: the cloud's API assigned the address on the spawn (no warm pool, or an empty one)"},
	{KindStep, "2-ipam-address-moved", "vpc: a drift: the cloud reassigned the pod's address to an ENI of the new node (its floating IP follows)"},
	{KindStep, "2-ipam-address-on-node", "vpc: a drift back: the pod's address was still on an ENI of the node"},
	{KindStep, "3-port-recorded", "vpc: the controller recorded the address as the pod's port"},
	{KindStep, "4-cni-veth-route-rule", "vpc: the VPC CNI wired the pod's veth, its /32 route and its policy rule on the node"},
	{KindStep, "5-port-active", "vpc: the port was bound to the node and reported active"},
	{KindStep, "2-outside-address", "vpc: a client outside the VPC took an address of the outside network"},
	{KindStep, "cloud", "vpc: a call to the cloud's API made for the instance (the action after the colon)"},
	{KindStep, "throttled", "vpc: the cloud throttled the call (RequestLimitExceeded); ipamd retries after a backoff"},
	{KindStep, "cloud-error", "vpc: the cloud refused the call with the provider's error code (after the action)"},
	{KindStep, "limit", "vpc: the node is at its instance type's ENI and address limits (max pods)"},
	{KindStep, "ipamd", "vpc: the node's warm pool was empty; a reconciler pass refilled it"},
	{KindStep, "floating-ip-attached", "vpc: a floating IP was associated with the instance's address"},
	{KindStep, "floating-ip-detached", "vpc: the instance's floating IP was disassociated and released"},
	{KindStep, "failed", "a spawn with allow_failures could not create the instance (the error after the colon)"},
}

// termIndex finds a glossary entry by kind and name.
var termIndex = func() map[TermKind]map[string]Term {
	idx := map[TermKind]map[string]Term{}
	for _, t := range Glossary {
		if idx[t.Kind] == nil {
			idx[t.Kind] = map[string]Term{}
		}
		idx[t.Kind][t.Name] = t
	}
	return idx
}()

// termName is the glossary name of text of a kind: a rule or step up
// to its first ':'.
func termName(kind TermKind, text string) string {
	if kind == KindReason {
		return text
	}
	name, _, _ := strings.Cut(text, ":")
	return name
}

// LookupTerm finds the glossary entry for a reason, rule or step as a
// report shows it ("bond:backup" finds the rule prefix "bond").
func LookupTerm(kind TermKind, text string) (Term, bool) {
	t, ok := termIndex[kind][termName(kind, text)]
	return t, ok
}

// TermsOf lists every reason, rule and step a run's report names, each
// once, in the order first seen.
func TermsOf(run *Run) []Term {
	var out []Term
	seen := map[string]bool{}
	add := func(kind TermKind, text string) {
		if text == "" {
			return
		}
		key := string(kind) + "\x00" + termName(kind, text)
		if seen[key] {
			return
		}
		seen[key] = true
		t, ok := LookupTerm(kind, text)
		if !ok {
			t = Term{Kind: kind, Name: termName(kind, text)}
		}
		out = append(out, t)
	}
	for _, k := range sortedKeys(run.Drops) {
		add(KindReason, k)
	}
	for _, c := range StatsOf(run).Classes {
		add(KindReason, c.Reason)
		add(KindRule, c.Rule)
	}
	for _, e := range run.Timeline {
		add(KindStep, e.Step)
	}
	return out
}

// anchor is a term's id in the HTML report.
func anchor(t Term) string {
	return "term-" + strings.ReplaceAll(string(t.Kind), " ", "-") + "-" + t.Name
}

// mdTerm is text as the Markdown report shows it: linked to the
// glossary section when the glossary has it.
func mdTerm(kind TermKind, text string) string {
	if _, ok := LookupTerm(kind, text); !ok {
		return text
	}
	return "[" + text + "](#glossary)"
}

// htmlTerm is text linked to its glossary entry in the HTML report, with
// the meaning as a tooltip.
func htmlTerm(kind TermKind, text string) template.HTML {
	t, ok := LookupTerm(kind, text)
	if !ok {
		return template.HTML(template.HTMLEscapeString(text))
	}
	return template.HTML(fmt.Sprintf(`<a href="#%s" title="%s">%s</a>`, anchor(t),
		template.HTMLEscapeString(t.Meaning), template.HTMLEscapeString(text)))
}

// usedTerms are the glossary entries the report's runs name, by kind
// (reasons, rules, steps) and name; a term without an entry is listed
// with an empty meaning.
func usedTerms(r *Report) []Term {
	seen := map[string]bool{}
	var out []Term
	for _, run := range r.Runs {
		for _, t := range TermsOf(run) {
			if k := string(t.Kind) + "\x00" + t.Name; !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
	}
	order := map[TermKind]int{KindReason: 0, KindRule: 1, KindStep: 2}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return order[out[i].Kind] < order[out[j].Kind]
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// sortedKeys are m's keys in order.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// glossaryMarkdown is the report's glossary section: the terms it uses.
func glossaryMarkdown(r *Report) string {
	terms := usedTerms(r)
	if len(terms) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Glossary\n\nThe drop reasons, rule prefixes (a rule's first word, before its `:`) and spawn steps this report names.\n\n")
	b.WriteString("| term | kind | meaning |\n|---|---|---|\n")
	for _, t := range terms {
		m := t.Meaning
		if m == "" {
			m = "(not in the glossary)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", t.Name, t.Kind, strings.ReplaceAll(m, "|", `\|`))
	}
	return b.String()
}
