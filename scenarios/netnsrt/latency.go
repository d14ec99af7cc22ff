package netnsrt

import (
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

var _ scenarios.LatencySource = (*Runtime)(nil)

// Latency implements scenarios.LatencySource: netns latencies are measured
// on real packets. Round trips and the instances' eth0 times come from the
// captures on the instances' interfaces; a node's devices are timed when
// the kernel received the frame on the node's port (its receive ring's
// timestamp, what a capture there shows). The devices inside a node
// (bridges, patch ports, BPF programs) are the node's userspace model and
// have no interface to capture on: they share that time, and the time the
// node took shows in the next device's.
func (r *Runtime) Latency() reports.Latency {
	if r.opts.Kernel {
		return reports.Latency{Kind: reports.LatencyMeasured,
			Method: "real packets through the kernel's own devices on namespaces; every device's time from the captures (kernel timestamps)"}
	}
	return reports.Latency{Kind: reports.LatencyMeasured,
		Method: "real packets on namespaces; instances' eth0 and round trips from captures (kernel timestamps), " +
			"each node's devices from the kernel's receive timestamp at the node's port"}
}
