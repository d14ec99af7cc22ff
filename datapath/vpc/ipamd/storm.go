package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// StormSpec is a spawn storm in one zone: Nodes instances of one type in
// one subnet, their pools settled at their targets, then PodsPerNode pods
// per node all at once.
type StormSpec struct {
	Limits       *cloud.Limits // nil: cloud.DefaultLimits()
	InstanceType string
	Nodes        int
	PodsPerNode  int
	// Subnet holds the nodes and pods; zero: 10.0.0.0/16.
	Subnet netip.Prefix
	Pool   Config
	// PodRetry is how long a pod whose spawn found the pool empty waits
	// before the next try (the kubelet's sandbox retry). Zero: 1 s.
	PodRetry time.Duration
}

// StormResult is what a storm cost. Times are from the storm's start, in
// the model's virtual time.
type StormResult struct {
	Spec StormSpec
	// Pods got an address; Failed did not (their node was full).
	Pods, Failed int
	// Spawn is each pod's wait for its address, sorted.
	Spawn                []time.Duration
	P50, P99, Max        time.Duration
	Calls, Throttled     int
	CallsBy, ThrottledBy map[string]int
}

// Storm runs spec on a fresh model in virtual time (cloud.Sched): the
// same spec gives the same result.
func Storm(spec StormSpec) (*StormResult, error) {
	if spec.Limits == nil {
		spec.Limits = cloud.DefaultLimits()
	}
	if !spec.Subnet.IsValid() {
		spec.Subnet = netip.MustParsePrefix("10.0.0.0/16")
	}
	if spec.PodRetry <= 0 {
		spec.PodRetry = time.Second
	}
	typ, ok := spec.Limits.InstanceType(spec.InstanceType)
	if !ok {
		return nil, fmt.Errorf("spawn storm: unknown instance type %q", spec.InstanceType)
	}
	if spec.Nodes < 1 || spec.PodsPerNode < 0 {
		return nil, fmt.Errorf("spawn storm: %d nodes, %d pods per node", spec.Nodes, spec.PodsPerNode)
	}
	ctx := context.Background()
	var s cloud.Sched
	m := cloud.New(&s, spec.Limits)
	pools := make([]*Pool, spec.Nodes)
	var setupErr error

	// Setup: the subnet, the nodes, their pools at their targets; then a
	// quiet minute for the buckets to refill (the nodes came up earlier).
	s.Go(func() {
		sub, err := m.CreateSubnet(ctx, spec.Subnet, "zone-a")
		if err != nil {
			setupErr = err
			return
		}
		backoff := Config{}
		backoff.defaults()
		for i := range pools {
			var inst cloud.Instance
			p := &Pool{clock: &s, cfg: backoff}
			err := p.retry(ctx, func() (err error) {
				inst, err = m.RunInstance(ctx, cloud.RunInstanceInput{Name: fmt.Sprintf("node-%d", i+1), Type: typ.Name, Subnet: sub.ID})
				return err
			})
			if err == nil {
				pools[i], err = New(ctx, m, &s, inst, typ, spec.Pool)
			}
			if err != nil {
				setupErr = err
				return
			}
		}
		for _, p := range pools {
			for p.shortageNow() > 0 {
				if err := p.Reconcile(ctx); err != nil && !cloud.Throttled(err) && !errors.Is(err, errBusy) {
					setupErr = err
					return
				}
				if p.shortageNow() > 0 {
					_ = s.Sleep(ctx, time.Second)
				}
			}
		}
		_ = s.Sleep(ctx, time.Minute)
	})
	s.Run()
	if setupErr != nil {
		return nil, fmt.Errorf("spawn storm setup: %w", setupErr)
	}
	before := m.Stats()
	start := s.Now()

	res := &StormResult{Spec: spec, CallsBy: map[string]int{}, ThrottledBy: map[string]int{}}
	left := spec.Nodes * spec.PodsPerNode
	done := func() bool { return left == 0 }
	for _, p := range pools {
		if !spec.Pool.Off() {
			s.Go(func() { p.Run(ctx, done) })
		}
		for j := range spec.PodsPerNode {
			pod := fmt.Sprintf("%s/pod-%d", p.name, j+1)
			s.Go(func() {
				defer func() { left-- }()
				for {
					_, _, err := p.Allocate(ctx, pod)
					switch {
					case err == nil:
						res.Pods++
						res.Spawn = append(res.Spawn, s.Now()-start)
						return
					case errors.Is(err, ErrNoFreeAddress):
						_ = s.Sleep(ctx, spec.PodRetry)
					default:
						res.Failed++
						return
					}
				}
			})
		}
	}
	s.Run()
	after := m.Stats()
	for a, n := range after.Calls {
		if d := n - before.Calls[a]; d > 0 {
			res.CallsBy[a] = d
			res.Calls += d
		}
	}
	for a, n := range after.Throttled {
		if d := n - before.Throttled[a]; d > 0 {
			res.ThrottledBy[a] = d
			res.Throttled += d
		}
	}
	slices.Sort(res.Spawn)
	if n := len(res.Spawn); n > 0 {
		res.P50 = res.Spawn[(n-1)/2]
		res.P99 = res.Spawn[(n*99+99)/100-1]
		res.Max = res.Spawn[n-1]
	}
	return res, nil
}

func (p *Pool) shortageNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shortage()
}
