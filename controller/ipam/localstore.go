package ipam

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/netbed/netbed/controller/store"
)

// BucketLocal holds saved local IPAMs by name.
const BucketLocal = "ipam.local"

// SaveLocal persists l in st under name (a snapshot: the whole state in one
// transaction).
func SaveLocal(ctx context.Context, st store.Store, name string, l *Local) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("save local IPAM %q: %w", name, err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put(BucketLocal, []byte(name), b) }); err != nil {
		return fmt.Errorf("save local IPAM %q: %w", name, err)
	}
	return nil
}

// LoadLocal restores the local IPAM saved under name; ok is false when
// there is none.
func LoadLocal(ctx context.Context, st store.Store, name string) (l *Local, ok bool, err error) {
	var b []byte
	if err := st.View(ctx, func(tx store.Tx) error {
		b = append([]byte(nil), tx.Get(BucketLocal, []byte(name))...)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("load local IPAM %q: %w", name, err)
	}
	if len(b) == 0 {
		return nil, false, nil
	}
	l = &Local{}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, false, fmt.Errorf("load local IPAM %q: %w", name, err)
	}
	return l, true, nil
}
