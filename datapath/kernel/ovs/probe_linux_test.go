package ovs

import (
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath/kernel/kerneltest"
)

// inNS runs fn inside the named namespace.
func inNS(name string, fn func() error) error { return kerneltest.In(name)(fn) }

// tcpTransfer sends n bytes over TCP from namespace from to a listener in
// namespace to at addr, and checks they all arrive.
func tcpTransfer(from, to string, addr netip.Addr, n int) error {
	return kerneltest.TCPTransfer(kerneltest.In(from), kerneltest.In(to), netip.Addr{}, addr, n, 30*time.Second)
}
