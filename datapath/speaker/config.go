package speaker

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/netbed/netbed/datapath/bfd"
)

// ErrConfig marks every error about a speaker's configuration.
var ErrConfig = errors.New("invalid BGP configuration")

// Config is one speaker: a switch's or a node's BGP process.
type Config struct {
	// Node names the speaker in errors and logs.
	Node     string
	ASN      uint32
	RouterID netip.Addr
	// Listen are the addresses to accept sessions on; empty: all.
	Listen []netip.Addr
	// Port is the TCP port to listen on: 0 means 179, -1 not listening
	// (every peer is then dialled).
	Port int32 `json:",omitempty"`
	// GRPC is the unix socket path where the speaker serves GoBGP's gRPC
	// API: netbed drives the speaker through it, and so can the stock
	// gobgp CLI (gobgp --target unix://<path> neighbor).
	GRPC string
	// ClusterID is the route-reflection cluster (default: RouterID) when
	// a peer is a route-reflector client.
	ClusterID netip.Addr
	Peers     []Peer
	Timers    Timers
	// EVPNNextHopUnchanged keeps the next hop of the EVPN routes this
	// speaker passes on to eBGP peers (an RFC 7938 spine: the next hop is
	// the originating leaf's VTEP, which a spine must not replace with its
	// own address); other families still get the speaker's address.
	EVPNNextHopUnchanged bool `json:",omitempty"`
	// BFD, if set, runs a BFD session beside every peer on a connected
	// subnet and takes the BGP session down when BFD says the peer is
	// gone (RFC 5882), long before the hold timer would.
	BFD *BFD `json:",omitempty"`
}

// BFD sets the speaker's BFD sessions (package bfd); zero fields take
// its defaults (300 ms, multiplier 3: a silent peer is gone after 900 ms).
type BFD struct {
	MinTx      time.Duration `json:",omitempty"`
	MinRx      time.Duration `json:",omitempty"`
	Multiplier uint8         `json:",omitempty"`
	// Port is the UDP port (default 3784; tests use others).
	Port int `json:",omitempty"`
}

func (b *BFD) session() bfd.Config {
	return bfd.Config{DesiredMinTx: b.MinTx, RequiredMinRx: b.MinRx, DetectMult: b.Multiplier}
}

// Peer is one BGP neighbour.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// Port is the peer's BGP port (default 179).
	Port uint16
	// Passive waits for the peer to connect. GoBGP delays its first
	// connect by a random 1–2 s and, after a session drops, both sides
	// back off; with one side passive the other reconnects at its own
	// connect-retry pace.
	Passive bool
	// RRClient makes this speaker a route reflector for the peer (iBGP).
	RRClient bool
	// Families the session carries; default EVPN.
	Families []Family
	// Local is the address to connect from (default: the kernel's choice).
	Local netip.Addr
}

// Timers are the session timers. Zero values take the defaults.
type Timers struct {
	Hold         time.Duration // default 9 s; NoHold: none
	Keepalive    time.Duration // default Hold/3
	ConnectRetry time.Duration // default 1 s
}

// NoHold is Timers.Hold for sessions that never time out (RFC 4271's
// hold time 0). GoBGP's API reads a hold time of 0 as "the default"
// (90 s), so the speaker offers the largest hold time an OPEN carries,
// 65535 s (18 hours), with keepalives every third of it: within a run,
// a silent peer is never noticed, as with 0.
const NoHold time.Duration = -1

// maxHold is the largest hold time an OPEN message carries.
const maxHold = 65535 * time.Second

// Defaults: a data-centre fabric's short timers (RFC 7938 suggests
// tuning them down from BGP's 90/30 s).
const (
	DefaultHold         = 9 * time.Second
	DefaultConnectRetry = time.Second
)

// Family is an address family a session carries.
type Family string

// Families.
const (
	EVPN        Family = "l2vpn-evpn"
	IPv4Unicast Family = "ipv4-unicast"
)

var families = map[Family]*api.Family{
	EVPN:        {Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN},
	IPv4Unicast: {Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
}

// Validate reports every problem of c at once, each naming the node and
// the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: node %s: %s: %s", ErrConfig, c.Node, field, fmt.Sprintf(format, a...)))
	}
	if c.ASN == 0 {
		bad("asn", "0 is reserved (RFC 7607); give the node an AS number")
	}
	if c.GRPC == "" {
		bad("grpc", "missing: the speaker is driven through its gRPC socket")
	}
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		bad("router_id", "%v is not an IPv4 address other than 0.0.0.0", c.RouterID)
	}
	switch t := c.Timers; {
	case t.Hold > 0 && (t.Hold < 3*time.Second || t.Hold > maxHold || t.Hold%time.Second != 0):
		bad("timers.hold", "%v: a hold time is 0 or whole seconds from 3s to 65535s (RFC 4271)", t.Hold)
	case t.Hold < 0 && t.Hold != NoHold:
		bad("timers.hold", "%v is negative; NoHold means none", t.Hold)
	case t.Keepalive < 0 || t.Keepalive%time.Second != 0:
		bad("timers.keepalive", "%v: whole seconds", t.Keepalive)
	case t.Keepalive > 0 && t.Hold == NoHold:
		bad("timers.keepalive", "%v: with no hold timer no keepalives are sent", t.Keepalive)
	case t.Keepalive > 0 && t.Keepalive >= cmp.Or(t.Hold, DefaultHold):
		bad("timers.keepalive", "%v is not below the hold time %v", t.Keepalive, cmp.Or(t.Hold, DefaultHold))
	}
	seen := map[netip.Addr]bool{}
	for i, p := range c.Peers {
		field := fmt.Sprintf("peers[%d]", i)
		switch {
		case !p.Address.IsValid():
			bad(field+".address", "missing")
		case seen[p.Address]:
			bad(field+".address", "%s is configured twice", p.Address)
		}
		seen[p.Address] = true
		if p.ASN == 0 {
			bad(field+".asn", "0 is reserved (RFC 7607)")
		}
		if p.RRClient && p.ASN != c.ASN {
			bad(field+".rr_client", "a route-reflector client must be iBGP (peer AS %d, local AS %d)", p.ASN, c.ASN)
		}
		for _, f := range p.Families {
			if families[f] == nil {
				bad(field+".families", "unknown family %q (l2vpn-evpn, ipv4-unicast)", f)
			}
		}
	}
	return errors.Join(errs...)
}
