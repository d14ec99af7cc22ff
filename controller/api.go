package controller

import (
	"context"
	"net/netip"
)

// API is what the network service offers, in process (*Service) or over
// HTTP (*api.Client): code that drives the controller takes an API and runs
// against either.
type API interface {
	CreateNetwork(ctx context.Context, r NetworkRequest) (Network, error)
	GetNetwork(ctx context.Context, ref string) (Network, error)
	ListNetworks(ctx context.Context, label string) ([]Network, error)
	CreateSubnet(ctx context.Context, r SubnetRequest) (Subnet, error)
	ListSubnets(ctx context.Context, network string) ([]Subnet, error)
	DeleteSubnet(ctx context.Context, id string) (Subnet, error)
	DeleteNetwork(ctx context.Context, ref string) (Network, error)

	CreatePort(ctx context.Context, r PortRequest) (Port, error)
	EnsurePort(ctx context.Context, r PortRequest) (Port, bool, error)
	GetPort(ctx context.Context, name string) (Port, error)
	WaitPort(ctx context.Context, name string, want Status) (Port, error)
	ListPorts(ctx context.Context) ([]Port, error)
	PortsOnHost(ctx context.Context, host string) ([]Port, error)
	BindPort(ctx context.Context, name, host string) (Port, error)
	DeletePort(ctx context.Context, name string) (Port, error)
	SetUnderlayState(ctx context.Context, name string, u StateUpdate) (Port, error)
	SetOverlayState(ctx context.Context, name string, u StateUpdate) (Port, error)

	AllocateBatch(ctx context.Context, r AllocRequest) ([]Allocation, error)
	Reserve(ctx context.Context, network string, a netip.Addr, holder string) (Allocation, error)
	Release(ctx context.Context, network string, addrs []netip.Addr, holder string) error

	// Generation 3's node blocks of the cluster pool.
	EnsureNode(ctx context.Context, name string) (Node, bool, error)
	ListNodes(ctx context.Context) ([]Node, error)
	DeleteNode(ctx context.Context, name string) (Node, error)

	Check(ctx context.Context) ([]string, error)
}

var _ API = (*Service)(nil)
