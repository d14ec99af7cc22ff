package ovs

import (
	"reflect"
	"testing"
)

// Outputs of Open vSwitch 3.1 (Debian 12) on a netbed host.
const dpifShow = `netdev@ovs-netdev: hit:0 missed:0
  br-bond:
    br-bond 65534/1: (tap)
    eth1 3/3: (system)
    eth2 2/2: (system)
    phy-br-bond 1/none: (patch: peer=int-br-bond)
  br-int:
    br-int 65534/4: (tap)
    int-br-bond 1/none: (patch: peer=phy-br-bond)
    tap-vm1 2/5: (system)
`

const traceFlood = `Flow: ip,in_port=2,vlan_tci=0x0000,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.2,nw_dst=10.0.0.3,nw_proto=0,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no

bridge("br-int")
----------------
 0. priority 0
    NORMAL
     -> no learned MAC for destination, flooding

bridge("br-bond")
-----------------
 0. priority 0
    NORMAL
     -> no learned MAC for destination, flooding

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=2,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_frag=no
Datapath actions: push_vlan(vid=100,pcp=0),1,2,4
`

const bondShow = `---- bond0 ----
bond_mode: active-backup
bond may use recirculation: no, Recirc-ID : -1
active-backup primary: <none>
active member mac: ce:96:20:6f:e3:64(eth2)

member eth1: enabled
  may_enable: true

member eth2: enabled
  active member
  may_enable: true
`

func TestParseDPIFShow(t *testing.T) {
	got, err := ParseDPIFShow(dpifShow)
	if err != nil {
		t.Fatal(err)
	}
	want := []DPPort{
		{"br-bond", "br-bond", "65534", 1, "tap", ""},
		{"br-bond", "eth1", "3", 3, "system", ""},
		{"br-bond", "eth2", "2", 2, "system", ""},
		{"br-bond", "phy-br-bond", "1", -1, "patch", "int-br-bond"},
		{"br-int", "br-int", "65534", 4, "tap", ""},
		{"br-int", "int-br-bond", "1", -1, "patch", "phy-br-bond"},
		{"br-int", "tap-vm1", "2", 5, "system", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseDPIFShow("netdev@ovs-netdev:\n  br0:\n    garbage\n"); err == nil {
		t.Error("a malformed port line parsed")
	}
}

func TestParseTrace(t *testing.T) {
	got, err := ParseTrace(traceFlood)
	if err != nil {
		t.Fatal(err)
	}
	want := Trace{Bridges: []string{"br-int", "br-bond"}, Outputs: []int{1, 2, 4}, Actions: "push_vlan(vid=100,pcp=0),1,2,4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	d, err := ParseTrace("bridge(\"br-bond\")\n-----\nDatapath actions: drop\n")
	if err != nil || !d.Dropped || len(d.Outputs) != 0 {
		t.Errorf("drop: %+v %v", d, err)
	}
	if _, err := ParseTrace("bridge(\"br-int\")\n"); err == nil {
		t.Error("a trace without datapath actions parsed")
	}
}

func TestActiveMember(t *testing.T) {
	if got := activeMember(bondShow); got != "eth2" {
		t.Errorf("active member %q, want eth2", got)
	}
	if got := activeMember("member eth1: disabled\n  may_enable: false\n"); got != "" {
		t.Errorf("no active member: got %q", got)
	}
}

func TestDevName(t *testing.T) {
	if got := DevName(PrefixQbr, "vm1"); got != "qbr-vm1" {
		t.Errorf("short: %q", got)
	}
	long := DevName(PrefixQbr, "instance-with-a-long-name")
	if len(long) > 15 || long[:4] != PrefixQbr || long == DevName(PrefixQbr, "instance-with-a-long-nam2") {
		t.Errorf("long: %q", long)
	}
}
