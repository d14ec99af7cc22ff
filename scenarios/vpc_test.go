package scenarios_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// steps returns an instance's spawn timeline.
func steps(run *reports.Run, inst string) []string {
	var out []string
	for _, e := range run.Timeline {
		if e.Instance == inst {
			out = append(out, e.Step)
		}
	}
	return out
}

func hasStep(st []string, prefix string) bool {
	for _, s := range st {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func runVPC(t *testing.T, file, src string) *reports.Run {
	t.Helper()
	s, err := scenarios.Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenVPC, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	return run
}

// TestVPCNodeFullInTimeline: a t3.nano holds two pods (2 ENIs of 2
// addresses, the primary's first taken by the node); the second pod's
// spawn creates and attaches its node's second ENI, the third finds the
// node at its instance type's limits, which its timeline, the run's
// counters and the report say, and the run goes on.
func TestVPCNodeFullInTimeline(t *testing.T) {
	run := runVPC(t, "nano.yaml", `name: nano
topology: {builder: vpc, params: {hosts: 2}}
generations: [vpc]
options:
  vpc: {instance_type: t3.nano}
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 3, network: pods, hosts: [host1], allow_failures: true}
  - spawn: {name: q, kind: pod, count: 1, network: pods, hosts: [host2]}
  - traffic: {from: [p], to: [q], tag: t}
  - expect: {tag: t, all_reachable: true}
`)
	for _, want := range []string{"cloud:CreateNetworkInterface", "cloud:AttachNetworkInterface", "2-ipam-cloud"} {
		if !hasStep(steps(run, "p-2"), want) {
			t.Errorf("p-2's timeline %v lacks %s", steps(run, "p-2"), want)
		}
	}
	st := steps(run, "p-3")
	if !hasStep(st, "limit:node-full (t3.nano: 2 ENIs x 2 addresses") || !hasStep(st, "failed: ") {
		t.Errorf("p-3's timeline: %v", st)
	}
	if run.Counters["failed_spawns"] != 1 || run.Counters["instances"] != 3 {
		t.Errorf("counters %v", run.Counters)
	}
	var md bytes.Buffer
	if err := reports.WriteMarkdown(&md, &reports.Report{Runs: []*reports.Run{run}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "limit:node-full") {
		t.Errorf("the report does not show the limit:\n%s", md.String())
	}
}

// TestVPCThrottledInTimeline: with a bucket of one AssignPrivateIpAddresses
// token (cloud_limits, relative to the scenario) and no warm pool, the
// second pod's call is throttled by the cloud and retried by ipamd; its
// timeline and the run's counters say so, and the pod comes up.
func TestVPCThrottledInTimeline(t *testing.T) {
	run := runVPC(t, "testdata/throttle.yaml", `name: throttle
topology: {builder: vpc, params: {hosts: 2}}
generations: [vpc]
options:
  vpc: {cloud_limits: vpc-throttle-limits.yaml}
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 3, network: pods, hosts: [host1, host2]}
  - traffic: {from: [p-1], to: [p-2, p-3], tag: t}
  - expect: {tag: t, all_reachable: true}
`)
	if !hasStep(steps(run, "p-2"), "throttled:AssignPrivateIpAddresses") || hasStep(steps(run, "p-1"), "throttled:") {
		t.Errorf("timelines: p-1 %v, p-2 %v", steps(run, "p-1"), steps(run, "p-2"))
	}
	if run.Counters["cloud_throttled"] == 0 || run.Counters["cloud_error:RequestLimitExceeded"] == 0 {
		t.Errorf("counters %v", run.Counters)
	}
}

// TestVPCWarmPoolSpawnTime: with a warm pool a pod's spawn makes no cloud
// call; without, its address costs an AssignPrivateIpAddresses call
// (virtual time on sim: the call's configured latency).
func TestVPCWarmPoolSpawnTime(t *testing.T) {
	src := `name: warm
topology: {builder: vpc, params: {hosts: 1}}
generations: [vpc]
%s
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 1, network: pods}
`
	cold := runVPC(t, "cold.yaml", strings.Replace(src, "%s", "", 1))
	warm := runVPC(t, "warm.yaml", strings.Replace(src, "%s", "options: {vpc: {warm_ip_target: 2}}", 1))
	sc, sw := reports.Summarize(cold).SpawnP50, reports.Summarize(warm).SpawnP50
	if !hasStep(steps(cold, "p-1"), "cloud:AssignPrivateIpAddresses") || hasStep(steps(warm, "p-1"), "cloud:") {
		t.Errorf("timelines: cold %v, warm %v", steps(cold, "p-1"), steps(warm, "p-1"))
	}
	if sw >= sc {
		t.Errorf("spawn p50 warm %v, cold %v: the warm pool saved nothing", sw, sc)
	}
}

func TestVPCScenarioErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"  - floating_ip: {attach: [p-1], detach: [p-1]}\n", "x.yaml:9: steps[1].floating_ip: name the instances to attach or to detach, not both"},
	} {
		src := `name: x
topology: {builder: vpc, params: {hosts: 2}}
generations: [vpc]
options: {vpc: {warm_ip_target: 1}}
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 1, network: pods}
` + c.src
		_, err := scenarios.Parse("x.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
	_, err := scenarios.Parse("x.yaml", []byte("name: x\ntopology: {builder: vpc}\ngenerations: [vpc]\noptions: {vpc: {warm_ip_target: -1}}\nnetworks:\n  - {name: pods, subnet: 10.20.0.0/24}\nsteps:\n  - spawn: {name: p, kind: pod, count: 1, network: pods}\n"))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:4: options.vpc.warm_ip_target: -1") {
		t.Errorf("a negative warm target: %v", err)
	}
	// A floating_ip step names live instances.
	s, err := scenarios.Parse("r.yaml", []byte(`name: r
topology: {builder: vpc, params: {hosts: 2}}
generations: [vpc]
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 1, network: pods}
  - floating_ip: {attach: [nobody]}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckReferences(func(g scenarios.Generation) (*topologies.Topology, error) { return s.TopologyFor(g).Build(s.File) })
	if err == nil || !strings.Contains(err.Error(), `r.yaml:8: steps[1].floating_ip.attach[0]: "nobody"`) {
		t.Errorf("a floating IP for nobody: %v", err)
	}
	// A floating IP on a generation without them names the generation.
	s, err = scenarios.Parse("f.yaml", []byte(`name: f
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [ebpf]
networks:
  - {name: pods, subnet: 10.20.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 1, network: pods}
  - floating_ip: {attach: [p-1]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, 1), scenarios.Options{}); err == nil || !strings.Contains(err.Error(), "ebpf has no floating IPs (vpc has)") {
		t.Errorf("a floating IP on ebpf: %v", err)
	}
}

// TestVPCAttachmentLimit: the provider's AttachmentLimitExceeded is
// reachable. ipamd checks its own instance-type table before it attaches
// an ENI, so a node at its limits is limit:node-full (above) and the cloud
// is not asked; with a table that lags the provider's (cni_limits: a
// t3.nano of 3 ENIs where the cloud allows 2) ipamd attaches a third ENI
// during the storm and the cloud refuses it. The refused pods' timelines,
// the run's counters and the report show the provider's error, the ENI is
// deleted again, and the pods that came up are reached.
func TestVPCAttachmentLimit(t *testing.T) {
	s, err := scenarios.Load("testdata/vpc-eni-limit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenVPC, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAttachmentLimit(t, run)
}

func checkAttachmentLimit(t *testing.T, run *reports.Run) {
	t.Helper()
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	for _, pod := range []string{"storm-1", "storm-2"} {
		if st := steps(run, pod); hasStep(st, "failed:") || hasStep(st, "cloud-error:") {
			t.Errorf("%s's timeline: %v", pod, st)
		}
	}
	for _, pod := range []string{"storm-3", "storm-4"} {
		st := steps(run, pod)
		if !hasStep(st, "cloud-error:AttachNetworkInterface:AttachmentLimitExceeded") ||
			!hasStep(st, "limit:attachment (the cloud: t3.nano takes 2 ENIs; ipamd's table: 3)") ||
			!hasStep(st, "failed: ") || hasStep(st, "limit:node-full") {
			t.Errorf("%s's timeline: %v", pod, st)
		}
	}
	if run.Counters["cloud_error:AttachmentLimitExceeded"] != 2 || run.Counters["failed_spawns"] != 2 ||
		run.Counters["cloud_error:InvalidNetworkInterfaceID.NotFound"] != 0 {
		t.Errorf("counters %v", run.Counters)
	}
	var md bytes.Buffer
	if err := reports.WriteMarkdown(&md, &reports.Report{Runs: []*reports.Run{run}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "AttachmentLimitExceeded") {
		t.Errorf("the report does not show AttachmentLimitExceeded:\n%s", md.String())
	}
}
