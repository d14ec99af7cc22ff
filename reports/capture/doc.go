// Package capture records every frame on a lab's interfaces with packet
// sockets into pcapng files (one per namespace, readable by Wireshark) and
// correlates the probe frames by their ID into per-hop timestamps and
// one-way latency.
package capture
