package etcdstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/internal/etcdtest"
	"github.com/netbed/netbed/internal/testutil"
)

func openEtcd(t *testing.T, c *etcdtest.Cluster, prefix string) *Store {
	t.Helper()
	st, err := Open(Options{Endpoints: c.Endpoints(), Prefix: prefix, MaxTxnOps: etcdtest.MaxTxnOps, DialTimeout: 3 * time.Second, CommitTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		ok, bad bool
	}{
		{"ctl.db", "[]", false, false},
		{"/var/lib/netbed/ctl.db", "[]", false, false},
		{"etcd://127.0.0.1:2379", "[127.0.0.1:2379]", true, false},
		{"etcd://a:1,b:2/", "[a:1 b:2]", true, false},
		{"etcd://", "", true, true},
		{"etcd://a:1,,b:2", "", true, true},
		{"etcd://host", "", true, true},
	}
	for _, tc := range tests {
		eps, ok, err := ParseURL(tc.in)
		if ok != tc.ok || (err != nil) != tc.bad || (!tc.bad && fmt.Sprint(eps) != tc.want) {
			t.Errorf("ParseURL(%q) = %v, %v, %v; want %s, %v, error %v", tc.in, eps, ok, err, tc.want, tc.ok, tc.bad)
		}
	}
}

// TestEtcd runs the Store contract on a 3-member etcd cluster, each case
// under its own prefix.
func TestEtcd(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()

	t.Run("update view scan", func(t *testing.T) {
		st := openEtcd(t, c, "/t1/")
		if err := st.Update(ctx, func(tx store.Tx) error {
			for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
				if err := tx.Put("kv", []byte(k), []byte("v"+k)); err != nil {
					return err
				}
			}
			if err := tx.Delete("kv", []byte("a/2")); err != nil {
				return err
			}
			// The transaction reads its own writes, in order.
			var got []string
			_ = tx.Scan("kv", []byte("a/"), nil, func(k, _ []byte) bool { got = append(got, string(k)); return true })
			if fmt.Sprint(got) != "[a/1 a/3]" {
				t.Errorf("scan inside the update = %v", got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, prefix, from string
			want               []string
		}{
			{"all", "", "", []string{"a/1", "a/3", "b/1"}},
			{"prefix", "a/", "", []string{"a/1", "a/3"}},
			{"prefix from", "a/", "a/2", []string{"a/3"}},
			{"from before prefix", "b/", "a", []string{"b/1"}},
			{"missing prefix", "c/", "", nil},
		}
		for _, tc := range tests {
			var got []string
			if err := st.View(ctx, func(tx store.Tx) error {
				return tx.Scan("kv", []byte(tc.prefix), []byte(tc.from), func(k, v []byte) bool {
					if string(v) != "v"+string(k) {
						t.Errorf("value of %s = %s", k, v)
					}
					got = append(got, string(k))
					return true
				})
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s: scan = %v, want %v", tc.name, got, tc.want)
			}
		}
		err := st.View(ctx, func(tx store.Tx) error { return tx.Put("kv", []byte("x"), nil) })
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("put in View: %v, want store.ErrReadOnly", err)
		}
		// Another replica opening the same prefix sees the same data.
		other := openEtcd(t, c, "/t1/")
		d, err := store.Dump(ctx, other, "kv")
		if err != nil || len(d["kv"]) != 3 || d["kv"]["b/1"] != "vb/1" {
			t.Errorf("second replica's dump = %v, %v", d, err)
		}
	})

	t.Run("rollback on error", func(t *testing.T) {
		st := openEtcd(t, c, "/t2/")
		boom := errors.New("boom")
		err := st.Update(ctx, func(tx store.Tx) error {
			_ = tx.Put("kv", []byte("k"), []byte("v"))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error %v, want the fn's own error", err)
		}
		if d, _ := store.Dump(ctx, st, "kv"); len(d["kv"]) != 0 {
			t.Errorf("failed update left %v", d["kv"])
		}
	})

	// Writers on three replicas increment one counter: every increment
	// acknowledged is counted once, although replicas commit concurrently
	// and batch (and rerun) functions.
	t.Run("counter across replicas", func(t *testing.T) {
		var sts []*Store
		for range 3 {
			sts = append(sts, openEtcd(t, c, "/t3/"))
		}
		const writers, each = 24, 15
		failing := errors.New("refused")
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := sts[w%3]
				for i := range each {
					err := st.Update(ctx, func(tx store.Tx) error {
						if (w+i)%7 == 0 {
							_ = tx.Put("kv", []byte("junk"), []byte("x"))
							return failing
						}
						var n uint64
						if v := tx.Get("kv", []byte("n")); v != nil {
							n = binary.BigEndian.Uint64(v)
						}
						return tx.Put("kv", []byte("n"), binary.BigEndian.AppendUint64(nil, n+1))
					})
					if (w+i)%7 == 0 != errors.Is(err, failing) {
						t.Errorf("writer %d op %d: err %v", w, i, err)
					}
				}
			}()
		}
		wg.Wait()
		want := 0
		for w := range writers {
			for i := range each {
				if (w+i)%7 != 0 {
					want++
				}
			}
		}
		d, _ := store.Dump(ctx, sts[1], "kv")
		if got := binary.BigEndian.Uint64([]byte(d["kv"]["n"])); got != uint64(want) {
			t.Errorf("counter = %d, want %d", got, want)
		}
		if _, ok := d["kv"]["junk"]; ok {
			t.Error("a failed writer's put was committed")
		}
		var retries uint64
		for _, st := range sts {
			retries += st.Stats().Retries
		}
		t.Logf("commits retried after a conflict: %d", retries)
	})

	// Two replicas each take the lowest free slot, found by a scan: the
	// range compare makes the loser run again, so no slot is taken twice.
	t.Run("scan conflict", func(t *testing.T) {
		a, b := openEtcd(t, c, "/t4/"), openEtcd(t, c, "/t4/")
		var wg sync.WaitGroup
		taken := make(chan string, 200)
		for w := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := a
				if w%2 == 1 {
					st = b
				}
				for range 5 {
					var got string
					err := st.Update(ctx, func(tx store.Tx) error {
						next := 0
						_ = tx.Scan("slots", nil, nil, func(k, _ []byte) bool {
							if string(k) != fmt.Sprintf("%04d", next) {
								return false
							}
							next++
							return true
						})
						got = fmt.Sprintf("%04d", next)
						return tx.Put("slots", []byte(got), []byte(fmt.Sprint(w)))
					})
					if err != nil {
						t.Error(err)
						return
					}
					taken <- got
				}
			}()
		}
		wg.Wait()
		close(taken)
		seen := map[string]bool{}
		for s := range taken {
			if seen[s] {
				t.Errorf("slot %s handed out twice", s)
			}
			seen[s] = true
		}
		if d, _ := store.Dump(ctx, a, "slots"); len(d["slots"]) != 100 {
			t.Errorf("%d slots stored, want 100", len(d["slots"]))
		}
	})

	t.Run("watch", func(t *testing.T) {
		a, b := openEtcd(t, c, "/t5/"), openEtcd(t, c, "/t5/")
		got := make(chan string, 10)
		stop := a.Watch("kv", func(k, old, new []byte) { got <- fmt.Sprintf("%s:%s->%s", k, old, new) })
		defer stop()
		for _, fn := range []func(store.Tx) error{
			func(tx store.Tx) error { return tx.Put("kv", []byte("k"), []byte("1")) },
			func(tx store.Tx) error { return tx.Put("kv", []byte("k"), []byte("2")) },
			func(tx store.Tx) error { return tx.Delete("kv", []byte("k")) },
		} {
			if err := b.Update(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"k:->1", "k:1->2", "k:2->"} {
			select {
			case g := <-got:
				if g != want {
					t.Errorf("watch got %q, want %q", g, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no change %q seen", want)
			}
		}
	})

	t.Run("too large", func(t *testing.T) {
		st, err := Open(Options{Endpoints: c.Endpoints(), Prefix: "/t6/", MaxTxnOps: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		err = st.Update(ctx, func(tx store.Tx) error {
			for i := range 20 {
				_ = tx.Put("kv", []byte(fmt.Sprint(i)), nil)
			}
			return nil
		})
		if !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), "--max-txn-ops") {
			t.Errorf("20 writes with MaxTxnOps 16: %v, want store.ErrTooLarge naming --max-txn-ops", err)
		}
		// Many small Updates at once are split over several commits.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put("kv", []byte(fmt.Sprint("k", i)), nil) }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if d, _ := store.Dump(ctx, st, "kv"); len(d["kv"]) != 40 {
			t.Errorf("%d keys stored, want 40", len(d["kv"]))
		}
	})
}

// TestEtcdUnreachable: a store cannot open without etcd, and an Update or
// View while etcd is down fails naming etcd, writing nothing.
func TestEtcdUnreachable(t *testing.T) {
	etcdtest.Binary(t)
	testutil.Name("x") // keep the import when the binary is missing
	_, err := Open(Options{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, store.ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("open with no etcd: %v, want store.ErrUnreachable naming the endpoint", err)
	}

	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	st, err := Open(Options{Endpoints: c.Endpoints(), Prefix: "/u/", MaxTxnOps: etcdtest.MaxTxnOps, CommitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put("kv", []byte("before"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	c.KillAll()
	err = st.Update(ctx, func(tx store.Tx) error {
		for i := range 10 {
			if err := tx.Put("kv", []byte(fmt.Sprint("during", i)), []byte("1")); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrUnreachable) {
		t.Errorf("update with etcd down: %v, want store.ErrUnreachable", err)
	}
	if err := st.View(ctx, func(store.Tx) error { return nil }); !errors.Is(err, store.ErrUnreachable) {
		t.Errorf("view with etcd down: %v, want store.ErrUnreachable", err)
	}
	for i := range c.Members {
		c.Restart(i)
	}
	c.WaitHealthy(t, 20*time.Second)
	// The store's client reconnects by itself.
	var d map[string]map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for d, err = store.Dump(ctx, st, "kv"); err != nil; d, err = store.Dump(ctx, st, "kv") {
		if !errors.Is(err, store.ErrUnreachable) || time.Now().After(deadline) {
			t.Fatalf("read after etcd came back: %v", err)
		}
	}
	n := 0
	for k := range d["kv"] {
		if strings.HasPrefix(k, "during") {
			n++
		}
	}
	if d["kv"]["before"] != "1" || (n != 0 && n != 10) {
		t.Errorf("after etcd came back: %v; want 'before' and all or none of the 10 'during' keys", d["kv"])
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put("kv", []byte("after"), []byte("1")) }); err != nil {
		t.Errorf("update after etcd came back: %v", err)
	}
}
