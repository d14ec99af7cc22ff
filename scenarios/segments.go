package scenarios

// SegmentsFor gives every network its VLAN and VNI from o's ranges, in
// order, and its gateway (the subnet's first address). The ranges must
// hold the networks (spec: CapacityError).
func SegmentsFor(nets []Network, o GenOptions) []NetworkSegment {
	out := make([]NetworkSegment, len(nets))
	for i, n := range nets {
		out[i] = NetworkSegment{Network: n, Gateway: n.Subnet.Addr().Next(),
			VLAN: uint16(min(int(o.VLANs.First)+i, MaxVLAN)), VNI: uint32(min(int(o.VNIs.First)+i, MaxVNI))}
		if n.Subnet6.IsValid() {
			out[i].Gateway6 = n.Subnet6.Addr().Next()
		}
	}
	return out
}
