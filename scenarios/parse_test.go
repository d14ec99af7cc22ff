package scenarios

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `name: demo
description: two VMs in two subnets
topologies:
  default: {builder: spine-leaf, params: {spines: 2, leaves: 4, hosts_per_leaf: 2}}
  vlan: {file: ../topologies/examples/three-tier.clab.yml}
generations: [vlan, evpn]
seed: 7
networks:
  - {name: web, subnet: 10.0.1.0/24, labels: [prod-env]}
  - {name: db, subnet: 10.0.2.0/24}
steps:
  - at: 0s
    spawn: {name: web, kind: vm, count: 2, network: web}
  - at: 100ms
    spawn: {name: db, count: 1, label: prod-env, placement: packed}
  - at: 1s
    traffic: {proto: icmp, from: [web-1], to: [db-1], tag: x}
  - at: 2s
    expect:
      tag: x
      reachable: ["web-1 -> db-1"]
      hops: {vlan: 18}
      max_latency: 1ms
`

func TestParseGood(t *testing.T) {
	s, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "demo" || s.Seed != 7 || len(s.Generations) != 2 || s.Backend != "auto" {
		t.Errorf("header: %+v", s)
	}
	if got := s.Topologies["vlan"].File; got != "../topologies/examples/three-tier.clab.yml" {
		t.Errorf("vlan topology file = %q", got)
	}
	if got := s.Topologies["default"].Params["leaves"]; got != 4 {
		t.Errorf("default leaves = %d", got)
	}
	if len(s.Steps) != 4 {
		t.Fatalf("steps = %d", len(s.Steps))
	}
	kinds := []string{}
	for _, st := range s.Steps {
		kinds = append(kinds, st.Kind())
	}
	if strings.Join(kinds, ",") != "spawn,spawn,traffic,expect" {
		t.Errorf("kinds = %v", kinds)
	}
	if s.Steps[1].At != 100*time.Millisecond || s.Steps[1].Spawn.Place != PlacePacked || s.Steps[0].Spawn.Place != PlaceSpread {
		t.Errorf("step 1 = %+v", s.Steps[1])
	}
	e := s.Steps[3].Expect
	if e.Hops[GenVLAN] != 18 || e.MaxLatency != time.Millisecond || e.Reachable[0] != (Pair{From: "web-1", To: "db-1"}) {
		t.Errorf("expect = %+v", e)
	}
	if s.Steps[3].Line != 18 {
		t.Errorf("expect step line = %d, want 18", s.Steps[3].Line)
	}
	if s.ControlPlane != ControlPlaneShared {
		t.Errorf("control plane = %q, want the default %q", s.ControlPlane, ControlPlaneShared)
	}
	s, err = Parse("good.yaml", []byte(strings.Replace(good, "seed: 7", "seed: 7\ncontrol_plane: bgp", 1)))
	if err != nil || s.ControlPlane != ControlPlaneBGP {
		t.Errorf("control_plane: bgp: %v, %v", s, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"unknown field", "count: 2, network: web}", "good.yaml:13: steps[0].spawn.cuont: unknown field"},
		{"bad count", "count: 2, network: web}", "good.yaml:13: steps[0].spawn.count: must be at least 1"},
		{"bad duration", "at: 100ms", "good.yaml:14: steps[1].at: \"100 parsecs\" is not a duration"},
		{"unknown network", "count: 2, network: web}", "good.yaml:13: steps[0].spawn.network: unknown network \"webb\""},
		{"bad subnet", "subnet: 10.0.2.0/24", "good.yaml:10: networks[1].subnet: \"10.0.2.0/33\" is not a CIDR"},
		{"bad generation", "generations: [vlan, evpn]", "good.yaml:6: generations[1]: \"evnp\" is not a generation"},
		{"bad builder", "default: {builder: spine-leaf", "good.yaml:4: topology.builder: \"clos\" is not a builder"},
		{"bad pair", `reachable: ["web-1 -> db-1"]`, `good.yaml:21: steps[3].expect.reachable[0]: "web-1 db-1": write pairs as "from -> to"`},
		{"two actions", "traffic: {proto: icmp,", "good.yaml:16: steps[2]: a step needs exactly one action"},
		{"type error", "seed: 7", `good.yaml:7: seed: want a whole number, got "seven"`},
		{"out of order", "at: 2s", "good.yaml:18: steps[3].at: 0s is before the previous step's 1s"},
		{"bad yaml", "description: two VMs", "good.yaml:2: mapping values are not allowed"},
		{"count and duration", "tag: x}", "good.yaml:17: steps[2].traffic.duration: set count or duration, not both"},
		{"duration without rate", "tag: x}", "good.yaml:17: steps[2].traffic.rate: a duration needs a rate"},
		{"negative rate", "tag: x}", "good.yaml:17: steps[2].traffic.rate: must be positive"},
		{"background without rate", "tag: x}", "good.yaml:17: steps[2].traffic.rate: a background stream needs a rate"},
		{"bad control plane", "seed: 7", "good.yaml:8: control_plane: \"ospf\" is not a control plane; use shared"},
	}
	replace := map[string]string{
		"unknown field":           "cuont: 2, network: web}",
		"bad count":               "count: 0, network: web}",
		"bad duration":            "at: 100 parsecs",
		"unknown network":         "count: 2, network: webb}",
		"bad subnet":              "subnet: 10.0.2.0/33",
		"bad generation":          "generations: [vlan, evnp]",
		"bad builder":             "default: {builder: clos",
		"bad pair":                `reachable: ["web-1 db-1"]`,
		"two actions":             "spawn: {name: z, count: 1, network: web}\n    traffic: {proto: icmp,",
		"type error":              "seed: seven",
		"out of order":            "at: 0s",
		"bad yaml":                "description: two: VMs",
		"count and duration":      "tag: x, count: 3, rate: 5, duration: 1s}",
		"duration without rate":   "tag: x, duration: 1s}",
		"negative rate":           "tag: x, rate: -1}",
		"background without rate": "tag: x, background: true}",
		"bad control plane":       "seed: 7\ncontrol_plane: ospf",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Replace(good, c.edit, replace[c.name], 1)
			if in == good {
				t.Fatalf("edit %q did not apply", c.edit)
			}
			_, err := Parse("good.yaml", []byte(in))
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n got %q\nwant prefix %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// A traffic step's duration at a rate is a count of probes per pair.
func TestTrafficDuration(t *testing.T) {
	for _, c := range []struct {
		edit string
		want int
	}{{"tag: x, rate: 10, duration: 2s}", 20}, {"tag: x, rate: 3, duration: 500ms}", 2}, {"tag: x, rate: 1, duration: 0s}", 1}, {"tag: x}", 1}} {
		s, err := Parse("good.yaml", []byte(strings.Replace(good, "tag: x}", c.edit, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Steps[2].Traffic.Count; got != c.want {
			t.Errorf("%s: count %d, want %d", c.edit, got, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: x\nsteps: []\n"))
	f.Add([]byte("{}"))
	f.Add([]byte(strings.Replace(good, "seed: 7\n", "seed: 7\noptions:\n  default: {vlans: 200-299, vnis: 5000-5999}\n  ebpf: {cluster_cidr: 10.0.0.0/16, node_mask: 25}\n", 1)))
	f.Add(cpScenario("      bgp_sessions: [leaf1]\n      bgp_route: [{present_on: [leaf2], type: 2, mac: web-1, vni: web}]\n      fabric_consistent: true\n"))
	f.Add([]byte("name: p\ntopology: {builder: spine-leaf}\nnetworks: [{name: n, subnet: 10.0.0.0/24}]\nsteps:\n  - spawn: {name: a, count: 1, network: n, namespace: x, labels: {app: a}, ports: {http: 8080, dns: 53/udp}}\n  - policy: {file: library/policies/netpol-shop.yaml}\n  - expect: {truth_table: true, namespaces: [x]}\n"))
	f.Add([]byte("controller: {replicas: 3, store: etcd}\n" + good[:strings.Index(good, "steps:")] + "steps:\n  - fail: {controller: replica-2, after: 50ms}\n  - fail: {etcd: member-1}\n  - restore: {controller: [replica-2]}\n"))
	f.Add([]byte(strings.Replace(strings.Replace(good, "{name: db, subnet: 10.0.2.0/24}", `{name: db, subnet: 10.0.2.0/24, subnet6: "fd00:2::/64"}`, 1), "tag: x}", "tag: x, family: dual}", 1)))
	f.Add([]byte("name: v\ntopology: {builder: vpc, params: {hosts: 2}}\ngenerations: [vpc]\noptions: {vpc: {instance_type: t3.nano, warm_ip_target: 2, cloud_limits: l.yaml}}\nnetworks: [{name: n, subnet: 10.20.0.0/24}]\nsteps:\n  - spawn: {name: a, kind: pod, count: 2, network: n, allow_failures: true}\n  - spawn: {name: c, count: 1, network: n, hosts: [internet]}\n  - floating_ip: {attach: [a-1]}\n  - traffic: {from: [c-1], to: [a-1], floating_ip: true}\n  - floating_ip: {detach: [a-1]}\n"))
	f.Add([]byte("name: h\ntopology: {builder: hybrid, params: {vpcs: 1, line_delay_ms: 10}}\nsites:\n  - {name: dc, generation: evpn}\n  - {name: vpc1, generation: vpc, cidr: 10.100.0.0/16}\noptions: {vpc: {cni_limits: c.yaml}}\nnetworks:\n  - {name: a, subnet: 10.20.0.0/20, site: dc}\n  - {name: b, subnet: 10.100.0.0/20, site: vpc1}\nsteps:\n  - spawn: {name: p, kind: pod, count: 1, network: a}\n  - security_group: {group: sg-default, remove: {proto: tcp, port: 443, from: 0.0.0.0/0}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse("fuzz.yaml", b)
		if err == nil && (s.Name == "" || len(s.Steps) == 0 || len(s.Generations) == 0) {
			t.Fatalf("accepted an incomplete scenario: %+v", s)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	})
}

// TestParseFileErrors: whatever is wrong with the file, the error names
// the file, and the line and the field where there is one; never the YAML
// library's words ("EOF", "cannot unmarshal !!str").
func TestParseFileErrors(t *testing.T) {
	const head = "name: x\ntopology: {builder: spine-leaf}\nnetworks: [{name: n, subnet: 10.0.0.0/24}]\nsteps:\n"
	cases := []struct {
		name, data, want string
	}{
		{"empty", "", "s.yaml: empty file; a scenario needs at least name, topology and steps"},
		{"comments only", "# nothing yet\n\n", "s.yaml: empty file; a scenario needs at least name, topology and steps"},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00", "s.yaml: not a text file (it holds binary data): a scenario is a YAML file; is this the file you meant?"},
		{"not utf-8", "name: caf\xe9\n", "s.yaml: not a text file (it holds binary data): a scenario is a YAML file; is this the file you meant?"},
		{"tab", "name: x\ntopology:\n\tbuilder: spine-leaf\n", "s.yaml:3: builder: this line is indented with a tab; YAML indents with spaces only"},
		{"indent", "name: x\ntopology: {builder: spine-leaf}\nnetworks:\n  - name: app\n    subnet: 10.1.0.0/24\n   tenant: blue\nsteps: []\n", "s.yaml:6: tenant: this line is indented by 3 spaces, as no line of the block above it (from line 3) is; line it up with its siblings"},
		{"count: two", head + "  - spawn: {name: a, count: two, network: n}\n", `s.yaml:5: steps[0].spawn.count: want a whole number, got "two"`},
		{"port out of range", head + "  - traffic: {from: [a], to: [b], port: 70000}\n", `s.yaml:5: steps[0].traffic.port: want a whole number from 0 to 65535, got "70000"`},
		{"rate not a number", head + "  - traffic: {from: [a], to: [b], rate: fast}\n", `s.yaml:5: steps[0].traffic.rate: want a number, got "fast"`},
		{"bool", head + "  - traffic: {from: [a], to: [b], matrix: sometimes}\n", `s.yaml:5: steps[0].traffic.matrix: want true or false, got "sometimes"`},
		{"list wanted", head + "  - traffic: {from: a, to: [b]}\n", `s.yaml:5: steps[0].traffic.from: want a list, like [a, b], got "a"`},
		{"string wanted", head + "  - spawn: {name: [a], network: n}\n", `s.yaml:5: steps[0].spawn.name: want a string, got a list`},
		{"mapping wanted", "name: x\ntopology: {builder: spine-leaf, params: 4}\nsteps: []\n", `s.yaml:2: topology.params: want a mapping, like {key: value}, got "4"`},
		{"params value", "name: x\ntopology: {builder: spine-leaf, params: {spines: two}}\nsteps: []\n", `s.yaml:2: topology.params.spines: want a whole number, got "two"`},
		{"seed a list", "name: x\nseed: [1]\n", `s.yaml:2: seed: want a whole number, got a list`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(c.data))
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
}

// A controller fault may fire after a delay; no other fault can, and an
// expect may check the controller's consistency.
func TestParseFaultAfter(t *testing.T) {
	head := good[:strings.Index(good, "steps:")]
	s, err := Parse("f.yaml", []byte(head+"steps:\n  - fail: {controller: true, after: 100ms}\n  - restore: {controller: true, after: 1s}\n  - expect: {controller_consistent: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[0].Fail.After != 100*time.Millisecond || s.Steps[1].Restore.After != time.Second || !s.Steps[2].Expect.ControllerConsistent {
		t.Errorf("steps %+v %+v %+v", s.Steps[0].Fail, s.Steps[1].Restore, s.Steps[2].Expect)
	}
	_, err = Parse("f.yaml", []byte(head+"steps:\n  - fail: {node: leaf1, after: 1s}\n"))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:12: steps[0].fail.after: only a controller, replica or etcd fault") {
		t.Errorf("after on a node fault: %v", err)
	}
}

// TestParseController: controller: {secure: true} turns the secure
// controller on; an unknown key or a non-boolean is an error naming the
// line and field.
func TestParseController(t *testing.T) {
	s, err := Parse("good.yaml", []byte("controller: {secure: true}\n"+good))
	if err != nil || !s.Controller.Secure {
		t.Fatalf("secure: %+v %v", s.Controller, err)
	}
	if s, err := Parse("good.yaml", []byte(good)); err != nil || s.Controller.Secure {
		t.Errorf("default: %+v %v; want not secure", s.Controller, err)
	}
	for _, c := range []struct{ src, want string }{
		{"controller: {secure: maybe}\n", "good.yaml:1: controller.secure"},
		{"controller: {tls: true}\n", "good.yaml:1: controller.tls: unknown field"},
	} {
		if _, err := Parse("good.yaml", []byte(c.src+good)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
}

// TestParseReplicas: controller: {replicas: 3, store: etcd} and faults of
// a replica or an etcd member; each mistake is an error naming the line
// and field.
func TestParseReplicas(t *testing.T) {
	head := good[:strings.Index(good, "steps:")]
	s, err := Parse("f.yaml", []byte("controller: {replicas: 3}\n"+head+
		"steps:\n  - fail: {controller: replica-2, after: 50ms}\n  - fail: {etcd: member-3}\n  - restore: {controller: replica-2}\n"+
		"  - fail: {controller: cnc-leader}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Controller.Replicas != 3 || s.Controller.Store != StoreEtcd {
		t.Errorf("controller %+v; want 3 replicas on etcd", s.Controller)
	}
	if f := s.Steps[0].Fail; f.Replica != "replica-2" || f.Controller || f.After != 50*time.Millisecond {
		t.Errorf("fail %+v", f)
	}
	if f := s.Steps[1].Fail; f.Etcd != "member-3" {
		t.Errorf("fail %+v", f)
	}
	if f := s.Steps[3].Fail; f.Replica != CNCLeader {
		t.Errorf("fail %+v; want the CNC's leader", f)
	}
	if s, err := Parse("f.yaml", []byte(good)); err != nil || s.Controller.Store != "" && s.Controller.Store != StoreBolt {
		t.Errorf("default: %+v %v", s.Controller, err)
	}
	for _, c := range []struct{ name, ctl, steps, want string }{
		{"replicas 0", "controller: {replicas: 0}\n", "", "f.yaml:1: controller.replicas: 0: give 1 to 5"},
		{"bbolt replicas", "controller: {replicas: 2, store: bbolt}\n", "", "f.yaml:1: controller.store: bbolt serves one controller"},
		{"unknown store", "controller: {store: zk}\n", "", `f.yaml:1: controller.store: "zk" is not a store`},
		{"replica too far", "controller: {replicas: 3}\n", "  - fail: {controller: replica-4}\n", `steps[0].fail.controller: "replica-4": give true, a replica, replica-1 … replica-3 (controller.replicas is 3), or cnc-leader`},
		{"not a replica", "controller: {replicas: 3}\n", "  - fail: {controller: leader}\n", `steps[0].fail.controller: "leader"`},
		{"leader of one", "", "  - fail: {controller: cnc-leader}\n", "steps[0].fail.controller: cnc-leader: the CNC's leader is one of several replicas"},
		{"whole set", "controller: {replicas: 3}\n", "  - fail: {controller: true}\n", "steps[0].fail.controller: the controller runs as 3 replicas: name one"},
		{"etcd without etcd", "", "  - fail: {etcd: member-1}\n", "steps[0].fail.etcd: the controller's store is not etcd"},
		{"etcd member too far", "controller: {store: etcd}\n", "  - fail: {etcd: member-4}\n", `steps[0].fail.etcd: "member-4": name a member, member-1 … member-3`},
		{"two targets", "controller: {replicas: 3}\n", "  - fail: {controller: replica-1, etcd: member-1}\n", "name exactly one of node, role, link, controller, etcd, agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			steps := c.steps
			if steps == "" {
				steps = "  - fail: {node: leaf1}\n"
			}
			_, err := Parse("f.yaml", []byte(c.ctl+head+"steps:\n"+steps))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v; want %q", err, c.want)
			}
		})
	}
}
