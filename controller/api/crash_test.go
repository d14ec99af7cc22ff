package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// envServeChild makes the test binary a controller server: what `netbed
// controller serve` runs (durable bbolt store, the API), on a free port
// printed as "ADDR host:port".
const envServeChild = "NETBED_API_SERVE_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(envServeChild); path != "" {
		serveChild(path)
		return
	}
	os.Exit(m.Run())
}

func serveChild(path string) {
	st, err := store.OpenBolt(path, store.BoltOptions{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	svc := controller.New(st, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	_ = http.Serve(ln, NewServer(svc))
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, path string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServeChild+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child server did not start: %q %v", line, err)
	}
	return &child{cmd: cmd, addr: "http://" + addr}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
}

// TestCrashDuringAllocationStorm SIGKILLs a controller process while 32
// clients create ports and allocate batches over HTTP, restarts it on the
// same store, and checks that every acknowledged allocation is there and
// that no address is held twice. Three rounds, each killed mid-storm.
func TestCrashDuringAllocationStorm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx := context.Background()
	type ack struct {
		network string
		addr    netip.Addr
		holder  string // port name or batch holder
	}
	var acked []ack
	for round := range 3 {
		ch := startChild(t, path)
		c := NewClient(ch.addr, nil)
		if round == 0 {
			for i, cidr := range []string{"10.0.0.0/16", "10.1.0.0/16"} {
				name := fmt.Sprintf("storm-%d", i)
				if _, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: name, Labels: []string{"storm"}, Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: uint32(10 + i)}}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.CreateSubnet(ctx, controller.SubnetRequest{Network: name, CIDR: netip.MustParsePrefix(cidr)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		var mu sync.Mutex
		var n atomic.Int64
		killAt := int64(200 + 150*round)
		killed := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					var got []ack
					var err error
					if i%4 == 3 {
						holder := fmt.Sprintf("r%d-batch-%d-%d", round, g, i)
						var as []controller.Allocation
						as, err = c.AllocateBatch(ctx, controller.AllocRequest{Label: "storm", Count: 4, Holder: holder})
						for _, a := range as {
							got = append(got, ack{a.Network, a.Address, holder})
						}
					} else {
						name := fmt.Sprintf("r%d-pod-%d-%d", round, g, i)
						var p controller.Port
						p, err = c.CreatePort(ctx, controller.PortRequest{Name: name, Label: "storm", Host: "h"})
						for _, a := range p.Addrs() {
							got = append(got, ack{p.Network, a, name})
						}
					}
					if err != nil {
						select {
						case <-killed:
							return // the server is gone; unacknowledged work may or may not be there
						default:
						}
						t.Errorf("round %d: %v", round, err)
						return
					}
					mu.Lock()
					acked = append(acked, got...)
					mu.Unlock()
					if n.Add(1) == killAt {
						once.Do(func() {
							close(killed)
							ch.kill(t)
						})
					}
				}
			}()
		}
		wg.Wait()
		if n.Load() < killAt {
			t.Fatalf("round %d: only %d acknowledged requests", round, n.Load())
		}
	}
	// No address was acknowledged to two holders: a crash that lost a
	// committed allocation would hand it out again after the restart.
	first := map[[2]string]string{}
	for _, a := range acked {
		k := [2]string{a.network, a.addr.String()}
		if h, dup := first[k]; dup {
			t.Errorf("%v acknowledged to %s and to %s", a.addr, h, a.holder)
		}
		first[k] = a.holder
	}
	// Restart once more and check through the API, then the store itself.
	ch := startChild(t, path)
	c := NewClient(ch.addr, nil)
	probs, err := c.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error("after crashes:", p)
	}
	ports, err := c.ListPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch.kill(t)
	portID := map[string]string{}
	for _, p := range ports {
		portID[p.Name] = p.ID
	}
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := controller.New(st, nil, nil)
	defer svc.Close()
	subsOf := map[string][]controller.Subnet{}
	lost := 0
	err = st.View(ctx, func(tx store.Tx) error {
		for _, a := range acked {
			subs, ok := subsOf[a.network]
			if !ok {
				subs, _ = svc.ListSubnets(ctx, a.network)
				subsOf[a.network] = subs
			}
			want := a.holder
			if id, isPort := portID[a.holder]; isPort {
				want = "port:" + id
			} else if strings.Contains(a.holder, "-pod-") {
				t.Errorf("acknowledged port %s is gone", a.holder)
				lost++
				continue
			}
			found := false
			for _, sub := range subs {
				if sub.CIDR.Contains(a.addr) {
					found = ipam.Holder(tx, sub.ID, a.addr) == want
				}
			}
			if !found {
				lost++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged allocations lost or held by someone else", lost, len(acked))
	}
	t.Logf("%d acknowledged allocations over 3 crashes, all present", len(acked))
}
