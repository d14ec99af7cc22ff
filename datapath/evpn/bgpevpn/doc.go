// Package bgpevpn converts the EVPN routes of an evpn.RouteTable to and from
// BGP EVPN updates (RFC 7432, RFC 8365 for VXLAN, RFC 9136 for type 5) as
// GoBGP encodes them, so that a BGP speaker can fill the table; it does no
// I/O.
package bgpevpn
