// Package capture records every frame on a lab's interfaces into pcapng
// files (one per namespace, readable by Wireshark), reading packet sockets
// through receive rings whose timestamps the kernel takes as it handles
// each frame, and correlates the probe frames by their ID into per-hop
// timestamps and one-way latency.
package capture
