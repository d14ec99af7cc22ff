package kmaps

import (
	"fmt"
	"testing"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkSpawnReconcile times what a spawn storm costs the maps on the
// kernel backend (datapath/kernel/bpf): pod-spawn-storm's fabric (2
// spines, 4 leaves, 16 hosts) gets its pods one at a time, and after each
// every host's kernel maps are reconciled with its model and its expired
// conntrack entries deleted, as the fabric's Sync does after every
// change. Metrics: that time per pod, and per host and pod.
func BenchmarkSpawnReconcile(b *testing.B) {
	testutil.RequireRoot(b)
	for _, pods := range []int{100, 300} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			var reconciles int
			for b.Loop() {
				b.StopTimer()
				tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "storm", Spines: 2, Leaves: 4, HostsPerLeaf: 4})
				if err != nil {
					b.Fatal(err)
				}
				m, err := gen3.New(tp, gen3.Options{})
				if err != nil {
					b.Fatal(err)
				}
				hosts := tp.NodesByRole(topologies.RoleHost)
				kms := make([]*Maps, len(hosts))
				for i := range hosts {
					if kms[i], err = NewSized(Capacity{Policy: 65536, CT: 65536}); err != nil {
						b.Fatal(err)
					}
				}
				all := func(k gen3.EndpointKey, v gen3.EndpointInfo) (gen3.EndpointInfo, bool) { return v, true }
				b.StartTimer()
				for p := range pods {
					b.StopTimer()
					h := hosts[p%len(hosts)].Name
					if _, _, err := m.AddInstance(datapath.InstanceSpec{Name: fmt.Sprintf("pod-%d", p+1), Host: h,
						Labels: map[string]string{"app": "storm"}}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					for i, hn := range hosts {
						n, _ := m.Host(hn.Name)
						if err := kms[i].Reconcile(n.Maps(), all); err != nil {
							b.Fatal(err)
						}
						if _, err := kms[i].ExpireCT(gen3.CTTimeout); err != nil {
							b.Fatal(err)
						}
						reconciles++
					}
				}
				b.StopTimer()
				for _, km := range kms {
					km.Close()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*pods), "ms/pod")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(reconciles), "µs/host-sync")
		})
	}
}
