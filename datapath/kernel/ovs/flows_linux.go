package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/netbed/netbed/datapath/kernel"
)

var _ kernel.FlowCache = (*Fabric)(nil)

// ForgetFlows implements kernel.FlowCache: revalidator/purge on every
// vswitch of the fabric (the hosts', and the switches' on Open vSwitch),
// all at once.
func (f *Fabric) ForgetFlows(ctx context.Context) error {
	var vs []*vswitch
	for _, name := range sortedHosts(f.hosts) {
		if v := f.hosts[name].v; v != nil {
			vs = append(vs, v)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.swv)) {
		if v := f.swv[name]; v != nil && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	if f.gw != nil && !slices.Contains(vs, f.gw) {
		vs = append(vs, f.gw)
	}
	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.appctl(ctx, "revalidator/purge"); err != nil {
				errs[i] = fmt.Errorf("ovs: forget the cached flows of %s: %w", v.node, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
