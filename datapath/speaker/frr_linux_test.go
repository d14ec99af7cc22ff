package speaker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/testutil"
)

const frrDir = "/usr/lib/frr"

// frrLeaf is FRR's zebra and bgpd running as one leaf, inside its
// namespace, as the frr user, with every path in a directory of its own.
type frrLeaf struct {
	dir string
	ns  string
}

// startFRR makes node an FRR EVPN leaf of the fabric: a loopback VTEP
// address, a Linux bridge with a VXLAN device (nolearning) for vni and a
// host port with one local MAC, and bgpd peering with the spine at spine
// (iBGP, advertise-all-vni).
// The underlay that carries other VTEPs' loopbacks is a static route
// via the spine: FRR takes an EVPN route only when its next hop resolves.
func startFRR(t *testing.T, f *nsFabric, node string, routerID, spine netip.Addr, vni uint32, hostMAC string, vteps ...netip.Addr) *frrLeaf {
	t.Helper()
	if _, err := os.Stat(filepath.Join(frrDir, "bgpd")); err != nil {
		testutil.Unavailable(t, "needs FRR (Debian package frr) for the interop test")
	}
	u, err := user.Lookup("frr")
	if err != nil {
		testutil.Unavailable(t, "needs the frr user (Debian package frr)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "nbfrr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns, err := f.lab.NetnsName(node)
	if err != nil {
		t.Fatal(err)
	}
	l := &frrLeaf{dir: dir, ns: ns}
	for _, c := range [][]string{
		{"ip", "addr", "add", routerID.String() + "/32", "dev", "lo"},
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "br100", "type", "bridge"},
		{"ip", "link", "add", "vxlan100", "type", "vxlan", "id", strconv.Itoa(int(vni)), "local", routerID.String(), "dstport", "4789", "nolearning"},
		{"ip", "link", "set", "vxlan100", "master", "br100"},
		{"ip", "link", "add", "hport", "type", "veth", "peer", "name", "hport-peer"},
		{"ip", "link", "set", "hport", "master", "br100"},
		{"ip", "link", "set", "vxlan100", "up"},
		{"ip", "link", "set", "hport", "up"},
		{"ip", "link", "set", "hport-peer", "up"},
		{"ip", "link", "set", "br100", "up"},
		{"bridge", "fdb", "add", hostMAC, "dev", "hport", "master", "static"},
	} {
		l.ip(t, c...)
	}
	for _, v := range vteps {
		l.ip(t, "ip", "route", "add", v.String()+"/32", "via", spine.String())
	}
	conf := fmt.Sprintf(`frr defaults datacenter
hostname %s
router bgp %d
 bgp router-id %s
 no bgp default ipv4-unicast
 neighbor %s remote-as %d
 neighbor %s timers connect 1
 address-family l2vpn evpn
  neighbor %s activate
  advertise-all-vni
 exit-address-family
`, node, asn, routerID, spine, asn, spine, spine)
	if err := os.WriteFile(filepath.Join(dir, "bgpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zebra.conf"), []byte("hostname "+node+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "bgpd.conf"), filepath.Join(dir, "zebra.conf")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	zserv := filepath.Join(dir, "zserv.api")
	for _, d := range []struct{ name, conf string }{{"zebra", "zebra.conf"}, {"bgpd", "bgpd.conf"}} {
		args := []string{"-u", "frr", "-g", "frr", "-f", filepath.Join(dir, d.conf), "-z", zserv,
			"--vty_socket", dir, "-i", filepath.Join(dir, d.name+".pid"), "--log", "file:" + filepath.Join(dir, d.name+".log")}
		if d.name == "bgpd" {
			args = append(args, "-p", "179")
		}
		cmd := exec.Command(filepath.Join(frrDir, d.name), args...)
		if err := f.lab.Do(node, cmd.Start); err != nil {
			t.Fatalf("start FRR %s on %s: %v", d.name, node, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		if d.name == "zebra" {
			waitFile(t, zserv)
		}
	}
	return l
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

func (l *frrLeaf) ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (l *frrLeaf) vtysh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("vtysh", "--vty_socket", l.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh %q: %v: %s", cmd, err, out)
	}
	return string(out)
}

// eventually polls f until it returns "" (done) or the time is up, then
// fails with f's last answer.
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

// TestFRRInterop: FRR (Debian's zebra and bgpd, an implementation nobody
// here wrote) is leaf2 of a fabric whose spine (the route reflector) and
// leaf1 are netbed's GoBGP speakers. leaf1's type 2 and type 3 routes
// reach FRR through the spine and FRR installs them in its kernel (a
// remote MAC in the VXLAN device's FDB, the flood entry to leaf1's VTEP);
// FRR's own type 3 (from its VNI) and type 2 (a MAC on its bridge) reach
// leaf1, decoded to the VTEP and VNI FRR has.
func TestFRRInterop(t *testing.T) {
	f := startNsFabric(t, speaker.Timers{}, "leaf2")
	leaf1 := f.clients["leaf1"]
	const hostMAC = "02:00:00:00:00:22"
	frrVTEP := netip.MustParseAddr("10.255.0.12")
	frr := startFRR(t, f, "leaf2", frrVTEP, f.spineAddr["leaf2"], type3.VNI, hostMAC, type3.VTEP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.clients["spine1"].WaitEstablished(ctx); err != nil {
		t.Fatalf("FRR's session to the spine: %v\n%s", err, frr.vtysh(t, "show bgp summary"))
	}
	if err := leaf1.Advertise(ctx, type2, type3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "leaf1's routes in FRR's kernel", func() string {
		fdb := frr.ip(t, "bridge", "fdb", "show", "dev", "vxlan100")
		for _, want := range []string{
			"02:00:00:00:00:01 dst " + type2.VTEP.String(),
			"00:00:00:00:00:00 dst " + type3.VTEP.String(),
		} {
			if !strings.Contains(fdb, want) {
				return fmt.Sprintf("no %q in\n%s\n%s", want, fdb, frr.vtysh(t, "show bgp l2vpn evpn route"))
			}
		}
		// The type 2 route's IP: a neighbour entry on the VNI's SVI.
		neigh := frr.ip(t, "ip", "neigh", "show", "dev", "br100")
		if want := type2.IP.String() + " lladdr 02:00:00:00:00:01"; !strings.Contains(neigh, want) {
			return fmt.Sprintf("no %q in\n%s", want, neigh)
		}
		return ""
	})
	fromFRR := []evpn.Route{
		{Type: evpn.InclusiveMulticast, VNI: type3.VNI, VTEP: frrVTEP},
		{Type: evpn.MACIP, VNI: type3.VNI, MAC: evpn.MAC{2, 0, 0, 0, 0, 0x22}, VTEP: frrVTEP},
	}
	eventually(t, "FRR's routes at leaf1", func() string {
		rs, err := leaf1.Routes(ctx)
		if err != nil {
			return err.Error()
		}
		for _, want := range fromFRR {
			found := false
			for _, r := range rs {
				if r.Type == want.Type && r.VNI == want.VNI && r.MAC == want.MAC && r.VTEP == want.VTEP {
					found = true
				}
			}
			if !found {
				return fmt.Sprintf("no %s among %v", want, rs)
			}
		}
		return ""
	})
	// A withdrawal reaches FRR's kernel too.
	if err := leaf1.Withdraw(ctx, type2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "leaf1's withdrawn MAC leaves FRR's kernel", func() string {
		if fdb := frr.ip(t, "bridge", "fdb", "show", "dev", "vxlan100"); strings.Contains(fdb, "02:00:00:00:00:01") {
			return "still in the FDB:\n" + fdb
		}
		return ""
	})
	var summary map[string]any
	_ = json.Unmarshal([]byte(frr.vtysh(t, "show bgp l2vpn evpn summary json")), &summary)
	t.Logf("FRR's EVPN summary: %v", summary["totalPeers"])
}
