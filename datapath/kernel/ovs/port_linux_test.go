package ovs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
)

// TestAddPort adds ports over the vswitch's OVSDB connection to a real
// ovsdb-server and ovs-vswitchd, and reads them back with ovs-vsctl: the
// port is on the bridge, tagged, its interface holds the external IDs and
// the OpenFlow port number addPort returned; a second port with the same
// name, a bridge the vswitch lacks and a device that does not exist are
// errors naming what was wrong, and leave no port behind; dropPort takes
// the port off, and dropping it again does nothing. Once with a short
// state directory, once with one whose socket path is too long for a
// socket address (reached through /proc/self/fd). ovs-appctl's commands,
// sent on ovs-vswitchd's unixctl socket the same way, answer as
// ovs-appctl prints, and an unknown one is an error naming it.
func TestAddPort(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Available(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	for _, c := range []struct{ name, sub string }{{"short", "v"}, {"long", strings.Repeat("d", 100)}} {
		t.Run(c.name, func(t *testing.T) {
			ns := testPrefix + "-port-" + c.name
			run(t, "ip", "netns", "add", ns)
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
			run(t, "ip", "-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
			base, err := os.MkdirTemp("", testPrefix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			dir := filepath.Join(base, c.sub)
			if long := len(filepath.Join(dir, "db.sock")) > maxSunPath; long != (c.name == "long") {
				t.Fatalf("%s: socket path too long %v, want %v", dir, long, c.name == "long")
			}
			ctx := context.Background()
			v, err := startVswitch(ctx, nsLab{}, ns, dir, "--", "add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev")
			if err != nil {
				t.Fatal(err)
			}
			defer v.stop()
			get := func(args ...string) string {
				t.Helper()
				out, err := v.vsctl(ctx, args...)
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(out)
			}

			// ovs-appctl's commands go over the same kind of connection.
			if out, err := v.appctl(ctx, "dpif/show"); err != nil || !strings.Contains(out, "br-x") {
				t.Errorf("dpif/show: %v\n%s", err, out)
			}
			if _, err := v.appctl(ctx, "no/such-command", "x"); err == nil || !strings.Contains(err.Error(), "no/such-command") {
				t.Errorf("an unknown command: %v, want an error naming it", err)
			}

			ofport, err := v.addPort(ctx, "br-x", "pa", 42, map[string]string{"iface-id": "vm-1", "attached-mac": "02:00:00:00:00:01"})
			if err != nil {
				t.Fatal(err)
			}
			if got := get("list-ports", "br-x"); got != "pa" {
				t.Errorf("ports of br-x: %q, want pa", got)
			}
			if got := get("get", "interface", "pa", "ofport"); got != strconv.Itoa(ofport) || ofport <= 0 {
				t.Errorf("pa's ofport: ovs-vsctl says %s, addPort %d", got, ofport)
			}
			if got := get("get", "port", "pa", "tag"); got != "42" {
				t.Errorf("pa's tag: %s, want 42", got)
			}
			if got := get("get", "interface", "pa", "external_ids:attached-mac"); got != `"02:00:00:00:00:01"` {
				t.Errorf("pa's attached-mac: %s", got)
			}
			if got := get("get", "interface", "pa", "external_ids:iface-id"); got != "vm-1" && got != `"vm-1"` {
				t.Errorf("pa's iface-id: %s", got)
			}

			if _, err := v.addPort(ctx, "br-x", "pa", 42, nil); err == nil || !strings.Contains(err.Error(), "pa") {
				t.Errorf("pa added twice: %v", err)
			}
			_, err = v.addPort(ctx, "br-nope", "pb", 0, nil)
			if !errors.Is(err, ErrNoBridge) || !strings.Contains(err.Error(), `"br-nope"`) {
				t.Errorf("a port on a missing bridge: %v, want ErrNoBridge naming br-nope", err)
			}
			_, err = v.addPort(ctx, "br-x", "nodev", 0, nil)
			if err == nil || !strings.Contains(err.Error(), "nodev") {
				t.Errorf("a missing device: %v, want an error naming it", err)
			}
			if got := get("list-ports", "br-x"); got != "pa" {
				t.Errorf("ports of br-x after the failures: %q, want pa", got)
			}

			if err := v.dropPort(ctx, "br-x", "pa"); err != nil {
				t.Fatal(err)
			}
			if got := get("list-ports", "br-x"); got != "" {
				t.Errorf("ports of br-x after dropPort: %q", got)
			}
			if got := get("--columns=name", "list", "interface"); strings.Contains(got, `"pa"`) || strings.Contains(got, " pa\n") {
				t.Errorf("pa's interface row is left: %s", got)
			}
			if err := v.dropPort(ctx, "br-x", "pa"); err != nil {
				t.Errorf("dropping a port that is not there: %v", err)
			}
		})
	}
}
