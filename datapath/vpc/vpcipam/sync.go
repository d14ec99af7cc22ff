package vpcipam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// Dataplane carries out what the cloud did (the vpc fabric, each call
// made while no node runs).
type Dataplane interface {
	AttachENI(host string, e vpc.ENI) error
	DetachENI(id string) error
	AssignAddress(eni string, a netip.Addr) error
	UnassignAddress(a netip.Addr) error
	AssociateFloatingIP(pub, priv netip.Addr) error
	DisassociateFloatingIP(pub netip.Addr) error
}

// Synced is a cloud.API whose every successful call is carried out in a
// data plane at once, as the provider programs its hypervisors and its
// router when a call returns: an attached ENI appears on its VM with its
// addresses, an assigned address is routed to its ENI (moved, on a
// reassignment), a floating IP is NATed at the gateway. It also reports
// every call to an observer (the spawn timeline).
type Synced struct {
	cloud.API
	dp Dataplane

	mu       sync.Mutex
	hosts    map[cloud.InstanceID]string
	index    map[cloud.InstanceID]map[int]bool
	created  map[cloud.ENIID]cloud.NetworkInterface
	attached map[cloud.AttachmentID]cloud.ENIID
	pubs     map[cloud.AllocationID]netip.Addr
	assocs   map[cloud.AssociationID]cloud.AllocationID
	where    map[netip.Addr]cloud.ENIID
	observe  func(action string, err error)
}

var _ cloud.API = (*Synced)(nil)

// NewSynced wraps api: what it does is carried out in dp.
func NewSynced(api cloud.API, dp Dataplane) *Synced {
	return &Synced{API: api, dp: dp, hosts: map[cloud.InstanceID]string{}, index: map[cloud.InstanceID]map[int]bool{},
		created: map[cloud.ENIID]cloud.NetworkInterface{}, attached: map[cloud.AttachmentID]cloud.ENIID{},
		pubs: map[cloud.AllocationID]netip.Addr{}, assocs: map[cloud.AssociationID]cloud.AllocationID{},
		where: map[netip.Addr]cloud.ENIID{}}
}

// Observe has f see every call's action and error after it returns.
func (s *Synced) Observe(f func(action string, err error)) {
	s.mu.Lock()
	s.observe = f
	s.mu.Unlock()
}

func (s *Synced) done(action string, err error) error {
	s.mu.Lock()
	f := s.observe
	s.mu.Unlock()
	if f != nil {
		f(action, err)
	}
	return err
}

func (s *Synced) attach(host string, inst cloud.InstanceID, e cloud.NetworkInterface, index int) error {
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return fmt.Errorf("interface %s: MAC %q: %w", e.ID, e.MAC, err)
	}
	if err := s.dp.AttachENI(host, vpc.ENI{ID: string(e.ID), Index: index, MAC: mac, Subnet: e.CIDR, Primary: e.Primary}); err != nil {
		return err
	}
	for _, a := range e.Secondaries {
		if err := s.dp.AssignAddress(string(e.ID), a); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, a := range e.Secondaries {
		s.where[a] = e.ID
	}
	if s.index[inst] == nil {
		s.index[inst] = map[int]bool{}
	}
	s.index[inst][index] = true
	s.mu.Unlock()
	return nil
}

// RunInstance implements cloud.API: the instance's primary ENI is read
// (one DescribeNetworkInterfaces call, as ipamd makes at its start) and
// attached in the data plane as device 0.
func (s *Synced) RunInstance(ctx context.Context, in cloud.RunInstanceInput) (cloud.Instance, error) {
	inst, err := s.API.RunInstance(ctx, in)
	if err = s.done("RunInstances", err); err != nil {
		return inst, err
	}
	s.mu.Lock()
	s.hosts[inst.ID] = in.Name
	s.mu.Unlock()
	e, err := s.DescribeNetworkInterface(ctx, inst.ENIs[0])
	if err != nil {
		return inst, err
	}
	return inst, s.attach(in.Name, inst.ID, e, 0)
}

// DescribeNetworkInterface implements cloud.API.
func (s *Synced) DescribeNetworkInterface(ctx context.Context, id cloud.ENIID) (cloud.NetworkInterface, error) {
	e, err := s.API.DescribeNetworkInterface(ctx, id)
	return e, s.done("DescribeNetworkInterfaces", err)
}

// CreateNetworkInterface implements cloud.API.
func (s *Synced) CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error) {
	e, err := s.API.CreateNetworkInterface(ctx, in)
	if err == nil {
		s.mu.Lock()
		s.created[e.ID] = e
		s.mu.Unlock()
	}
	return e, s.done("CreateNetworkInterface", err)
}

// AttachNetworkInterface implements cloud.API: the ENI appears on its VM
// at the index the provider chose (the lowest free one for -1).
func (s *Synced) AttachNetworkInterface(ctx context.Context, in cloud.AttachNetworkInterfaceInput) (cloud.AttachmentID, error) {
	id, err := s.API.AttachNetworkInterface(ctx, in)
	if err = s.done("AttachNetworkInterface", err); err != nil {
		return id, err
	}
	s.mu.Lock()
	e, ok := s.created[in.ENI]
	host := s.hosts[in.Instance]
	idx := in.DeviceIndex
	if idx < 0 {
		for idx = 0; s.index[in.Instance][idx]; idx++ {
		}
	}
	s.attached[id] = in.ENI
	s.mu.Unlock()
	if !ok {
		return id, fmt.Errorf("attach %s: the interface was not created through this API", in.ENI)
	}
	return id, s.attach(host, in.Instance, e, idx)
}

// DetachNetworkInterface implements cloud.API.
func (s *Synced) DetachNetworkInterface(ctx context.Context, in cloud.DetachNetworkInterfaceInput) error {
	err := s.done("DetachNetworkInterface", s.API.DetachNetworkInterface(ctx, in))
	if err != nil {
		return err
	}
	s.mu.Lock()
	eid := s.attached[in.Attachment]
	delete(s.attached, in.Attachment)
	s.mu.Unlock()
	return s.dp.DetachENI(string(eid))
}

// DeleteNetworkInterface implements cloud.API.
func (s *Synced) DeleteNetworkInterface(ctx context.Context, id cloud.ENIID) error {
	return s.done("DeleteNetworkInterface", s.API.DeleteNetworkInterface(ctx, id))
}

// AssignPrivateIpAddresses implements cloud.API: the addresses are routed
// to the ENI (taken from the ENI that had them).
func (s *Synced) AssignPrivateIpAddresses(ctx context.Context, in cloud.AssignPrivateIPAddressesInput) ([]netip.Addr, error) {
	got, err := s.API.AssignPrivateIpAddresses(ctx, in)
	if err = s.done("AssignPrivateIpAddresses", err); err != nil {
		return got, err
	}
	for _, a := range got {
		if err := s.dp.AssignAddress(string(in.ENI), a); err != nil {
			return got, err
		}
		s.mu.Lock()
		s.where[a] = in.ENI
		s.mu.Unlock()
	}
	return got, nil
}

// UnassignPrivateIpAddresses implements cloud.API.
func (s *Synced) UnassignPrivateIpAddresses(ctx context.Context, in cloud.UnassignPrivateIPAddressesInput) error {
	if err := s.done("UnassignPrivateIpAddresses", s.API.UnassignPrivateIpAddresses(ctx, in)); err != nil {
		return err
	}
	var errs []error
	for _, a := range in.Addresses {
		errs = append(errs, s.dp.UnassignAddress(a))
		s.mu.Lock()
		delete(s.where, a)
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// AllocateAddress implements cloud.API.
func (s *Synced) AllocateAddress(ctx context.Context) (cloud.Address, error) {
	a, err := s.API.AllocateAddress(ctx)
	if err == nil {
		s.mu.Lock()
		s.pubs[a.AllocationID] = a.PublicIP
		s.mu.Unlock()
	}
	return a, s.done("AllocateAddress", err)
}

// AssociateAddress implements cloud.API: the floating IP is NATed to the
// private address at the internet gateway.
func (s *Synced) AssociateAddress(ctx context.Context, in cloud.AssociateAddressInput) (cloud.AssociationID, error) {
	id, err := s.API.AssociateAddress(ctx, in)
	if err = s.done("AssociateAddress", err); err != nil {
		return id, err
	}
	s.mu.Lock()
	pub := s.pubs[in.Allocation]
	s.assocs[id] = in.Allocation
	s.mu.Unlock()
	return id, s.dp.AssociateFloatingIP(pub, in.PrivateIP)
}

// DisassociateAddress implements cloud.API.
func (s *Synced) DisassociateAddress(ctx context.Context, id cloud.AssociationID) error {
	if err := s.done("DisassociateAddress", s.API.DisassociateAddress(ctx, id)); err != nil {
		return err
	}
	s.mu.Lock()
	pub := s.pubs[s.assocs[id]]
	delete(s.assocs, id)
	s.mu.Unlock()
	return s.dp.DisassociateFloatingIP(pub)
}

// ReleaseAddress implements cloud.API.
func (s *Synced) ReleaseAddress(ctx context.Context, id cloud.AllocationID) error {
	err := s.done("ReleaseAddress", s.API.ReleaseAddress(ctx, id))
	if err == nil {
		s.mu.Lock()
		delete(s.pubs, id)
		s.mu.Unlock()
	}
	return err
}

// Holder returns the ENI a secondary address was last assigned to.
func (s *Synced) Holder(a netip.Addr) (cloud.ENIID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.where[a]
	if !ok {
		return "", fmt.Errorf("%v is on no ENI", a)
	}
	return e, nil
}
