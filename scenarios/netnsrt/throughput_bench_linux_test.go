package netnsrt_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// throughputScenario puts two instances on hosts under different leaves
// (racks for gen 1), so that traffic between them crosses the fabric.
const throughputScenario = `name: throughput
topologies:
  default: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 1}}
  vlan: {builder: three-tier, params: {pods: 1, racks_per_pod: 2, hosts_per_rack: 1}}
generations: [vlan, evpn, ebpf]
seed: 1
networks:
  - {name: app, subnet: 10.7.0.0/24}
steps:
  - spawn: {name: a, kind: vm, count: 2, network: app, placement: spread}
`

// BenchmarkThroughput measures, per generation and backend (kernel: the
// generation's real devices; netns: netbed's userspace datapath), TCP
// throughput between two instances across the fabric with iperf3 (one
// stream, 2 s) and the round trip of 20 of netbed's ICMP probes. Lab start and
// teardown are not timed. Metrics: Mbit/s, the probes' average and
// maximum in µs.
func BenchmarkThroughput(b *testing.B) {
	testutil.RequireRoot(b)
	if _, err := exec.LookPath("iperf3"); err != nil {
		testutil.Unavailable(b, "iperf3 is not installed")
	}
	s, err := scenarios.Parse("throughput.yaml", []byte(throughputScenario))
	if err != nil {
		b.Fatal(err)
	}
	needs := netnsrt.KernelNeeds()
	for _, backend := range []string{"kernel", "netns"} {
		for _, gen := range s.Generations {
			b.Run(backend+"/"+string(gen), func(b *testing.B) {
				if err := needs[string(gen)]; backend == "kernel" && err != nil {
					testutil.Unavailable(b, err.Error())
				}
				var bits, avg, peak float64
				for b.Loop() {
					b.StopTimer()
					rt := netnsrt.New(netnsrt.Options{Scenario: "throughput", StateRoot: b.TempDir(), OutDir: b.TempDir(), CNIPath: []string{pluginDir},
						Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: backend == "kernel", InstancesOnly: true})
					hold := func(ctx context.Context, be scenarios.Backend, live []scenarios.Instance) error {
						if len(live) != 2 {
							return fmt.Errorf("%d instances, want 2", len(live))
						}
						src, ok := rt.InstanceNamespace(live[0].Name)
						dst, ok2 := rt.InstanceNamespace(live[1].Name)
						if !ok || !ok2 {
							return fmt.Errorf("no namespace for %s or %s", live[0].Name, live[1].Name)
						}
						b.StartTimer()
						defer b.StopTimer()
						bps, err := iperf(ctx, src, dst, live[1].IP.String())
						if err != nil {
							return err
						}
						a, m, err := probeRTT(ctx, be, live[0].Name, live[1].Name)
						if err != nil {
							return err
						}
						bits, avg, peak = bits+bps, avg+a, max(peak, m)
						return nil
					}
					run, err := scenarios.Run(context.Background(), s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
						Runtime: rt, StoreDir: b.TempDir()}), scenarios.Options{Hold: hold})
					if err != nil {
						b.Fatal(err)
					}
					if run.Failed() {
						b.Fatalf("the run failed: %+v", run.Checks)
					}
					b.StartTimer()
				}
				n := float64(b.N)
				b.ReportMetric(bits/n/1e6, "Mbit/s")
				b.ReportMetric(avg/n, "µs-rtt-avg")
				b.ReportMetric(peak, "µs-rtt-max")
			})
		}
	}
}

// iperf runs iperf3 from namespace src to a one-off server in dst at
// addr and returns the bits per second received. A client is started only
// once its server says it listens; a failed try starts a new server, and
// the error carries what the last server said.
func iperf(ctx context.Context, src, dst, addr string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for range 3 {
		var bps float64
		if bps, err = iperfOnce(ctx, src, dst, addr); err == nil {
			return bps, nil
		}
	}
	return 0, err
}

// iperfOnce starts a one-off iperf3 server in dst, waits until it
// listens, and runs one client from src against it.
func iperfOnce(ctx context.Context, src, dst, addr string) (float64, error) {
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", dst, "iperf3", "-s", "-1", "-B", addr, "--forceflush")
	var errs bytes.Buffer
	srv.Stderr = &errs
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("iperf3 server in %s: %w", dst, err)
	}
	// stop ends the server and returns all it said (its stderr is
	// written by exec's goroutine until Wait returns).
	var said strings.Builder
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
		return strings.TrimSpace(said.String() + errs.String())
	}
	defer stop()
	lines := bufio.NewScanner(stdout)
	listening := false
	for !listening && lines.Scan() {
		said.WriteString(lines.Text() + "\n")
		listening = strings.HasPrefix(lines.Text(), "Server listening")
	}
	if !listening {
		return 0, fmt.Errorf("iperf3 server in %s on %s never listened: %s", dst, addr, stop())
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", src, "iperf3", "-c", addr, "-t", "2", "-J").Output()
	if err == nil {
		// iperf3 -J may report an error with exit status 0.
		if err = json.Unmarshal(out, &res); err == nil && res.Error != "" {
			err = errors.New(res.Error)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 client in %s to %s: %w: %s (the server, once listening, said: %s)", src, addr, err, out, stop())
	}
	if bps := res.End.SumReceived.BitsPerSecond; bps > 0 {
		return bps, nil
	}
	// Nothing measured is a failure, not a figure of 0.
	return 0, fmt.Errorf("iperf3 client in %s to %s received nothing: %s", src, addr, out)
}

// probeRTT sends 20 of netbed's ICMP probes from src to dst and returns
// their average and maximum round trip in µs.
func probeRTT(ctx context.Context, be scenarios.Backend, src, dst string) (avg, peak float64, err error) {
	const n = 20
	for range n {
		p, err := be.Probe(ctx, scenarios.ProbeRequest{From: src, To: dst, Proto: "icmp", Timeout: time.Second})
		if err != nil {
			return 0, 0, err
		}
		if !p.Replied {
			return 0, 0, fmt.Errorf("probe %s -> %s not answered: %s at %s", src, dst, p.Reason, p.DropAt)
		}
		us := float64(p.RTT) / float64(time.Microsecond)
		avg, peak = avg+us/n, max(peak, us)
	}
	return avg, peak, nil
}
