package ipamd_test

import (
	"reflect"
	"testing"

	"github.com/netbed/netbed/datapath/vpc/ipamd"
)

// TestStorm: a zone's spawn storm without a pool is throttled and slow,
// and every pod gets its address in the end; with warm pools it makes
// far fewer calls and is faster; the same spec gives the same result.
func TestStorm(t *testing.T) {
	spec := ipamd.StormSpec{InstanceType: "m5.large", Nodes: 20, PodsPerNode: 27}
	off, err := ipamd.Storm(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Pool = ipamd.Config{WarmENITarget: 1}
	warm, err := ipamd.Storm(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*ipamd.StormResult{off, warm} {
		if r.Pods != 540 || r.Failed != 0 {
			t.Errorf("%v: %d pods, %d failed", r.Spec.Pool, r.Pods, r.Failed)
		}
	}
	// 540 AssignPrivateIpAddresses against a bucket of 100 refilling 5/s.
	if off.Throttled == 0 || off.ThrottledBy["AssignPrivateIpAddresses"] == 0 {
		t.Errorf("no pool: nothing throttled (%v)", off.ThrottledBy)
	}
	if off.Max < 80e9 {
		t.Errorf("no pool: the last pod waited %v; 440 calls past the bucket at 5/s take 88 s", off.Max)
	}
	if warm.Calls >= off.Calls || warm.P50 >= off.P50 {
		t.Errorf("warm pool: %d calls, p50 %v; no pool: %d calls, p50 %v", warm.Calls, warm.P50, off.Calls, off.P50)
	}
	again, err := ipamd.Storm(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, warm) {
		t.Errorf("two runs of one spec differ:\n%+v\n%+v", again, warm)
	}
}
