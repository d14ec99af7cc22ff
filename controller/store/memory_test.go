package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMemoryDifferential runs the same random transactions (puts,
// deletes, gets and scans, one in four failing after its writes) on
// Memory and on Bolt: every read inside them and both stores' contents
// after each must agree.
func TestMemoryDifferential(t *testing.T) {
	ctx := context.Background()
	bo, mem := openTemp(t), NewMemory()
	rng := rand.New(rand.NewPCG(7, 13))
	buckets := []string{"kv", "idx", "empty"}
	fail := errors.New("refused")
	for i := range 400 {
		seed := rng.Uint64()
		run := func(st Store) (reads []string, err error) {
			r := rand.New(rand.NewPCG(seed, 1))
			op := func(tx Tx) error {
				for range 1 + r.IntN(12) {
					b := buckets[r.IntN(len(buckets))]
					k := fmt.Appendf(nil, "%c/%02d", 'a'+rune(r.IntN(3)), r.IntN(40))
					switch r.IntN(5) {
					case 0, 1:
						if err := tx.Put(b, k, fmt.Appendf(nil, "v%d", r.IntN(1000))); err != nil {
							return err
						}
					case 2:
						if err := tx.Delete(b, k); err != nil {
							return err
						}
					case 3:
						reads = append(reads, fmt.Sprintf("get %s/%s=%q", b, k, tx.Get(b, k)))
					case 4:
						prefix := k[:r.IntN(3)]
						var from []byte
						if r.IntN(2) == 0 {
							from = fmt.Appendf(nil, "%c/%02d", 'a'+rune(r.IntN(3)), r.IntN(40))
						}
						n := r.IntN(10)
						err := tx.Scan(b, prefix, from, func(k, v []byte) bool {
							reads = append(reads, fmt.Sprintf("scan %s %s=%s", b, k, v))
							n--
							return n > 0
						})
						if err != nil {
							return err
						}
					}
				}
				if r.IntN(4) == 0 {
					return fail
				}
				return nil
			}
			if r.IntN(3) == 0 {
				return reads, st.View(ctx, func(tx Tx) error {
					reads = append(reads, "view")
					err := op(tx)
					if errors.Is(err, ErrReadOnly) || errors.Is(err, fail) {
						return nil // a write refused: the View ends there
					}
					return err
				})
			}
			return reads, st.Update(ctx, op)
		}
		rb, eb := run(bo)
		rm, em := run(mem)
		if !errors.Is(eb, em) && fmt.Sprint(eb) != fmt.Sprint(em) {
			t.Fatalf("txn %d: bolt error %v, memory error %v", i, eb, em)
		}
		if !slices.Equal(rb, rm) {
			t.Fatalf("txn %d: reads differ\nbolt:   %q\nmemory: %q", i, rb, rm)
		}
		db, _ := Dump(ctx, bo, buckets...)
		dm, _ := Dump(ctx, mem, buckets...)
		if fmt.Sprint(db) != fmt.Sprint(dm) {
			t.Fatalf("txn %d: contents differ\nbolt:   %v\nmemory: %v", i, db, dm)
		}
	}
}

// TestMemoryWriteWhileScanning: a transaction may write the bucket it is
// scanning (the scan sees the bucket as it was when it began), and a
// value handed to Put is copied.
func TestMemoryWriteWhileScanning(t *testing.T) {
	ctx := context.Background()
	st := NewMemory()
	buf := []byte("v0")
	if err := st.Update(ctx, func(tx Tx) error {
		for i := range 50 {
			buf[1] = byte('0' + i%10)
			if err := tx.Put("kv", fmt.Appendf(nil, "k%02d", i), buf); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var seen int
	if err := st.Update(ctx, func(tx Tx) error {
		return tx.Scan("kv", []byte("k"), nil, func(k, v []byte) bool {
			seen++
			if want := "v" + string(k[2]); string(v) != want {
				t.Errorf("%s = %s, want %s", k, v, want)
			}
			if err := tx.Delete("kv", k); err != nil {
				t.Error(err)
			}
			if err := tx.Put("kv", append([]byte("k"), k...), v); err != nil {
				t.Error(err)
			}
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	d, _ := Dump(ctx, st, "kv")
	if seen != 50 || len(d["kv"]) != 50 || d["kv"]["kk07"] != "v7" {
		t.Errorf("scanned %d, after: %d keys, kk07=%q; want 50, 50, v7", seen, len(d["kv"]), d["kv"]["kk07"])
	}
}

// TestMemoryRollbackCloseReopen: a failed or panicking Update leaves
// nothing; a closed handle refuses calls; Reopen finds the data.
func TestMemoryRollbackCloseReopen(t *testing.T) {
	ctx := context.Background()
	st := NewMemory()
	if err := st.Update(ctx, func(tx Tx) error { return tx.Put("kv", []byte("a"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := st.Update(ctx, func(tx Tx) error {
		_ = tx.Put("kv", []byte("b"), []byte("2"))
		_ = tx.Delete("kv", []byte("a"))
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update error %v, want the fn's own", err)
	}
	if err := st.Update(ctx, func(tx Tx) error {
		_ = tx.Put("kv", []byte("c"), []byte("3"))
		panic("oops")
	}); err == nil {
		t.Fatal("a panicking update succeeded")
	}
	want := map[string]map[string]string{"kv": {"a": "1"}}
	if d, _ := Dump(ctx, st, "kv"); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("after failed updates: %v, want %v", d, want)
	}
	if err := st.View(ctx, func(tx Tx) error { return tx.Put("kv", []byte("x"), nil) }); !errors.Is(err, ErrReadOnly) {
		t.Errorf("put in View: %v, want ErrReadOnly", err)
	}
	st.Close()
	if err := st.Update(ctx, func(Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("update after Close: %v", err)
	}
	if err := st.View(ctx, func(Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("view after Close: %v", err)
	}
	if d, _ := Dump(ctx, st.Reopen(), "kv"); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("reopened: %v, want %v", d, want)
	}
}
