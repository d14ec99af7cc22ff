// Package frame parses and builds the real Ethernet frames every datapath
// model forwards: Ethernet, 802.1Q, ARP, IPv4/IPv6, ICMP, UDP, TCP and VXLAN,
// with gopacket's DecodingLayerParser on the hot path.
package frame
