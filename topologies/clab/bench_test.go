package clab

import (
	"testing"

	"github.com/netbed/netbed/topologies"
)

// seedScale is a multi-AZ fabric about the size of the seed's largest AZ
// per zone: 4 AZs of 4 spines, 16 leaves and 8 hosts per leaf (4 x 150 nodes).
func seedScale(b *testing.B) *topologies.Topology {
	t, err := topologies.MultiAZ(topologies.MultiAZParams{AZs: 4, Fabric: topologies.SpineLeafParams{Spines: 4, Leaves: 16, HostsPerLeaf: 8}})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkWrite(b *testing.B) {
	t := seedScale(b)
	for b.Loop() {
		if _, err := Write(t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(t.Nodes))*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
}

func BenchmarkRead(b *testing.B) {
	data, err := Write(seedScale(b))
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for b.Loop() {
		t, _, err := Read("bench.clab.yml", data)
		if err != nil {
			b.Fatal(err)
		}
		n = len(t.Nodes)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
}

func BenchmarkValidate(b *testing.B) {
	t := seedScale(b)
	for b.Loop() {
		if err := t.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(t.Nodes))*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
}
