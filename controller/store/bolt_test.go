package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func openTemp(t *testing.T) *Bolt {
	t.Helper()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestBoltUpdateViewScan(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t)
	if err := st.Update(ctx, func(tx Tx) error {
		for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
			if err := tx.Put("kv", []byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.Delete("kv", []byte("a/2"))
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		prefix, from string
		want         []string
	}{
		{"all", "", "", []string{"a/1", "a/3", "b/1"}},
		{"prefix", "a/", "", []string{"a/1", "a/3"}},
		{"prefix from", "a/", "a/2", []string{"a/3"}},
		{"from before prefix", "b/", "a", []string{"b/1"}},
		{"missing prefix", "c/", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := st.View(ctx, func(tx Tx) error {
				return tx.Scan("kv", []byte(tc.prefix), []byte(tc.from), func(k, v []byte) bool {
					if string(v) != "v"+string(k) {
						t.Errorf("value of %s = %s", k, v)
					}
					got = append(got, string(k))
					return true
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("scan = %v, want %v", got, tc.want)
			}
		})
	}
	err := st.View(ctx, func(tx Tx) error {
		if tx.Get("nope", []byte("x")) != nil {
			t.Error("get from a missing bucket returned a value")
		}
		return tx.Put("kv", []byte("x"), nil)
	})
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("put in View: %v, want ErrReadOnly", err)
	}
}

func TestBoltRollbackOnError(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t)
	boom := errors.New("boom")
	err := st.Update(ctx, func(tx Tx) error {
		if err := tx.Put("kv", []byte("k"), []byte("v")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update error %v, want the fn's own error", err)
	}
	d, err := Dump(ctx, st, "kv")
	if err != nil {
		t.Fatal(err)
	}
	if len(d["kv"]) != 0 {
		t.Errorf("failed update left %v", d["kv"])
	}
}

// TestBoltConcurrentBatched: many writers incrementing one counter, each in
// its own Update, lose no increment although bbolt batches (and may re-run)
// their functions.
func TestBoltConcurrentBatched(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t)
	const writers, each = 32, 20
	failing := errors.New("refused")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := st.Update(ctx, func(tx Tx) error {
					if (w+i)%7 == 0 {
						// A failing writer in a batch must not undo the others.
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
	d, _ := Dump(ctx, st, "kv")
	if got := binary.BigEndian.Uint64([]byte(d["kv"]["n"])); got != uint64(want) {
		t.Errorf("counter = %d, want %d", got, want)
	}
	if _, ok := d["kv"]["junk"]; ok {
		t.Error("a failed writer's put was committed")
	}
}

func TestBoltLockedByLiveOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	a, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = OpenBolt(path, BoltOptions{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open while the first holds the lock: %v, want ErrLocked", err)
	}
	a.Close()
	if err := a.Update(context.Background(), func(Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("update after close: %v, want ErrClosed", err)
	}
	b, err := OpenBolt(path, BoltOptions{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	b.Close()
}

// The crash test re-executes the test binary as a child that writes to the
// store in a storm, acknowledging each committed key on stdout; the parent
// SIGKILLs it mid-storm and reopens the store.
const envCrashChild = "NETBED_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(envCrashChild); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

func crashChild(path string) {
	st, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("w%02d-%08d", w, i)
				if err := st.Update(context.Background(), func(tx Tx) error {
					return tx.Put("acked", []byte(k), []byte(strconv.Itoa(i)))
				}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintln(out, k)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestBoltSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[string]bool{}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashChild+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			acked[sc.Text()] = true
			n++
			if n == 300 {
				// Kill while writers are mid-commit.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed by SIGKILL", round, err)
		}
		if n < 300 {
			t.Fatalf("round %d: child acknowledged only %d writes", round, n)
		}
		st, err := OpenBolt(path, BoltOptions{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		d, err := Dump(context.Background(), st, "acked")
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for k := range acked {
			if _, ok := d["acked"][k]; !ok {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("round %d: %d of %d acknowledged writes lost", round, missing, len(acked))
		}
	}
}

func TestBoltStatsCountBatches(t *testing.T) {
	st := openTemp(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_ = st.Update(ctx, func(tx Tx) error { return tx.Put("kv", []byte(fmt.Sprint(w, i)), nil) })
			}
		}()
	}
	wg.Wait()
	s := st.Stats()
	if s.Updates != 160 || s.Commits == 0 || s.Commits > s.Updates {
		t.Errorf("stats %+v: want 160 updates in at most 160 commits", s)
	}
	if s.BatchMax < s.BatchP50 || s.CommitMax < s.CommitP50 || s.BatchP50 < 1 {
		t.Errorf("stats out of order: %+v", s)
	}
}
