package ktrace

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestKernelLayout reads the running kernel's BTF as New does: every
// field and argument the programs use is found, and the drop reasons the
// tests assert are named as the kernel names them.
func TestKernelLayout(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	l, err := loadLayout(spec)
	if err != nil {
		t.Fatal(err)
	}
	if l.skbHead == l.skbData || l.skbNetworkHeader == 0 || l.devIfindex == 0 || l.netInum == 0 {
		t.Errorf("implausible layout %+v", l)
	}
	// net_dev_start_xmit(skb, dev); kfree_skb(skb, location, reason, rx_sk).
	if l.xmitDevArg != 1 || l.kfreeLocationArg != 1 || l.kfreeReasonArg != 2 {
		t.Errorf("tracepoint arguments %+v", l)
	}
	d, err := loadDropReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, n := range d {
		found[n] = true
	}
	for _, n := range []string{"NOT_DROPPED_YET", "CONSUMED", "NOT_SPECIFIED", "NETFILTER_DROP", "NEIGH_FAILED", "NO_SOCKET"} {
		if !found[n] {
			t.Errorf("no drop reason %s", n)
		}
	}
	if d.name(consumed) != "CONSUMED" {
		t.Errorf("reason %d is %s, want CONSUMED (the programs skip up to it)", consumed, d.name(consumed))
	}
}

func TestDropReasonName(t *testing.T) {
	d := dropReasons{2: "NOT_SPECIFIED", 12: "NETFILTER_DROP"}
	for v, want := range map[uint32]string{
		12:                      "NETFILTER_DROP",
		2:                       "NOT_SPECIFIED",
		99:                      "REASON_99",
		3<<dropSubsysShift | 12: "SUBSYS_3_12",
	} {
		if got := d.name(v); got != want {
			t.Errorf("name(%#x) = %q, want %q", v, got, want)
		}
	}
}
