package ovs

import (
	"testing"
	"time"
)

// bpdu is an Ethernet frame to the bridge group address carrying a BPDU
// of type typ with flags.
func bpdu(typ, flags byte) []byte {
	f := make([]byte, 60)
	copy(f, []byte{0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 39, 0x42, 0x42, 0x03, 0, 0, 2, typ, flags})
	return f
}

func TestBPDUTC(t *testing.T) {
	for _, c := range []struct {
		name   string
		frame  []byte
		tc, ok bool
	}{
		{"RST BPDU", bpdu(0x02, 0x3c), false, true},
		{"RST BPDU with TC", bpdu(0x02, 0x3d), true, true},
		{"config BPDU with TC", bpdu(0x00, 0x01), true, true},
		{"TCN BPDU", bpdu(0x80, 0)[:21], true, true},
		{"not LLC 42 42", append([]byte{}, append(bpdu(0x02, 0x01)[:14], 0xaa, 0xaa, 0x03, 0, 0, 2, 2, 1)...), false, false},
		{"unknown type", bpdu(0x07, 0x01), false, false},
		{"truncated", bpdu(0x02, 0x01)[:20], false, false},
	} {
		tc, ok := bpduTC(c.frame)
		if tc != c.tc || ok != c.ok {
			t.Errorf("%s: tc %v ok %v, want %v %v", c.name, tc, ok, c.tc, c.ok)
		}
	}
}

// checkTopologyChangeOver checks that Build returned after the topology
// change of the spanning tree's first convergence: for two hello times
// after it, no switch receives a BPDU with the TC flag (each would flush
// its MAC table). Call it right after Build.
func (b *bed) checkTopologyChangeOver(t *testing.T) {
	t.Helper()
	var sws []string
	for _, n := range b.topo.Nodes {
		if isSwitch(n.Role) {
			sws = append(sws, n.Name)
		}
	}
	w, err := watchBPDUs(b.lab, sws)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var ports []portKey
	for _, sw := range sws {
		for _, ifc := range b.f.fabricPorts(sw) {
			ports = append(ports, portKey{sw, ifc})
		}
	}
	time.Sleep(2 * RSTPHelloTime)
	if ch := w.changing(time.Now(), time.Hour, ports); len(ch) > 0 {
		t.Errorf("a topology change still running after Build: BPDUs with TC received on %v", ch)
	}
	w.mu.Lock()
	heard := len(w.last)
	w.mu.Unlock()
	if heard == 0 {
		t.Error("no BPDU heard on any switch port in two hello times: the watch sees nothing")
	}
}
