package netnsrt_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
)

// TestVPCNotOnKernel: the kernel backend refuses vpc with an error that
// says so, and leaves nothing of the lab.
func TestVPCNotOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/vpc-pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newKernelRuntime(t, s.Name)
	_, err = scenarios.Run(context.Background(), s, scenarios.GenVPC, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "vpc is not built on the kernel backend yet") {
		t.Fatalf("vpc on the kernel backend: %v", err)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

// TestVPCAttachmentLimit: scenarios/testdata/vpc-eni-limit.yaml on netns
// (the cloud's model in real time): ipamd, with a stale instance-type
// table, attaches a third ENI to a t3.nano during the storm and the cloud
// refuses it with AttachmentLimitExceeded, in the refused pods' timelines
// and the counters; the pods that came up are reached.
func TestVPCAttachmentLimit(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/vpc-eni-limit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, s.Name)
	run, err := scenarios.Run(context.Background(), s, scenarios.GenVPC, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	for _, pod := range []string{"storm-3", "storm-4"} {
		var st []string
		for _, e := range run.Timeline {
			if e.Instance == pod {
				st = append(st, e.Step)
			}
		}
		if !slices.Contains(st, "cloud-error:AttachNetworkInterface:AttachmentLimitExceeded") ||
			!slices.ContainsFunc(st, func(s string) bool { return strings.HasPrefix(s, "failed: ") }) {
			t.Errorf("%s's timeline: %v", pod, st)
		}
	}
	if run.Counters["cloud_error:AttachmentLimitExceeded"] != 2 || run.Counters["failed_spawns"] != 2 {
		t.Errorf("counters %v", run.Counters)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}
