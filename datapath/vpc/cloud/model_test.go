package cloud_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// world is a model on a step clock with one /24 subnet and one instance.
type world struct {
	clock *cloud.StepClock
	m     *cloud.Model
	sub   cloud.Subnet
	inst  cloud.Instance
}

func newWorld(t *testing.T, typ string) *world {
	t.Helper()
	w := &world{clock: &cloud.StepClock{}}
	w.m = cloud.New(w.clock, nil)
	var err error
	ctx := context.Background()
	if w.sub, err = w.m.CreateSubnet(ctx, netip.MustParsePrefix("10.1.0.0/24"), "az-a"); err != nil {
		t.Fatal(err)
	}
	if w.inst, err = w.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "node-1", Type: typ, Subnet: w.sub.ID}); err != nil {
		t.Fatal(err)
	}
	return w
}

// wantCode fails unless err carries code and its message names every one
// of names.
func wantCode(t *testing.T, err error, code cloud.Code, names ...string) {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%q does not name %q", err, n)
		}
	}
}

func TestAttachmentLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "t3.small") // 3 ENIs
	for i := range 3 {
		e, err := w.m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: w.sub.ID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.m.AttachNetworkInterface(ctx, cloud.AttachNetworkInterfaceInput{ENI: e.ID, Instance: w.inst.ID, DeviceIndex: -1})
		if i < 2 && err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
		if i == 2 {
			wantCode(t, err, cloud.AttachmentLimitExceeded, string(w.inst.ID), "node-1", "t3.small")
		}
	}
}

func (w *world) eni(t *testing.T, secondaries int) cloud.NetworkInterface {
	t.Helper()
	e, err := w.m.CreateNetworkInterface(context.Background(), cloud.CreateNetworkInterfaceInput{Subnet: w.sub.ID, SecondaryCount: secondaries})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPrivateIPAddressLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large") // 10 addresses per ENI
	primary := w.inst.ENIs[0]
	got, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: primary, Count: 9})
	if err != nil || len(got) != 9 {
		t.Fatalf("assign 9: %v %v", got, err)
	}
	_, err = w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: primary, Count: 1})
	wantCode(t, err, cloud.PrivateIpAddressLimitExceeded, string(primary), string(w.inst.ID), "m5.large", "10")

	// An unattached ENI with more than the type allows cannot be attached.
	e := w.eni(t, 10)
	_, err = w.m.AttachNetworkInterface(ctx, cloud.AttachNetworkInterfaceInput{ENI: e.ID, Instance: w.inst.ID, DeviceIndex: 1})
	wantCode(t, err, cloud.PrivateIpAddressLimitExceeded, string(e.ID), "m5.large")
	// No type in the table allows more than 50.
	_, err = w.m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: w.sub.ID, SecondaryCount: 50})
	wantCode(t, err, cloud.PrivateIpAddressLimitExceeded, string(w.sub.ID))
}

func TestSubnetExhaustion(t *testing.T) {
	ctx := context.Background()
	clock := &cloud.StepClock{}
	m := cloud.New(clock, nil)
	sub, err := m.CreateSubnet(ctx, netip.MustParsePrefix("10.2.0.0/28"), "az-a") // 16 - 5 = 11 usable
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: sub.ID, SecondaryCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	all := append([]netip.Addr{e.Primary}, e.Secondaries...)
	if all[0] != netip.MustParseAddr("10.2.0.4") || all[10] != netip.MustParseAddr("10.2.0.14") {
		t.Errorf("addresses %v: want 10.2.0.4 to .14 (AWS keeps the first four and the last)", all)
	}
	_, err = m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: sub.ID})
	wantCode(t, err, cloud.InsufficientFreeAddressesInSubnet, string(sub.ID), "10.2.0.0/28")
	_, err = m.CreateSubnet(ctx, netip.MustParsePrefix("10.2.0.0/27"), "az-a")
	wantCode(t, err, cloud.InvalidSubnetConflict, "10.2.0.0/28")
}

func TestNotFoundAndBadParameters(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large")
	for _, c := range []struct {
		name string
		err  error
		code cloud.Code
		says string
	}{
		{"delete unknown ENI", w.m.DeleteNetworkInterface(ctx, "eni-nope"), cloud.InvalidNetworkInterfaceIDNotFound, "eni-nope"},
		{"attach to unknown instance", func() error {
			_, err := w.m.AttachNetworkInterface(ctx, cloud.AttachNetworkInterfaceInput{ENI: w.inst.ENIs[0], Instance: "i-nope"})
			return err
		}(), cloud.InvalidInstanceIDNotFound, "i-nope"},
		{"detach unknown attachment", w.m.DetachNetworkInterface(ctx, cloud.DetachNetworkInterfaceInput{Attachment: "eni-attach-nope"}), cloud.InvalidAttachmentIDNotFound, "eni-attach-nope"},
		{"count and addresses", func() error {
			_, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: w.inst.ENIs[0], Count: 1, Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.50")}})
			return err
		}(), cloud.InvalidParameterCombination, string(w.inst.ENIs[0])},
		{"address outside the subnet", func() error {
			_, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: w.inst.ENIs[0], Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.50")}})
			return err
		}(), cloud.InvalidParameterValue, "10.9.0.50"},
		{"unknown instance type", func() error {
			_, err := w.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "n2", Type: "z9.huge", Subnet: w.sub.ID})
			return err
		}(), cloud.InvalidParameterValue, "z9.huge"},
		{"detach the primary ENI", func() error {
			in, _ := w.m.DescribeNetworkInterface(ctx, w.inst.ENIs[0])
			return w.m.DetachNetworkInterface(ctx, cloud.DetachNetworkInterfaceInput{Attachment: in.Attachment.ID})
		}(), cloud.OperationNotPermitted, string(w.inst.ENIs[0])},
		{"delete an attached ENI", w.m.DeleteNetworkInterface(ctx, w.inst.ENIs[0]), cloud.InvalidNetworkInterfaceInUse, string(w.inst.ID)},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.err, c.code, c.says) })
	}
}

// TestDriftMovesAddressAndFloatingIP: a pod's address moves to an ENI of
// another node with AllowReassignment, and its Elastic IP goes with it;
// without AllowReassignment the move is refused.
func TestDriftMovesAddressAndFloatingIP(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large")
	n2, err := w.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "node-2", Type: "m5.large", Subnet: w.sub.ID})
	if err != nil {
		t.Fatal(err)
	}
	from, to := w.inst.ENIs[0], n2.ENIs[0]
	got, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: from, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	pod := got[0]
	eip, err := w.m.AllocateAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.AssociateAddress(ctx, cloud.AssociateAddressInput{Allocation: eip.AllocationID, ENI: from, PrivateIP: pod}); err != nil {
		t.Fatal(err)
	}
	_, err = w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: to, Addresses: []netip.Addr{pod}})
	wantCode(t, err, cloud.InvalidIPAddressInUse, pod.String(), string(from))
	if _, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: to, Addresses: []netip.Addr{pod}, AllowReassignment: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := w.m.DescribeAddress(ctx, eip.AllocationID)
	if a.ENI != to || a.PrivateIP != pod {
		t.Errorf("Elastic IP after the move: on %s %s, want %s %s", a.ENI, a.PrivateIP, to, pod)
	}
	f, _ := w.m.DescribeNetworkInterface(ctx, from)
	if len(f.Secondaries) != 0 {
		t.Errorf("old ENI still holds %v", f.Secondaries)
	}
	// Unassigning the address disassociates its Elastic IP; then it can go.
	if err := w.m.UnassignPrivateIpAddresses(ctx, cloud.UnassignPrivateIPAddressesInput{ENI: to, Addresses: []netip.Addr{pod}}); err != nil {
		t.Fatal(err)
	}
	if a, _ = w.m.DescribeAddress(ctx, eip.AllocationID); a.AssociationID != "" {
		t.Errorf("Elastic IP still associated: %+v", a)
	}
	if err := w.m.ReleaseAddress(ctx, eip.AllocationID); err != nil {
		t.Fatal(err)
	}
}

func TestElasticIPLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large")
	var ips []cloud.Address
	for range 5 {
		a, err := w.m.AllocateAddress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, a)
	}
	_, err := w.m.AllocateAddress(ctx)
	wantCode(t, err, cloud.AddressLimitExceeded, "5")
	if _, err := w.m.AssociateAddress(ctx, cloud.AssociateAddressInput{Allocation: ips[0].AllocationID, ENI: w.inst.ENIs[0]}); err != nil {
		t.Fatal(err)
	}
	_, err = w.m.AssociateAddress(ctx, cloud.AssociateAddressInput{Allocation: ips[0].AllocationID, ENI: w.inst.ENIs[0]})
	wantCode(t, err, cloud.ResourceAlreadyAssociated, ips[0].PublicIP.String())
	err = w.m.ReleaseAddress(ctx, ips[0].AllocationID)
	wantCode(t, err, cloud.InvalidIPAddressInUse, ips[0].PublicIP.String())
}

// TestThrottling: AssignPrivateIpAddresses' bucket (100 tokens, 5 a
// second) lets 100 calls through at once, rejects the 101st with
// RequestLimitExceeded without changing anything, and lets calls through
// again as the bucket refills with time.
func TestThrottling(t *testing.T) {
	ctx := context.Background()
	lim := cloud.DefaultLimits()
	for name, a := range lim.Actions {
		a.Latency = 0 // time moves only when the test says
		lim.Actions[name] = a
	}
	a := lim.Actions["AssignPrivateIpAddresses"]
	clock := &cloud.StepClock{}
	m := cloud.New(clock, lim)
	sub, _ := m.CreateSubnet(ctx, netip.MustParsePrefix("10.3.0.0/16"), "az-a")
	enis := make([]cloud.ENIID, 20)
	for i := range enis {
		e, err := m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: sub.ID})
		if err != nil {
			t.Fatal(err)
		}
		enis[i] = e.ID
	}
	assign := func(i int) error {
		_, err := m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: enis[i%len(enis)], Count: 1})
		return err
	}
	for i := range a.Bucket.Capacity {
		if err := assign(i); err != nil {
			t.Fatalf("call %d of a full bucket: %v", i, err)
		}
	}
	err := assign(0)
	wantCode(t, err, cloud.RequestLimitExceeded, "AssignPrivateIpAddresses")
	if !cloud.Throttled(err) {
		t.Error("Throttled(err) = false")
	}
	e, _ := m.DescribeNetworkInterface(ctx, enis[0])
	if len(e.Secondaries) != a.Bucket.Capacity/len(enis) {
		t.Errorf("a throttled call changed the ENI: %d secondaries", len(e.Secondaries))
	}
	// Another action has a bucket of its own.
	if _, err := m.DescribeNetworkInterface(ctx, enis[1]); err != nil {
		t.Errorf("another action throttled with it: %v", err)
	}
	clock.Advance(time.Second) // 5 tokens
	for i := range 5 {
		if err := assign(i); err != nil {
			t.Fatalf("call %d after a second: %v", i, err)
		}
	}
	wantCode(t, assign(0), cloud.RequestLimitExceeded)
	clock.Advance(200 * time.Millisecond) // one token
	if err := assign(1); err != nil {
		t.Fatalf("after 200 ms: %v", err)
	}
	s := m.Stats()
	if s.Throttled["AssignPrivateIpAddresses"] != 2 || s.Calls["AssignPrivateIpAddresses"] != 108 {
		t.Errorf("stats: %d throttled of %d calls, want 2 of 108", s.Throttled["AssignPrivateIpAddresses"], s.Calls["AssignPrivateIpAddresses"])
	}
}

// TestLatency: every call takes its action's latency on the clock.
func TestLatency(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large")
	start := w.clock.Now()
	if _, err := w.m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: w.inst.ENIs[0], Count: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := w.clock.Now()-start, w.m.Limits().Actions["AssignPrivateIpAddresses"].Latency; got != want || want == 0 {
		t.Errorf("call took %v, want %v", got, want)
	}
}

// TestConcurrentCalls: many goroutines creating ENIs and assigning
// addresses at once never get one address twice (run with -race).
func TestConcurrentCalls(t *testing.T) {
	ctx := context.Background()
	lim := cloud.DefaultLimits()
	for name, a := range lim.Actions {
		a.Latency, a.Bucket = 0, cloud.Bucket{} // no latency, no throttling
		lim.Actions[name] = a
	}
	m := cloud.New(&cloud.StepClock{}, lim)
	sub, err := m.CreateSubnet(ctx, netip.MustParsePrefix("10.4.0.0/22"), "az-a")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	ids := make(chan cloud.ENIID, workers*each)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				e, err := m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: sub.ID, SecondaryCount: 2})
				if err == nil {
					_, err = m.AssignPrivateIpAddresses(ctx, cloud.AssignPrivateIPAddressesInput{ENI: e.ID, Count: 3})
				}
				if err != nil {
					errs <- err
					return
				}
				ids <- e.ID
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	seen := map[netip.Addr]cloud.ENIID{}
	for id := range ids {
		e, err := m.DescribeNetworkInterface(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range append([]netip.Addr{e.Primary}, e.Secondaries...) {
			if other, dup := seen[a]; dup {
				t.Fatalf("%s on %s and %s", a, other, id)
			}
			seen[a] = id
		}
	}
	if len(seen) != workers*each*6 {
		t.Errorf("%d addresses, want %d", len(seen), workers*each*6)
	}
}

// TestObserver: every call is seen with its time, duration and code.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	var calls []cloud.Call
	clock := &cloud.StepClock{}
	m := cloud.New(clock, nil, cloud.WithObserver(func(c cloud.Call) { calls = append(calls, c) }))
	if _, err := m.CreateSubnet(ctx, netip.MustParsePrefix("10.5.0.0/24"), "a"); err != nil {
		t.Fatal(err)
	}
	_ = m.DeleteNetworkInterface(ctx, "eni-nope")
	lat := m.Limits().Actions
	want := []cloud.Call{
		{At: 0, Action: "CreateSubnet", Took: lat["CreateSubnet"].Latency},
		{At: lat["CreateSubnet"].Latency, Action: "DeleteNetworkInterface", Took: lat["DeleteNetworkInterface"].Latency, Code: cloud.InvalidNetworkInterfaceIDNotFound},
	}
	if !slices.Equal(calls, want) {
		t.Errorf("observed %+v\nwant %+v", calls, want)
	}
	if s := m.Stats(); s.Errors[cloud.InvalidNetworkInterfaceIDNotFound] != 1 || s.Calls["CreateSubnet"] != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestRealClock: on the wall clock (netns) a call sleeps its latency for
// real; Sleep's guarantee makes the bound exact.
func TestRealClock(t *testing.T) {
	ctx := context.Background()
	lim := cloud.DefaultLimits()
	for name, a := range lim.Actions {
		a.Latency = time.Millisecond
		lim.Actions[name] = a
	}
	clock := cloud.NewRealClock()
	m := cloud.New(clock, lim)
	start := clock.Now()
	if _, err := m.CreateSubnet(ctx, netip.MustParsePrefix("10.6.0.0/24"), "a"); err != nil {
		t.Fatal(err)
	}
	if took := clock.Now() - start; took < time.Millisecond {
		t.Errorf("call took %v on the wall clock, its latency is 1ms", took)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.CreateSubnet(cancelled, netip.MustParsePrefix("10.7.0.0/24"), "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
}
