package scenarios

import (
	"context"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/topologies"
)

// Runtime runs a generation's fabric: the simulator in virtual time, or the
// userspace datapath on real namespaces in real time. FabricBackend does
// everything else (controller, IPAM, spawn flow) the same way on top of
// either, which is what makes sim and netns comparable.
//
// Contract: Load is called once, first; Close once, last, and removes every
// namespace, link and goroutine the runtime created. Mutate runs f while no
// node is processing a frame (the fabric's node models are not safe for
// concurrent use), and every change to the fabric (AddInstance,
// RemoveInstance, policies, CNC driver calls) goes through it.
type Runtime interface {
	Name() string
	Load(ctx context.Context, f datapath.Fabric, t *topologies.Topology) error
	// AddInstance attaches an instance: f.AddInstance plus whatever makes it
	// real (a simulated node; a namespace with the kernel's stack).
	AddInstance(ctx context.Context, f datapath.Fabric, s datapath.InstanceSpec) error
	RemoveInstance(ctx context.Context, f datapath.Fabric, name string) error
	// Announce has an attached instance say where it is now, as a real
	// one does on attach: its stack's gratuitous ARP and unsolicited
	// neighbour advertisement at once and, for a VM that was migrated,
	// the hypervisor's RARP announce at each offset of
	// MigrationAnnounce (in the background; a round after the instance
	// has gone sends nothing).
	Announce(ctx context.Context, name string, migrated bool) error
	SetNodeState(ctx context.Context, node string, up bool) error
	// SetLinkState fails or restores the topology link with endpoint e.
	SetLinkState(ctx context.Context, e topologies.Endpoint, up bool) error
	// Probe sends one probe from instance from to the instance to at dst and
	// waits for its answer or timeout. Delivered means it reached to itself.
	Probe(ctx context.Context, p RuntimeProbe) (reports.Probe, error)
	Mutate(f func() error) error
	// Pause stops the nodes until resume is called (Mutate is Pause, f,
	// resume). Pauses may nest, from any goroutine.
	Pause() (resume func())
	Sleep(ctx context.Context, d time.Duration) error
	Now() time.Duration
	// Stats reports drops by reason and the number of frames whose fate is
	// unexplained (a conservation failure).
	Stats() (drops map[string]int, unexplained int)
	Close() error
}

// LatencySource is a Runtime that says what its latencies are (modelled
// or measured, and how); FabricBackend records it in the run.
type LatencySource interface {
	Latency() reports.Latency
}

// MigrationAnnounce is when a hypervisor sends its RARP announce after a
// live migration, from the moment the VM runs on its new host: QEMU's
// announce_self with its defaults (5 rounds, the first at once, then
// 50 ms apart growing by 100 ms: announce-initial, -step, -max 550 ms).
var MigrationAnnounce = []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, 450 * time.Millisecond, 800 * time.Millisecond}

// RuntimeProbe is one probe as a runtime sends it.
type RuntimeProbe struct {
	From, To string
	Dst      netip.Addr
	Proto    string // icmp, udp, tcp
	Port     uint16
	Timeout  time.Duration
	// Background marks a background stream's probe. Its ID comes from a
	// range of its own (from StreamProbeIDs), so that the foreground
	// probes' IDs, and the ECMP paths their source ports hash to, do not
	// depend on how many stream rounds a run had time for: on netns that
	// is the wall clock's doing.
	Background bool
	// Translated, when valid, is the address a one-to-one NAT on the path
	// rewrites Dst to (a floating IP's private address): a runtime that
	// follows probes by their flow follows the translated one too, so
	// that a probe's answers without its ID in them (a SYN-ACK, a RST)
	// and its frames past the NAT stay the probe's.
	Translated netip.Addr
}

// StreamProbeIDs is the first ID of background stream probes. Foreground
// probes count up from 1 and never reach it; every ID below 2^32 survives
// an ICMP echo's identifier and sequence fields.
const StreamProbeIDs = 1 << 31

// TempDirRecorder is a Runtime whose labs can outlive a killed process
// (netns): the backend records the temporary directories it makes for the
// lab with it, so that `netbed down` removes them with the lab.
type TempDirRecorder interface {
	RecordTempDir(dir string) error
}

// PodAttacher is a Runtime that attaches pods as a kubelet does: through
// a CNI plugin, which takes the pod's address itself (from the
// controller's global IPAM, or from the node's local IPAM) and wires the
// pod's veth.
type PodAttacher interface {
	Runtime
	// AttachPod runs CNI ADD for the pod s (Name and Host set; its
	// controller port is named s.Name) with the plugin configuration conf
	// (JSON, as in /etc/cni/net.d), and returns s with the address,
	// gateway and MAC the plugin gave. The pod is wired but not yet in
	// the fabric: AddInstance with the completed spec adds it and plugs
	// its veth into the host's datapath. RemoveInstance runs the plugin's
	// DEL, before or after AddInstance.
	AttachPod(ctx context.Context, s datapath.InstanceSpec, conf []byte) (datapath.InstanceSpec, error)
}

// Settler is a Runtime (or Backend) whose control plane converges in its
// own time, as real BGP speakers do: Settle returns once every node holds
// what the others advertise, or an error naming what is still missing.
// The runner settles the fabric before each foreground traffic step, so
// that a probe measures the converged fabric as on the shared control
// plane; convergence itself is measured by the faults (Fault.Convergence).
type Settler interface {
	Settle(ctx context.Context) error
}

// BGPConfigurer is a Runtime whose BGP speakers take the scenario's
// session settings (bgp:); FabricBackend hands them over before Load.
type BGPConfigurer interface {
	ConfigureBGP(BGPSettings)
}

// SilentFailer is a Runtime that can fail a node silently (FailSilent):
// its links keep their carrier while it drops everything, so that its
// neighbours learn of it only from what stops arriving (BGP's hold
// timer). SetNodeState(node, true) restores it.
type SilentFailer interface {
	FailSilently(ctx context.Context, node string) error
}

// ProbeRecord is the runner's record of probe p whose outcome a runtime
// derived (outcome.Derive), the same on every runtime.
func ProbeRecord(o outcome.Outcome, p RuntimeProbe) reports.Probe {
	out := reports.Probe{From: p.From, To: p.To, Proto: p.Proto,
		Delivered: o.Delivered && o.To == p.To, Replied: o.Replied && o.To == p.To,
		Hops: o.Forward.Hops(), SwitchHops: o.Forward.SwitchHops(), Path: o.Forward.Devices(), HopAt: o.Forward.Offsets(),
		OneWay: o.OneWay, RTT: o.RTT, Reason: string(o.Reason), Rule: o.Rule}
	if o.DropNode != "" {
		out.DropAt = o.DropNode
		if o.DropDevice != "" && o.DropDevice != o.DropNode {
			out.DropAt += "/" + o.DropDevice
		}
	}
	if o.Delivered && o.To != p.To {
		// Answered by someone else: another tenant's instance with the
		// same address would be a leak, so it is reported as such.
		out.DropAt, out.Reason = o.To, "delivered-to-other-instance"
	}
	return out
}
