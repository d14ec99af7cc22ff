package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/election"
)

// cncLeaderTTL is how long a dead leader's lease holds the CNC's
// leadership in a run (the replicas' --leader-ttl).
const cncLeaderTTL = time.Second

// cncFollower makes a run's CNC follow the CNC's election among the
// replicas. The CNC stays in the run's process, beside the leaves it
// programs; the replicas campaign (--cnc-election) and the CNC reports
// only through the leader's own socket. When the leader dies its lease
// ends after cncLeaderTTL, another replica wins, and the follower points
// the CNC at it and resyncs every port through it, which finishes the
// ports the old leader left in BUILD: the handover. Its time, from the
// old leader's SIGKILL until the CNC has caught up through the new one,
// goes on the kill's fault (reports.Fault.CNCHandover).
type cncFollower struct {
	b    *FabricBackend
	cli  *clientv3.Client
	key  string
	stop context.CancelFunc
	done chan struct{}

	mu         sync.Mutex
	leader     string                // the replica the CNC reports through
	killed     map[string]leaderKill // replicas killed while they led
	lastKilled string                // the replica last killed as the leader
}

type leaderKill struct {
	at    time.Time
	fault int // index in the backend's faults
}

// followLeader waits for the replicas' first leader, points the CNC at it
// and follows the election until the replicas close.
func (b *FabricBackend) followLeader() error {
	rs := b.ctl.rs
	_, clientTLS, _, err := b.etcdSecurity()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: rs.etcd.Endpoints(), TLS: clientTLS, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("follow the CNC's election: %w", err)
	}
	f := &cncFollower{b: b, cli: cli, key: "/netbed/cnc", done: make(chan struct{}), killed: map[string]leaderKill{}}
	var leader string
	for deadline := time.Now().Add(15 * time.Second); leader == ""; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		leader, err = election.Leader(ctx, cli, f.key)
		cancel()
		if leader == "" && time.Now().After(deadline) {
			cli.Close()
			return fmt.Errorf("no replica won the CNC's election within 15s (%v)", err)
		}
		if leader == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	api, err := b.replicaCNCClient(leader)
	if err != nil {
		cli.Close()
		return err
	}
	b.cnc.SetService(api)
	f.leader = leader
	b.progress("controller: the CNC reports through %s, the CNC's leader", leader)
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	rs.lead = f
	go f.run(ctx)
	return nil
}

// replicaCNCClient is the CNC's client of one replica's own socket (in a
// secure run, on the cnc certificate).
func (b *FabricBackend) replicaCNCClient(name string) (controller.API, error) {
	rs := b.ctl.rs
	for _, p := range rs.procs {
		if p.name != name {
			continue
		}
		if b.ctl.sec != nil {
			return b.secureClientOn(p.sock, b.ctl.sec.lab.Clients["cnc"], "")
		}
		return unixClient(p.sock), nil
	}
	return nil, fmt.Errorf("the CNC's leader %q is none of the run's replicas", name)
}

// run polls the election and hands the CNC over when the leader changes.
func (f *cncFollower) run(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		leader, err := election.Leader(rctx, f.cli, f.key)
		cancel()
		f.mu.Lock()
		cur := f.leader
		f.mu.Unlock()
		if err != nil || leader == "" || leader == cur {
			continue
		}
		if err := f.handover(ctx, cur, leader); err != nil && ctx.Err() == nil {
			f.b.progress("controller: CNC handover from %s to %s: %v (trying again)", cur, leader, err)
		}
	}
}

// handover points the CNC at the new leader and resyncs every port
// through it.
func (f *cncFollower) handover(ctx context.Context, from, to string) error {
	b := f.b
	api, err := b.replicaCNCClient(to)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ports, err := api.ListPorts(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("list ports through %s: %w", to, err)
	}
	b.cnc.SetService(api)
	b.cnc.Resync(ports)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = b.cnc.Wait(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("resync through %s: %w", to, err)
	}
	f.mu.Lock()
	f.leader = to
	k, wasKilled := f.killed[from]
	delete(f.killed, from)
	f.mu.Unlock()
	if !wasKilled {
		b.progress("controller: the CNC's leadership moved from %s to %s", from, to)
		return nil
	}
	took := time.Since(k.at)
	b.ctl.mu.Lock()
	if k.fault < len(b.faults) {
		b.faults[k.fault].CNCHandover = took
		b.faults[k.fault].Detail += fmt.Sprintf("; it led the CNC: %s leads now", to)
	}
	b.ctl.mu.Unlock()
	b.progress("controller: CNC handover from %s to %s in %v (its lease: %v)", from, to, took.Round(time.Millisecond), cncLeaderTTL)
	return nil
}

// current is the replica the CNC reports through.
func (f *cncFollower) current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// killing notes that replica name is being killed; when it leads the CNC,
// the handover that follows is timed from now.
func (f *cncFollower) killing(name string) (leader bool, done func(fault int)) {
	at := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader != name {
		return false, func(int) {}
	}
	f.lastKilled = name
	return true, func(fault int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.killed[name] = leaderKill{at: at, fault: fault}
	}
}

// close stops following.
func (f *cncFollower) close() error {
	f.stop()
	<-f.done
	err := f.cli.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
