package plan

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/reports"
)

// TestCloudPlan: max pods per instance type from the AWS VPC CNI's
// formula, worked out here from the published ENI and address counts;
// in a storm of 540 pods the one without a pool is throttled, the warm
// pools are not and are faster, and every pod gets its address. (At 108
// pods the bucket absorbs the storm and no pool is done first: the pools
// refill every 5 s; plan shows that too.)
func TestCloudPlan(t *testing.T) {
	c, err := RunCloud(Params{NodesPerZone: 20, HostsPerLeaf: 2}, CloudParams{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"t3.nano":     2*(2-1) + 2,
		"t3.small":    3*(4-1) + 2,
		"m4.large":    2*(10-1) + 2,
		"m5.large":    3*(10-1) + 2,
		"m5.4xlarge":  8*(30-1) + 2,
		"c5.18xlarge": 15*(50-1) + 2,
	} {
		found := false
		for _, ty := range c.Types {
			if ty.Name == name {
				found = true
				if ty.MaxPods != want {
					t.Errorf("%s: max pods %d, want %d", name, ty.MaxPods, want)
				}
			}
		}
		if !found {
			t.Errorf("no row for %s", name)
		}
	}
	if c.Params.Nodes != 20 || c.Params.PodsPerNode != 27 || c.Params.InstanceType != "m5.large" {
		t.Errorf("defaults: %+v", c.Params)
	}
	if len(c.Storms) != 4 || c.Storms[0].Pool != "no warm pool" || c.Storms[1].Pool != "WARM_ENI_TARGET=1" {
		t.Fatalf("storms: %+v", c.Storms)
	}
	off := c.Storms[0]
	for i, s := range c.Storms {
		if s.Pods != 20*27 || s.Failed != 0 {
			t.Errorf("%s: %d pods, %d failed", s.Pool, s.Pods, s.Failed)
		}
		if i > 0 && (s.Calls >= off.Calls || s.Max >= off.Max) {
			t.Errorf("%s: %d calls, last pod at %v; no pool: %d, %v", s.Pool, s.Calls, s.Max, off.Calls, off.Max)
		}
	}
	// 540 AssignPrivateIpAddresses on a bucket of 100 refilling 5/s.
	if off.Throttled == 0 || off.CallsBy["AssignPrivateIpAddresses"] < 540-40 {
		t.Errorf("no pool: %d throttled, calls %v", off.Throttled, off.CallsBy)
	}
	// A prescaled pool (MINIMUM_IP_TARGET = pods) calls nothing in the storm.
	if last := c.Storms[3]; last.Calls != 0 || last.Max != 0 {
		t.Errorf("%s: %d calls, max %v", last.Pool, last.Calls, last.Max)
	}
	var md, html strings.Builder
	if err := WriteMarkdown(&md, &Plan{Cloud: c}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, &Plan{Cloud: c}); err != nil || !strings.Contains(html.String(), "<svg") || !strings.Contains(html.String(), "spawn storm") {
		t.Errorf("HTML: %v, no storm plot", err)
	}
	// plan merge keeps the cloud, which one shard planned.
	var js bytes.Buffer
	if err := WriteJSON(&js, &Plan{Cloud: c, Shard: &reports.Shard{Index: 0, Count: 2}}); err != nil {
		t.Fatal(err)
	}
	p0, err := ReadJSON(js.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge([]Named{{Name: "s0", Plan: p0}, {Name: "s1", Plan: &Plan{Params: p0.Params, Shard: &reports.Shard{Index: 1, Count: 2}}}})
	if err != nil || merged.Cloud == nil || len(merged.Cloud.Storms) != 4 {
		t.Errorf("merge: %v, cloud %v", err, merged != nil && merged.Cloud != nil)
	}
	for _, want := range []string{"## vpc (public cloud)", "| m5.large | 3 | 10 | 29 |", "| no warm pool | 540 |", "ec2-api-throttling"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestCloudPlanErrors(t *testing.T) {
	_, err := RunCloud(Params{NodesPerZone: 4, HostsPerLeaf: 2}, CloudParams{InstanceType: "z9.huge"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"z9.huge"`) || !strings.Contains(err.Error(), "m5.large") {
		t.Errorf("unknown type: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "limits.yaml")
	if err := os.WriteFile(bad, []byte("elastic_ips: many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = RunCloud(Params{NodesPerZone: 4, HostsPerLeaf: 2}, CloudParams{LimitsFile: bad}, nil)
	if !errors.Is(err, cloud.ErrInvalidLimits) || !strings.Contains(err.Error(), bad+":1: elastic_ips") {
		t.Errorf("bad limits: %v", err)
	}
}
