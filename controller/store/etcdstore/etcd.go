package etcdstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netbed/netbed/controller/store"
)

// Options configure an Etcd store. Endpoints is required.
type Options struct {
	// Endpoints are the etcd members' client addresses, host:port.
	Endpoints []string
	// Prefix is put before every key the store writes, so that several
	// controllers (or other programs) can share one etcd. Default
	// "/netbed/".
	Prefix string
	// DialTimeout bounds reaching etcd at Open. Default 5s.
	DialTimeout time.Duration
	// CommitTimeout bounds one commit or one read of the current revision.
	// Default 5s.
	CommitTimeout time.Duration
	// MaxTxnOps is the etcd cluster's --max-txn-ops (etcd's default 128):
	// a commit holds at most this many writes and this many comparisons,
	// so the store puts fewer Updates in a commit, and fails an Update
	// that alone needs more.
	MaxTxnOps int
	// MaxBatch caps the Updates committed together. Default 256.
	MaxBatch int
	// Committers is how many batches the replica commits at once
	// (default 1). Each committer is a writer of its own (store.Sharded:
	// its own part of a pool's count, cursor and MAC sequence, and its own
	// commit marker), so that their commits do not conflict; while one
	// waits for etcd the next takes the Updates that arrived meanwhile.
	// More than one helps when etcd's round trip, not CPU, bounds the
	// rate (members on machines of their own); on a machine whose CPUs
	// the members share, the smaller batches cost more than they gain
	// (docs/benchmarks.md).
	Committers int
	// Name names this replica in its commit marker (default host-pid-random).
	Name string
	// TLS, when set, is the client TLS the store speaks to etcd with (its
	// CA, and the client certificate etcd's --client-cert-auth asks
	// for): TLS builds it from files.
	TLS *tls.Config
}

// TLS returns the client TLS for an etcd whose server certificate ca
// signed, presenting the client certificate cert with key (both empty:
// none). Each file's problem is named.
func TLS(ca, cert, key string) (*tls.Config, error) {
	if ca == "" {
		return nil, errors.New("etcd TLS: the CA file (--etcd-ca) is required")
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("etcd TLS: give the client certificate (--etcd-cert) and its key (--etcd-key) together")
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("etcd TLS: CA %s holds no PEM certificate", ca)
	}
	c := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: client certificate %s with key %s: %w", cert, key, err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// Etcd is a Store on etcd v3, for several controller replicas sharing one
// state. Each replica keeps a copy of the data in memory, current through a
// watch; transactions read that copy and commit as one etcd transaction
// that compares the revision of every key read (and of every range
// scanned) with etcd's: a commit after which any of them changed fails as a
// whole and its Updates run again on the newer data. So two replicas never
// both take one address or one name. Concurrent Updates of one replica are
// group-committed, as in Bolt.
//
// A View first reads etcd's current revision (a linearizable read) and
// waits for the copy to reach it, so it sees every commit that finished
// before it started, on any replica.
//
// An Update whose commit's outcome is unknown (etcd unreachable while it
// ran) reads back the replica's commit marker, written in every commit, to
// learn whether it committed; when that read fails too it returns an error
// saying the outcome is unknown. Either way a commit is all or nothing.
//
// A deletion inside a range an Update scanned does not make its commit
// fail (etcd compares the revisions of keys present); every Update of the
// controller that depends on such a key also reads a key the deleter
// changes (a pool's counter, a record).
type Store struct {
	cli      *clientv3.Client
	o        Options
	data     string // Prefix + "d/"
	m        *mirror
	ctx      context.Context // the watch's; ends at Close
	cancel   context.CancelFunc
	watchEnd chan struct{}

	mu     sync.RWMutex // shared while enqueueing, exclusive in Close
	closed atomic.Bool
	reqs   chan *ecall
	done   sync.WaitGroup // the committers

	subMu sync.Mutex
	subs  map[string][]*sub

	statMu            sync.Mutex
	commits, retries  uint64
	updates, ambig    uint64
	lastBatch, maxBat int
}

type sub struct{ fn func(key, old, new []byte) }

type ecall struct {
	ctx  context.Context
	fn   func(store.Tx) error
	err  chan error
	ferr error // fn's own error in the current attempt
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)
	_ store.Sharded = (*etcdTx)(nil)
)

// ParseURL returns the endpoints of an etcd://host:port[,host:port…]
// store address; ok is false when s is not one (a bbolt file path).
func ParseURL(s string) (endpoints []string, ok bool, err error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return nil, false, nil
	}
	for _, ep := range strings.Split(rest, ",") {
		ep = strings.TrimSuffix(strings.TrimSpace(ep), "/")
		if ep == "" || strings.ContainsAny(ep, "/ ") || !strings.Contains(ep, ":") {
			return nil, true, fmt.Errorf("store %q: endpoint %q: want host:port", s, ep)
		}
		endpoints = append(endpoints, ep)
	}
	return endpoints, true, nil
}

// Open connects to etcd and loads the store's keys. It fails with
// store.ErrUnreachable when no member answers within DialTimeout.
func Open(o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("open etcd store: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = "/netbed/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 5 * time.Second
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = 128
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Committers <= 0 {
		o.Committers = 1
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		o.Name = fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b[:]))
	}
	where := strings.Join(o.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		TLS:                  o.TLS,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
		// Reconnect within a second of etcd coming back, not after gRPC's
		// default backoff of up to two minutes.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("open etcd store at %s: %w", where, err)
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	e := &Store{cli: cli, o: o, data: o.Prefix + "d/", m: newMirror(),
		ctx: ctx, cancel: cancel, watchEnd: make(chan struct{}),
		reqs: make(chan *ecall, 4*o.MaxBatch), subs: map[string][]*sub{}}
	rev, err := e.load()
	if err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("open etcd store at %s (prefix %s): %w", where, o.Prefix, err)
	}
	go e.watch(rev)
	for i := range o.Committers {
		c := &committer{e: e, shard: o.Name}
		if i > 0 {
			c.shard = fmt.Sprintf("%s#%d", o.Name, i)
		}
		c.marker = o.Prefix + "txn/" + c.shard
		e.done.Add(1)
		go c.loop()
	}
	return e, nil
}

// Client returns the store's etcd client (for elections).
func (e *Store) Client() *clientv3.Client { return e.cli }

// Prefix returns the key prefix the store writes under.
func (e *Store) Prefix() string { return e.o.Prefix }

// Name returns this replica's name.
func (e *Store) Name() string { return e.o.Name }

// Endpoints returns the etcd endpoints.
func (e *Store) Endpoints() []string { return slices.Clone(e.o.Endpoints) }

func (e *Store) errf(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrGRPCNoLeader) ||
		status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("%s: %w at %s (%v)", op, store.ErrUnreachable, strings.Join(e.o.Endpoints, ","), err)
	}
	return fmt.Errorf("%s at %s: %w", op, strings.Join(e.o.Endpoints, ","), err)
}

// load reads every key under the prefix into the mirror, in pages of one
// revision, and returns that revision.
func (e *Store) load() (int64, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.o.DialTimeout)
	defer cancel()
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	var rev int64
	from, end := e.data, prefixEnd(e.data)
	first := true
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(10000)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := e.cli.Get(ctx, from, opts...)
		if err != nil {
			return 0, e.errf("load", err)
		}
		if first {
			rev = resp.Header.Revision
			e.m.reset(rev)
			first = false
		}
		for _, kv := range resp.Kvs {
			if b, k, ok := splitDataKey(string(kv.Key[len(e.data):])); ok {
				e.m.set(b, k, kv.Value, kv.ModRevision)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	e.m.publish(rev)
	return rev, nil
}

// watch applies etcd's changes under the prefix to the mirror until Close.
func (e *Store) watch(rev int64) {
	defer close(e.watchEnd)
	for e.ctx.Err() == nil {
		wch := e.cli.Watch(e.ctx, e.o.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
		for resp := range wch {
			if resp.CompactRevision != 0 {
				// Fell behind a compaction: start over from a fresh copy.
				for e.ctx.Err() == nil {
					r, err := e.load()
					if err == nil {
						rev = r
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				break
			}
			if resp.Err() != nil {
				break
			}
			if resp.IsProgressNotify() {
				if resp.Header.Revision > rev && e.caughtUp(rev, resp.Header.Revision) {
					rev = resp.Header.Revision
					e.m.mu.Lock()
					e.m.rev = rev
					e.m.mu.Unlock()
					e.m.publish(rev)
				}
				continue
			}
			rev = e.apply(resp.Events, rev)
		}
		if e.ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// caughtUp reports whether the mirror, current at rev, holds the data as
// of a progress notification's revision at: no data key was written
// after rev, and as many are stored at at as the mirror holds (so none
// was deleted). etcd before 3.4.25 and 3.5.8 may send a requested
// progress notification ahead of events it has not sent yet (etcd issue
// 15220; Debian's etcd-server is 3.4.23): trusted, it let a View answer
// from a mirror that lacked a committed key (TestEtcdUnreachable, about
// one run in eight). When it cannot tell, it says no: the events, or
// the next notification, will bring the revision.
func (e *Store) caughtUp(rev, at int64) bool {
	ctx, cancel := context.WithTimeout(e.ctx, e.o.CommitTimeout)
	defer cancel()
	newer, err := e.cli.Get(ctx, e.data, clientv3.WithPrefix(), clientv3.WithRev(at), clientv3.WithMinModRev(rev+1), clientv3.WithKeysOnly())
	if err != nil || len(newer.Kvs) > 0 {
		return false
	}
	n, err := e.cli.Get(ctx, e.data, clientv3.WithPrefix(), clientv3.WithRev(at), clientv3.WithCountOnly())
	if err != nil {
		return false
	}
	e.m.mu.RLock()
	defer e.m.mu.RUnlock()
	return n.Count == int64(e.m.size())
}

type change struct {
	bucket        string
	key, old, new []byte
}

// apply applies events, calls the subscribers and publishes the revision.
func (e *Store) apply(evs []*clientv3.Event, rev int64) int64 {
	var changes []change
	e.subMu.Lock()
	watched := len(e.subs) > 0
	e.subMu.Unlock()
	e.m.mu.Lock()
	for _, ev := range evs {
		if ev.Kv.ModRevision > rev {
			rev = ev.Kv.ModRevision
		}
		k := string(ev.Kv.Key)
		if !strings.HasPrefix(k, e.data) {
			continue
		}
		b, key, ok := splitDataKey(k[len(e.data):])
		if !ok {
			continue
		}
		var v []byte
		if ev.Type == clientv3.EventTypePut {
			v = ev.Kv.Value
			if v == nil {
				v = []byte{}
			}
		}
		old := e.m.set(b, key, v, ev.Kv.ModRevision)
		if watched {
			changes = append(changes, change{bucket: b, key: []byte(key), old: old, new: v})
		}
	}
	e.m.rev = rev
	e.m.mu.Unlock()
	if len(changes) > 0 {
		e.subMu.Lock()
		subs := make(map[string][]*sub, len(e.subs))
		for b, s := range e.subs {
			subs[b] = slices.Clone(s)
		}
		e.subMu.Unlock()
		for _, c := range changes {
			for _, s := range subs[c.bucket] {
				s.fn(c.key, c.old, c.new)
			}
		}
	}
	e.m.publish(rev)
	return rev
}

// Watch implements Watcher.
func (e *Store) Watch(bucket string, fn func(key, old, new []byte)) (stop func()) {
	s := &sub{fn: fn}
	e.subMu.Lock()
	e.subs[bucket] = append(e.subs[bucket], s)
	e.subMu.Unlock()
	return func() {
		e.subMu.Lock()
		defer e.subMu.Unlock()
		e.subs[bucket] = slices.DeleteFunc(e.subs[bucket], func(x *sub) bool { return x == s })
		if len(e.subs[bucket]) == 0 {
			delete(e.subs, bucket)
		}
	}
}

// sync waits until the mirror holds every commit that finished before it
// was called.
func (e *Store) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.CommitTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.o.Prefix+"rev", clientv3.WithCountOnly())
	if err != nil {
		return e.errf("read the current revision", err)
	}
	return e.waitRev(ctx, resp.Header.Revision)
}

func (e *Store) waitRev(ctx context.Context, rev int64) error {
	err := e.m.wait(ctx, rev, 20*time.Millisecond, func() {
		// The watch's own context (its metadata names the stream).
		pctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
		defer cancel()
		_ = e.cli.RequestProgress(pctx)
	})
	if err != nil {
		return e.errf(fmt.Sprintf("wait for revision %d", rev), err)
	}
	return nil
}

// View runs fn on the data as of now; see Store.
func (e *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if e.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.sync(ctx); err != nil {
		return err
	}
	e.m.mu.RLock()
	defer e.m.mu.RUnlock()
	return fn(&etcdTx{e: e, ro: true})
}

// Update runs fn in a transaction committed with the Updates waiting with
// it; see Store.
func (e *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if e.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &ecall{ctx: ctx, fn: fn, err: make(chan error, 1)}
	e.mu.RLock()
	if e.closed.Load() {
		e.mu.RUnlock()
		return store.ErrClosed
	}
	e.reqs <- c
	e.mu.RUnlock()
	return <-c.err
}

// Close commits the Updates already queued, stops the watch and closes the
// client.
func (e *Store) Close() error {
	e.mu.Lock()
	if e.closed.Swap(true) {
		e.mu.Unlock()
		return nil
	}
	close(e.reqs)
	e.mu.Unlock()
	e.done.Wait()
	e.cancel()
	<-e.watchEnd
	return e.cli.Close()
}

// Stats counts commits: Updates committed, commits, commits retried
// after a conflict with another replica, commits of unknown outcome
// resolved by the marker, the last and largest batch.
type Stats struct {
	Updates, Commits, Retries, Ambiguous uint64
	LastBatch, MaxBatch                  int
}

// Stats returns the commit counters.
func (e *Store) Stats() Stats {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	return Stats{Updates: e.updates, Commits: e.commits, Retries: e.retries, Ambiguous: e.ambig, LastBatch: e.lastBatch, MaxBatch: e.maxBat}
}

// committer takes the Updates waiting when it is free and commits them
// together; a replica runs Committers of them. Each writes as a shard of
// its own (the replica's name; the second and later add '#' and their
// number) and has its own commit
// marker, so that an unknown outcome is read back from a key no other
// committer writes.
type committer struct {
	e      *Store
	shard  string
	marker string // Prefix + "txn/" + shard
	seq    int64
}

func (c *committer) loop() {
	e := c.e
	defer e.done.Done()
	var batch []*ecall
	for r := range e.reqs {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < e.o.MaxBatch {
			select {
			case r, ok := <-e.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.run(batch)
	}
}

// run commits batch, in as many commits as etcd's operation limit needs,
// rerunning the functions after a conflict.
func (cm *committer) run(batch []*ecall) {
	e := cm.e
	pending := slices.Clone(batch)
	for len(pending) > 0 {
		live := pending[:0]
		for _, c := range pending {
			if err := c.ctx.Err(); err != nil {
				c.err <- err
				continue
			}
			live = append(live, c)
		}
		pending = live
		if len(pending) == 0 {
			return
		}
		w := &txWrites{e: e, shard: cm.shard, reads: map[string]int64{}, writes: map[string]map[string][]byte{}}
		e.m.mu.RLock()
		w.snap = e.m.rev
		n := 0
		for n < len(pending) {
			c := pending[n]
			tx := &etcdTx{e: e, w: w, reads: map[string]int64{}, writes: map[string]map[string][]byte{}}
			c.ferr = safeEtcdCall(c.fn, tx)
			if !w.fits(tx) {
				if n == 0 {
					c.ferr = fmt.Errorf("one transaction needs %d writes and %d comparisons, more than etcd's --max-txn-ops (%d, the store's MaxTxnOps); raise both, or ask for less at once: %w",
						w.nwrites(tx)+1, w.ncmps(tx), e.o.MaxTxnOps, store.ErrTooLarge)
					n++
				}
				break
			}
			w.merge(tx, c.ferr == nil)
			n++
		}
		e.m.mu.RUnlock()
		now := pending[:n]
		rest := pending[n:]
		rev, err := cm.commit(w)
		if errors.Is(err, errConflict) {
			e.statMu.Lock()
			e.retries++
			e.statMu.Unlock()
			e.waitCommitted(rev)
			continue
		}
		if err == nil && rev > 0 {
			e.waitCommitted(rev)
		}
		e.statMu.Lock()
		e.commits++
		e.updates += uint64(len(now))
		e.lastBatch = len(now)
		e.maxBat = max(e.maxBat, len(now))
		e.statMu.Unlock()
		for _, c := range now {
			if err != nil {
				c.err <- err
			} else {
				c.err <- c.ferr
			}
		}
		pending = append([]*ecall(nil), rest...)
	}
}

// waitCommitted waits (at most CommitTimeout) for the mirror to hold rev,
// so that the next batch reads this one's writes instead of conflicting
// with them.
func (e *Store) waitCommitted(rev int64) {
	ctx, cancel := context.WithTimeout(e.ctx, e.o.CommitTimeout)
	defer cancel()
	_ = e.waitRev(ctx, rev)
}

func safeEtcdCall(fn func(store.Tx) error, tx store.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store update panicked: %v", p)
		}
	}()
	return fn(tx)
}

var errConflict = errors.New("conflict")

// commit sends w as one etcd transaction and returns its revision (0 when
// it wrote nothing). errConflict means a key read changed; the revision is
// then etcd's current one.
func (cm *committer) commit(w *txWrites) (int64, error) {
	e := cm.e
	cmps := w.compares()
	var ops []clientv3.Op
	for _, b := range sortedKeys(w.writes) {
		for _, k := range sortedKeys(w.writes[b]) {
			v := w.writes[b][k]
			ek := e.data + b + "/" + k
			if v == nil {
				ops = append(ops, clientv3.OpDelete(ek))
			} else {
				ops = append(ops, clientv3.OpPut(ek, string(v)))
			}
		}
	}
	if len(ops) == 0 && len(cmps) == 0 {
		return 0, nil
	}
	seq := ""
	if len(ops) > 0 {
		cm.seq++
		seq = strconv.FormatInt(cm.seq, 10)
		ops = append(ops, clientv3.OpPut(cm.marker, seq))
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.o.CommitTimeout)
	defer cancel()
	resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err == nil {
		if !resp.Succeeded {
			return resp.Header.Revision, errConflict
		}
		if len(ops) == 0 {
			return 0, nil
		}
		return resp.Header.Revision, nil
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		return 0, fmt.Errorf("commit %d writes and %d comparisons: %w (etcd's --max-txn-ops is lower than the store's MaxTxnOps, %d): %w", len(ops), len(cmps), err, e.o.MaxTxnOps, store.ErrTooLarge)
	}
	if len(ops) == 0 {
		return 0, e.errf("check reads", err)
	}
	// The outcome is unknown: the marker says whether this commit landed.
	e.statMu.Lock()
	e.ambig++
	e.statMu.Unlock()
	rctx, rcancel := context.WithTimeout(e.ctx, e.o.CommitTimeout)
	defer rcancel()
	for {
		mr, gerr := e.cli.Get(rctx, cm.marker)
		if gerr == nil {
			if len(mr.Kvs) == 1 && string(mr.Kvs[0].Value) == seq {
				return mr.Kvs[0].ModRevision, nil
			}
			return 0, e.errf("commit (not applied; nothing was written)", err)
		}
		if rctx.Err() != nil {
			return 0, e.errf("commit (outcome unknown: etcd did not answer, then could not be asked; the transaction applied entirely or not at all)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// txWrites is a batch's accumulated reads and writes.
type txWrites struct {
	e      *Store
	shard  string // the committer's
	snap   int64
	reads  map[string]int64 // mirror key (bucket/key) -> ModRevision seen (0 absent)
	ranges []krange
	writes map[string]map[string][]byte // bucket -> key -> value (nil delete)
	nw     int
}

type krange struct{ start, end string } // mirror keys, [start, end); end "" = to the end

func (w *txWrites) nwrites(tx *etcdTx) int {
	n := w.nw
	for b, m := range tx.writes {
		for k := range m {
			if _, ok := w.writes[b][k]; !ok {
				n++
			}
		}
	}
	return n
}

func (w *txWrites) ncmps(tx *etcdTx) int {
	n := len(w.reads) + len(w.ranges) + len(tx.ranges)
	for k := range tx.reads {
		if _, ok := w.reads[k]; !ok {
			n++
		}
	}
	return n
}

// fits reports whether w with tx merged stays within etcd's limit (one
// operation is kept for the marker).
func (w *txWrites) fits(tx *etcdTx) bool {
	return w.nwrites(tx)+1 <= w.e.o.MaxTxnOps && w.ncmps(tx) <= w.e.o.MaxTxnOps
}

// merge adds tx's reads (always: a failed Update's error must rest on
// current data too) and, when ok, its writes.
func (w *txWrites) merge(tx *etcdTx, ok bool) {
	for k, r := range tx.reads {
		if _, seen := w.reads[k]; !seen {
			w.reads[k] = r
		}
	}
	w.ranges = append(w.ranges, tx.ranges...)
	if !ok {
		return
	}
	for b, m := range tx.writes {
		wb := w.writes[b]
		if wb == nil {
			wb = map[string][]byte{}
			w.writes[b] = wb
		}
		for k, v := range m {
			if _, had := wb[k]; !had {
				w.nw++
			}
			wb[k] = v
		}
	}
}

// compares returns the transaction's conditions: each key read still has
// the revision seen, no key of a scanned range changed after the snapshot.
func (w *txWrites) compares() []clientv3.Cmp {
	out := make([]clientv3.Cmp, 0, len(w.reads)+len(w.ranges))
	for _, k := range sortedKeys(w.reads) {
		ek := w.e.data + k
		if r := w.reads[k]; r == 0 {
			out = append(out, clientv3.Compare(clientv3.CreateRevision(ek), "=", 0))
		} else {
			out = append(out, clientv3.Compare(clientv3.ModRevision(ek), "=", r))
		}
	}
	rs := slices.Clone(w.ranges)
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	var merged []krange
	for _, r := range rs {
		if n := len(merged); n > 0 && (merged[n-1].end == "" || r.start <= merged[n-1].end) {
			if merged[n-1].end != "" && (r.end == "" || r.end > merged[n-1].end) {
				merged[n-1].end = r.end
			}
			continue
		}
		merged = append(merged, r)
	}
	for _, r := range merged {
		end := prefixEnd(w.e.data)
		if r.end != "" {
			end = w.e.data + r.end
		}
		out = append(out, clientv3.Compare(clientv3.ModRevision(w.e.data+r.start), "<", w.snap+1).WithRange(end))
	}
	return out
}

// etcdTx is one function's view: the mirror at the batch's snapshot, the
// writes of the batch's earlier functions, then its own.
type etcdTx struct {
	e      *Store
	ro     bool
	w      *txWrites // nil in a View
	reads  map[string]int64
	ranges []krange
	writes map[string]map[string][]byte
}

func (t *etcdTx) overlay(bucket, key string) ([]byte, bool) {
	if v, ok := t.writes[bucket][key]; ok {
		return v, true
	}
	if t.w != nil {
		if v, ok := t.w.writes[bucket][key]; ok {
			return v, true
		}
	}
	return nil, false
}

func (t *etcdTx) Get(bucket string, key []byte) []byte {
	k := string(key)
	if v, ok := t.overlay(bucket, k); ok {
		return v
	}
	mv, ok := t.e.m.get(bucket, k)
	if t.reads != nil {
		if _, seen := t.reads[bucket+"/"+k]; !seen {
			t.reads[bucket+"/"+k] = mv.mod
		}
	}
	if !ok {
		return nil
	}
	return mv.v
}

func (t *etcdTx) put(bucket string, key, value []byte) error {
	if t.ro {
		return store.ErrReadOnly
	}
	if bucket == "" || strings.Contains(bucket, "/") {
		return fmt.Errorf("bucket %q: an etcd store's bucket names are not empty and have no '/'", bucket)
	}
	m := t.writes[bucket]
	if m == nil {
		m = map[string][]byte{}
		t.writes[bucket] = m
	}
	m[string(key)] = value
	return nil
}

func (t *etcdTx) Put(bucket string, key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.put(bucket, key, slices.Clone(value))
}

func (t *etcdTx) Delete(bucket string, key []byte) error {
	if t.ro {
		return store.ErrReadOnly
	}
	if _, ok := t.e.m.get(bucket, string(key)); !ok {
		if v, ok := t.overlay(bucket, string(key)); !ok || v == nil {
			return nil // absent: nothing to delete
		}
	}
	return t.put(bucket, key, nil)
}

func (t *etcdTx) Scan(bucket string, prefix, from []byte, fn func(k, v []byte) bool) error {
	start := string(prefix)
	if string(from) > start {
		start = string(from)
	}
	end := prefixEnd(string(prefix))
	// The keys this transaction (and its batch) wrote in the range, merged
	// with the mirror's.
	var ov []string
	seen := map[string]bool{}
	add := func(m map[string][]byte) {
		for k := range m {
			if k >= start && (end == "" || k < end) && !seen[k] {
				seen[k] = true
				ov = append(ov, k)
			}
		}
	}
	add(t.writes[bucket])
	if t.w != nil {
		add(t.w.writes[bucket])
	}
	sort.Strings(ov)
	last, stopped := "", false
	emit := func(k string, v []byte) bool {
		last = k
		if v == nil {
			return true // deleted here
		}
		return fn([]byte(k), v)
	}
	t.e.m.scan(bucket, start, end, func(k string, mv mval) bool {
		for len(ov) > 0 && ov[0] < k {
			v, _ := t.overlay(bucket, ov[0])
			if !emit(ov[0], v) {
				stopped = true
				return false
			}
			ov = ov[1:]
		}
		last = k
		if len(ov) > 0 && ov[0] == k {
			ov = ov[1:]
			v, _ := t.overlay(bucket, k)
			if !emit(k, v) {
				stopped = true
				return false
			}
			return true
		}
		if !fn([]byte(k), mv.v) {
			stopped = true
			return false
		}
		return true
	})
	if !stopped {
		for _, k := range ov {
			v, _ := t.overlay(bucket, k)
			if !emit(k, v) {
				stopped = true
				break
			}
		}
	}
	if t.reads != nil {
		r := krange{start: bucket + "/" + start, end: bucket + "/" + end}
		if end == "" {
			r.end = prefixEnd(bucket + "/")
		}
		if stopped && last != "" {
			r.end = bucket + "/" + last + "\x00"
		}
		t.ranges = append(t.ranges, r)
	}
	return nil
}

// Shard implements Sharded: the committer's shard (in a View, which
// writes nothing, the replica's name).
func (t *etcdTx) Shard() string {
	if t.w != nil {
		return t.w.shard
	}
	return t.e.o.Name
}

// PeekGet implements Sharded.
func (t *etcdTx) PeekGet(bucket string, key []byte) []byte {
	saved := t.reads
	t.reads = nil
	defer func() { t.reads = saved }()
	return t.Get(bucket, key)
}

// PeekScan implements Sharded.
func (t *etcdTx) PeekScan(bucket string, prefix []byte, fn func(k, v []byte) bool) {
	saved := t.reads
	t.reads = nil
	defer func() { t.reads = saved }()
	_ = t.Scan(bucket, prefix, nil, fn)
}
