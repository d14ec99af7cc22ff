// Package l2 is the MAC address table every learning switch model uses:
// entries keyed by VLAN and MAC, learned from source addresses, aged lazily
// against the caller's clock, and flushed per port or per VLAN.
package l2
