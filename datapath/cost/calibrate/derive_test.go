package calibrate

import (
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/cost"
)

// TestDerive feeds derive round trips built from known per-direction
// costs and gets those costs back: every figure is the difference of the
// right paths, halved into one direction.
func TestDerive(t *testing.T) {
	const (
		inst, veth, bpf, br, chain, rule, vx, ovs, patch, bond = 700, 150, 40, 350, 80, 3, 600, 50000, 400, 1000
	)
	rtt := func(oneWay int) time.Duration { return time.Duration(2 * oneWay) }
	direct := 2*inst + 2*veth
	redirect := direct + 2*veth + bpf
	routed := redirect + 500
	m := medians{
		"direct": rtt(direct), "redirect": rtt(redirect),
		"bpf8": rtt(redirect + 8*bpf), "bpf16": rtt(redirect + 16*bpf), "bpf32": rtt(redirect + 32*bpf),
		"bridge":     rtt(redirect - bpf + br),
		"routed":     rtt(routed),
		"ipt0":       rtt(routed + chain),
		"ipt250":     rtt(routed + chain + 250*rule),
		"ipt500":     rtt(routed + chain + 500*rule),
		"ipt1000":    rtt(routed + chain + 1000*rule),
		"vxlan-base": rtt(direct + 1000), "vxlan": rtt(direct + 1000 + 2*vx),
		"ovs": rtt(redirect - bpf + ovs), "ovs-patch": rtt(redirect - bpf + ovs + 2*patch),
		"ovs-bond": rtt(redirect - bpf + ovs + bond + br),
	}
	tab, err := derive(m, 1000, cost.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := map[cost.Class]time.Duration{cost.Instance: inst, cost.Veth: veth, cost.Tap: veth, cost.NIC: veth,
		cost.BPF: bpf, cost.LinuxBridge: br, cost.IptablesChain: chain, cost.IptablesRule: rule,
		cost.VXLANEncap: vx, cost.VXLANDecap: vx, cost.OVSBridge: ovs, cost.OVSPatch: patch, cost.Bond: bond,
		cost.Switch: time.Microsecond}
	for c, w := range want {
		if got := tab.Figures[c].Cost; got < w-1 || got > w+1 {
			t.Errorf("%s = %v, want %v", c, got, time.Duration(w))
		}
	}
	// A negative difference is noise: recorded as 0, and said so.
	m["ovs-patch"] = m["ovs"] - 1000
	tab, err = derive(m, 1000, cost.Default())
	if err != nil {
		t.Fatal(err)
	}
	if f := tab.Figures[cost.OVSPatch]; f.Cost != 0 || !strings.Contains(f.Method, "below the noise") {
		t.Errorf("negative patch cost recorded as %+v", f)
	}
	delete(m, "ovs")
	delete(m, "ovs-patch")
	delete(m, "ovs-bond")
	tab, err = derive(m, 1000, cost.Default())
	if err != nil {
		t.Fatal(err)
	}
	if tab.Figures[cost.OVSBridge] != cost.Default().Figures[cost.OVSBridge] {
		t.Errorf("without OVS paths the OVS figures must come from the previous table")
	}
	delete(m, "bridge")
	if _, err := derive(m, 1000, cost.Default()); err == nil || !strings.Contains(err.Error(), `"bridge"`) {
		t.Errorf("derive without the bridge path: %v", err)
	}
}
