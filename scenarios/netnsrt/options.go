package netnsrt

import (
	"time"

	"github.com/netbed/netbed/datapath/speaker"
)

// LabPrefix starts the name of every lab this runtime deploys
// ("nb-<scenario>-<generation>-<hex>"), so that `netbed down --all` (or
// netns.DestroyAll with a Match on it) finds what a killed run left.
const LabPrefix = "nb-"

// Options configure a Runtime. The zero value works: captures go to a
// temporary directory removed at Close.
type Options struct {
	// Scenario names the run in the lab name.
	Scenario string
	// OutDir, if set, keeps the pcapng captures under OutDir/pcap/<lab>/,
	// one file per namespace.
	OutDir string
	// StateRoot overrides netns.StateRoot (tests).
	StateRoot string
	// InstancesOnly captures only the instances' namespaces (their eth0,
	// which the results need), not the fabric's.
	InstancesOnly bool
	// CNIPath lists the directories AttachPod looks for the netbed-cni
	// plugin in, as CNI_PATH does; default the running executable's
	// directory (bin/, where `make build` puts both), then $CNI_PATH,
	// then /opt/cni/bin.
	CNIPath []string
	// Netbed is the netbed executable that serves the controller as its
	// own process (`netbed controller serve`) and, with control_plane:
	// bgp, runs every switch's speaker (`netbed speaker`); default:
	// FindNetbed.
	Netbed string
	// BGPTimers are the speakers' session timers with control_plane:
	// bgp (zero: speaker's defaults, a 9 s hold time).
	BGPTimers speaker.Timers
	// BGPDesign is gen 2's session design with control_plane: bgp:
	// scenarios.DesignIBGP ("", the default) or scenarios.DesignEBGP.
	BGPDesign string
	// FRRLeaves are gen 2 leaves realised as FRR (zebra and bgpd on the
	// kernel's bridge and VXLAN devices) instead of netbed's leaf, with
	// control_plane: bgp (frr_leaves; set by ConfigureBGP).
	FRRLeaves []string
	// BFD runs BFD beside every leaf–spine session (bgp: {bfd: true}):
	// the speakers' own (package bfd), FRR's bfdd on FRR leaves.
	BFD bool
	// Settle bounds how long Probe waits, after the answer or the
	// timeout, for the captures to deliver the probe's last frames
	// (default 3s; it returns as soon as they are all there).
	Settle time.Duration
	// Kernel runs the fabric on the kernel's own devices (the backend
	// called kernel: Open vSwitch, the Linux bridge and VXLAN, tc BPF,
	// each generation's datapath/kernel fabric) instead of netbed's
	// userspace datapath; paths come from the captures of every
	// namespace.
	Kernel bool
}
