package netns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
)

var benchSizes = []struct{ spines, leaves, hosts int }{
	{2, 4, 8},  // 2 + 4 + 32 = 38 nodes
	{4, 16, 8}, // 4 + 16 + 128 = 148 nodes
}

func benchTopology(b *testing.B, spines, leaves, hosts int) *topologies.Topology {
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{
		Name: testutil.Name(testLabPrefix), Spines: spines, Leaves: leaves, HostsPerLeaf: hosts,
	})
	if err != nil {
		b.Fatal(err)
	}
	return tp
}

// BenchmarkDeploy measures deploying a fresh spine-leaf lab; destroying it
// between iterations is not timed.
func BenchmarkDeploy(b *testing.B) {
	testutil.RequireRoot(b)
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%dx%dx%d", s.spines, s.leaves, s.hosts), func(b *testing.B) {
			tp := benchTopology(b, s.spines, s.leaves, s.hosts)
			opt := &Options{StateRoot: b.TempDir()}
			var took, nsTook, linkTook time.Duration
			for b.Loop() {
				start := time.Now()
				lab, rep, err := Deploy(context.Background(), tp, opt)
				took += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				nsTook += rep.NamespacesTook
				linkTook += rep.LinksTook
				b.StopTimer()
				if _, err := lab.Destroy(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(len(tp.Nodes)*b.N)/took.Seconds(), "nodes/s")
			b.ReportMetric(float64(nsTook.Microseconds())/float64(b.N*len(tp.Nodes)), "µs/namespace")
			b.ReportMetric(float64(linkTook.Microseconds())/float64(b.N*len(tp.Links)), "µs/link")
			b.ReportMetric(float64(len(tp.Nodes)), "nodes")
			b.ReportMetric(float64(len(tp.Links)), "links")
		})
	}
}

// BenchmarkDestroy measures destroying a deployed lab; deploying it is not
// timed.
func BenchmarkDestroy(b *testing.B) {
	testutil.RequireRoot(b)
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%dx%dx%d", s.spines, s.leaves, s.hosts), func(b *testing.B) {
			tp := benchTopology(b, s.spines, s.leaves, s.hosts)
			opt := &Options{StateRoot: b.TempDir()}
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				lab, _, err := Deploy(context.Background(), tp, opt)
				if err != nil {
					b.Fatal(err)
				}
				lab.Close()
				b.StartTimer()
				start := time.Now()
				if _, err := Destroy(tp.Name, opt); err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
			}
			b.ReportMetric(float64(len(tp.Nodes)*b.N)/took.Seconds(), "nodes/s")
		})
	}
}

// BenchmarkRedeploy measures a deploy that finds everything in place.
func BenchmarkRedeploy(b *testing.B) {
	testutil.RequireRoot(b)
	s := benchSizes[1]
	tp := benchTopology(b, s.spines, s.leaves, s.hosts)
	opt := &Options{StateRoot: b.TempDir()}
	lab, _, err := Deploy(context.Background(), tp, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lab.Destroy() })
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		l, _, err := Deploy(context.Background(), tp, opt)
		took += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
	b.ReportMetric(float64(len(tp.Nodes)*b.N)/took.Seconds(), "nodes/s")
}

// BenchmarkSetLinksDown takes a spine's 16 links down and up again, in
// one send (SetLinks) and with one netlink call per link as the runtimes
// did before. down-µs is the time from the first link's request to the
// last link down: the most a neighbour's carrier loss can lag another's.
func BenchmarkSetLinksDown(b *testing.B) {
	testutil.RequireRoot(b)
	tp := benchTopology(b, 1, 16, 0)
	opt := &Options{StateRoot: b.TempDir()}
	lab, _, err := Deploy(context.Background(), tp, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		lab.Close()
		if _, err := Destroy(tp.Name, opt); err != nil {
			b.Error(err)
		}
	})
	names := tp.Interfaces("spine1")
	h, err := lab.Handle("spine1")
	if err != nil {
		b.Fatal(err)
	}
	perLink := func(up bool) error {
		for _, n := range names {
			l, err := h.LinkByName(n)
			if err != nil {
				return err
			}
			if up {
				err = h.LinkSetUp(l)
			} else {
				err = h.LinkSetDown(l)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	oneSend := func(up bool) error { return lab.SetLinks("spine1", names, up) }
	for _, m := range []struct {
		name string
		set  func(up bool) error
	}{{"one-send", oneSend}, {"call-per-link", perLink}} {
		b.Run(m.name, func(b *testing.B) {
			var down time.Duration
			for b.Loop() {
				start := time.Now()
				if err := m.set(false); err != nil {
					b.Fatal(err)
				}
				down += time.Since(start)
				if err := m.set(true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(down.Microseconds())/float64(b.N), "down-µs")
		})
	}
}
