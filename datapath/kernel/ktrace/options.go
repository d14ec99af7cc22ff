package ktrace

import "errors"

// ErrClosed is returned by a Tracer's methods after Close.
var ErrClosed = errors.New("tracer closed")

// Options configure New.
type Options struct {
	// Resolver names the namespace and device of each event. Events in
	// namespaces it does not know are not reported. Without one, every
	// event is reported with Node "netns:<inode>" and Iface "if<index>".
	Resolver Resolver
	// VXLANPorts are the UDP ports whose packets are matched on their
	// inner headers (default 4789 and 8472).
	VXLANPorts []uint16
	// MaxKeys is how many keys can be watched at once (default 16384).
	MaxKeys int
	// RingBytes is the ring buffer's size, a power of two and a multiple
	// of the page size (default 4 MiB, about 70,000 events).
	RingBytes int
}

func (o Options) withDefaults() Options {
	if o.VXLANPorts == nil {
		o.VXLANPorts = []uint16{4789, 8472}
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 16384
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 4 << 20
	}
	return o
}

// Resolver names where a packet was seen.
type Resolver interface {
	// Resolve returns the node (or instance) whose namespace has inode
	// netns, and the name of its device ifindex ("" for 0); ok is false
	// when the namespace is not one of the lab's.
	Resolve(netns, ifindex uint32) (node, iface string, ok bool)
}
