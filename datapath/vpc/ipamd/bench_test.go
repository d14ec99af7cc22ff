package ipamd_test

import (
	"testing"

	"github.com/netbed/netbed/datapath/vpc/ipamd"
)

// BenchmarkSpawnStorm: a zone of 100 m5.large nodes spawns 27 pods each
// (2,700) at once through the cloud model (shipped limits: latencies,
// EC2's token buckets), without a warm pool and with the AWS VPC CNI's
// default WARM_ENI_TARGET=1. Times are virtual (the model's), so they are
// the same on any machine; ns/op is the wall time of both storms. The
// ratio is no pool over warm pool (above 1: the pool is faster).
func BenchmarkSpawnStorm(b *testing.B) {
	spec := ipamd.StormSpec{InstanceType: "m5.large", Nodes: 100, PodsPerNode: 27}
	var off, warm *ipamd.StormResult
	for b.Loop() {
		var err error
		spec.Pool = ipamd.Config{}
		if off, err = ipamd.Storm(spec); err != nil {
			b.Fatal(err)
		}
		spec.Pool = ipamd.Config{WarmENITarget: 1}
		if warm, err = ipamd.Storm(spec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(off.P50.Seconds(), "off-p50-s")
	b.ReportMetric(warm.P50.Seconds(), "warm-p50-s")
	b.ReportMetric(off.Max.Seconds(), "off-max-s")
	b.ReportMetric(warm.Max.Seconds(), "warm-max-s")
	b.ReportMetric(off.P50.Seconds()/warm.P50.Seconds(), "p50-ratio")
	b.ReportMetric(off.Max.Seconds()/warm.Max.Seconds(), "max-ratio")
	b.ReportMetric(float64(off.Calls), "off-calls")
	b.ReportMetric(float64(warm.Calls), "warm-calls")
	b.ReportMetric(float64(off.Throttled), "off-throttled")
	b.ReportMetric(float64(warm.Throttled), "warm-throttled")
}
