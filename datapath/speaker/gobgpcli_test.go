package speaker_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
)

// TestStockGobgpCLI: GoBGP's own CLI (a tool of this module: go tool
// gobgp) reads a netbed speaker through its gRPC socket, as an operator
// inspects a held lab: the spine's neighbours are established and a
// leaf's type 2 route is in its EVPN table.
func TestStockGobgpCLI(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testutil.Unavailable(t, "needs the go command to run go tool gobgp")
	}
	f := startFabric(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.clients[1].Advertise(ctx, type2); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, f.clients[0], []evpn.Route{type2})
	sock := f.sockets[0]
	gobgp := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, goCmd, append([]string{"tool", "gobgp", "--target", "unix://" + sock}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gobgp %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nb := gobgp("neighbor")
	for _, peer := range []string{"127.0.0.2", "127.0.0.3"} {
		line := ""
		for _, l := range strings.Split(nb, "\n") {
			if strings.Contains(l, peer) {
				line = l
			}
		}
		if !strings.Contains(line, "Establ") {
			t.Errorf("gobgp neighbor: %s is not established:\n%s", peer, nb)
		}
	}
	rib := gobgp("global", "rib", "-a", "evpn")
	for _, want := range []string{"[type:macadv]", "[mac:02:00:00:00:00:01]", "[ip:10.0.1.10]", "10.255.0.11"} {
		if !strings.Contains(rib, want) {
			t.Errorf("gobgp global rib -a evpn lacks %q:\n%s", want, rib)
		}
	}
}
