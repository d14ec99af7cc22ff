package election

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/netbed/netbed/internal/etcdtest"
)

// TestOneLeaderHandsOver: of three campaigners one leads at a time; when
// the leader stops (its replica gone), another takes over, and Leader
// names it.
func TestOneLeaderHandsOver(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var mu sync.Mutex
	leading := map[string]bool{}
	most := 0
	started := make(chan string, 10)
	cancels := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[id] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = Run(ctx, cli, "/e/cnc", id, time.Second, func(lctx context.Context) {
				mu.Lock()
				leading[id] = true
				n := 0
				for _, l := range leading {
					if l {
						n++
					}
				}
				most = max(most, n)
				mu.Unlock()
				started <- id
				<-lctx.Done()
				mu.Lock()
				leading[id] = false
				mu.Unlock()
			})
		}()
	}
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
		wg.Wait()
	}()
	first := <-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l, err := Leader(ctx, cli, "/e/cnc"); err != nil || l != first {
		t.Errorf("Leader = %q, %v; want %q", l, err, first)
	}
	cancels[first]()
	var second string
	select {
	case second = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no campaigner took over within 10s")
	}
	if second == first {
		t.Errorf("%s led again after it stopped", first)
	}
	if l, err := Leader(ctx, cli, "/e/cnc"); err != nil || l != second {
		t.Errorf("Leader = %q, %v; want %q", l, err, second)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d campaigners led at once", most)
	}
}
