// Package bfd is Bidirectional Forwarding Detection in asynchronous mode
// for single-hop sessions (RFC 5880, RFC 5881: UDP port 3784, TTL 255):
// the control packet's wire format, a session's state machine driven by
// the caller's clock (Session), and a runner that carries it over UDP in
// real time (Run). It detects that a directly connected neighbour stopped
// forwarding within DetectMult × interval (900 ms by default) where BGP
// waits for its hold timer; netbed's speakers take their sessions down
// when it says so. Not built: demand mode, the echo function,
// authentication, and checking a received packet's TTL.
package bfd
