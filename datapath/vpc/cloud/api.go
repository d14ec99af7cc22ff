package cloud

import (
	"context"
	"net/netip"
	"time"
)

// Identifiers, in the provider's shapes ("i-…", "eni-…", "subnet-…",
// "eipalloc-…", "eipassoc-…", "eni-attach-…").
type (
	InstanceID    string
	ENIID         string
	SubnetID      string
	AllocationID  string
	AssociationID string
	AttachmentID  string
)

// Subnet is a VPC subnet. The provider keeps five of its addresses (the
// network address, the router, DNS, one for future use, and broadcast):
// they are never assigned.
type Subnet struct {
	ID   SubnetID
	CIDR netip.Prefix
	// Zone is the availability zone the subnet lies in.
	Zone string
}

// Instance is a VM of an instance type with its primary ENI (device index
// 0) in a subnet.
type Instance struct {
	ID   InstanceID
	Type string // "m5.large"
	// Name is the caller's name for it (the node's host name).
	Name   string
	Subnet SubnetID
	// ENIs are the attached interfaces by device index; ENIs[0] is the
	// primary, created with the instance.
	ENIs []ENIID
}

// Attachment says where an ENI is attached.
type Attachment struct {
	ID          AttachmentID
	Instance    InstanceID
	DeviceIndex int
}

// NetworkInterface is an ENI. It belongs to one subnet; its addresses are
// the primary (fixed for the ENI's life) and the secondaries assigned to it.
type NetworkInterface struct {
	ID     ENIID
	Subnet SubnetID
	CIDR   netip.Prefix // the subnet's
	// MAC is the interface's locally administered MAC address.
	MAC         string
	Primary     netip.Addr
	Secondaries []netip.Addr
	// Attachment is nil while the ENI is available (not attached).
	Attachment  *Attachment
	Description string
}

// Address is a floating (Elastic) IP.
type Address struct {
	AllocationID AllocationID
	PublicIP     netip.Addr
	// Associated: the association and where it points; zero values when
	// the address is not associated.
	AssociationID AssociationID
	ENI           ENIID
	PrivateIP     netip.Addr
}

// RunInstanceInput asks for one instance.
type RunInstanceInput struct {
	Name   string
	Type   string
	Subnet SubnetID
	// PrivateIP is the primary ENI's primary address; zero: the provider
	// picks one.
	PrivateIP netip.Addr
}

// CreateNetworkInterfaceInput is CreateNetworkInterface's request.
type CreateNetworkInterfaceInput struct {
	Subnet SubnetID
	// PrivateIP is the primary address; zero: the provider picks one.
	PrivateIP netip.Addr
	// SecondaryCount secondaries are assigned with it (the AWS VPC CNI
	// creates ENIs already full).
	SecondaryCount int
	Description    string
}

// AttachNetworkInterfaceInput is AttachNetworkInterface's request.
type AttachNetworkInterfaceInput struct {
	ENI      ENIID
	Instance InstanceID
	// DeviceIndex must be free on the instance and below its ENI limit;
	// -1: the lowest free index (the provider requires it; netbed's
	// callers rarely care).
	DeviceIndex int
}

// DetachNetworkInterfaceInput is DetachNetworkInterface's request.
type DetachNetworkInterfaceInput struct {
	Attachment AttachmentID
	// Force is accepted as EC2 accepts it; it changes nothing here. The
	// primary ENI (device index 0) can never be detached.
	Force bool
}

// AssignPrivateIPAddressesInput is AssignPrivateIpAddresses' request: a
// count of addresses the provider picks, or specific addresses, not both.
type AssignPrivateIPAddressesInput struct {
	ENI   ENIID
	Count int
	// Addresses must lie in the ENI's subnet. One held by another ENI is
	// moved only with AllowReassignment (how a drifting pod's address
	// follows it to an ENI of its new node); otherwise the call fails
	// with InvalidIPAddressInUse.
	Addresses         []netip.Addr
	AllowReassignment bool
}

// UnassignPrivateIPAddressesInput is UnassignPrivateIpAddresses' request.
// The primary address cannot be unassigned.
type UnassignPrivateIPAddressesInput struct {
	ENI       ENIID
	Addresses []netip.Addr
}

// AssociateAddressInput is AssociateAddress's request: the floating IP
// maps one-to-one to PrivateIP on ENI (zero PrivateIP: the ENI's primary).
type AssociateAddressInput struct {
	Allocation AllocationID
	ENI        ENIID
	PrivateIP  netip.Addr
	// AllowReassociation moves an address that is already associated;
	// without it that is a Resource.AlreadyAssociated error.
	AllowReassociation bool
}

// API is the cloud's network API. Every call takes the configured latency
// for its action (in the Clock's time) and one token of its action's
// throttling bucket; a call without a token fails at once with
// RequestLimitExceeded and changes nothing, and so does any call that
// returns an error. Implementations are safe for concurrent use.
//
// Deleting what does not exist is an error (the provider's NotFound
// codes), as on EC2; callers that clean up treat it as done.
type API interface {
	CreateSubnet(ctx context.Context, cidr netip.Prefix, zone string) (Subnet, error)
	RunInstance(ctx context.Context, in RunInstanceInput) (Instance, error)
	TerminateInstance(ctx context.Context, id InstanceID) error
	DescribeInstance(ctx context.Context, id InstanceID) (Instance, error)

	CreateNetworkInterface(ctx context.Context, in CreateNetworkInterfaceInput) (NetworkInterface, error)
	AttachNetworkInterface(ctx context.Context, in AttachNetworkInterfaceInput) (AttachmentID, error)
	DetachNetworkInterface(ctx context.Context, in DetachNetworkInterfaceInput) error
	DeleteNetworkInterface(ctx context.Context, id ENIID) error
	DescribeNetworkInterface(ctx context.Context, id ENIID) (NetworkInterface, error)

	// AssignPrivateIpAddresses returns the addresses assigned.
	AssignPrivateIpAddresses(ctx context.Context, in AssignPrivateIPAddressesInput) ([]netip.Addr, error)
	UnassignPrivateIpAddresses(ctx context.Context, in UnassignPrivateIPAddressesInput) error

	AllocateAddress(ctx context.Context) (Address, error)
	AssociateAddress(ctx context.Context, in AssociateAddressInput) (AssociationID, error)
	DisassociateAddress(ctx context.Context, id AssociationID) error
	ReleaseAddress(ctx context.Context, id AllocationID) error
	DescribeAddress(ctx context.Context, id AllocationID) (Address, error)
}

// Clock is the time the model lives in: its latencies are slept and its
// throttling buckets refill in it. scenarios.Runtime satisfies it (the sim
// runtime's virtual time; netns's real time); RealClock is the wall clock.
// Now is the time since an origin of the clock's choosing.
type Clock interface {
	Now() time.Duration
	Sleep(ctx context.Context, d time.Duration) error
}
