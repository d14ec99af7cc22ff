package controller

import (
	"encoding/json"
	"net/netip"
	"testing"
)

func FuzzNetworkRequest(f *testing.F) {
	for _, s := range []string{
		`{"name":"n","segment":{"type":"vlan","id":4095}}`,
		`{"name":"n","labels":["a","a"],"segment":{"type":"vxlan","id":1}}`,
		`{"name":"prod","tenant":"t1","segment":{}}`,
		`{"name":"x y","segment":{"type":"vlan","id":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r NetworkRequest
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if r.validate() != nil {
			return
		}
		switch r.Segment.Type {
		case SegmentVLAN:
			if r.Segment.ID < 1 || r.Segment.ID > MaxVLAN {
				t.Fatalf("accepted VLAN %d", r.Segment.ID)
			}
		case SegmentVXLAN:
			if r.Segment.ID < 1 || r.Segment.ID > MaxVNI {
				t.Fatalf("accepted VNI %d", r.Segment.ID)
			}
		case SegmentNone:
			if r.Segment.ID != 0 {
				t.Fatalf("accepted untyped segment %d", r.Segment.ID)
			}
		default:
			t.Fatalf("accepted segment type %q", r.Segment.Type)
		}
	})
}

func FuzzSubnetRequest(f *testing.F) {
	for _, s := range []string{
		`{"network":"n","cidr":"10.0.0.0/24"}`,
		`{"network":"n","cidr":"10.0.0.0/24","gateway":"10.0.1.1"}`,
		`{"network":"n","cidr":"fd00::/64","allocation_pools":[{"start":"fd00::10","end":"fd00::20"}]}`,
		`{"network":"n","cidr":"10.0.0.0/30","no_gateway":true}`,
		`{"network":"n","cidr":"10.0.0.0/24","allocation_pools":[{"start":"10.0.0.5","end":"10.0.0.9"},{"start":"10.0.0.8","end":"10.0.0.20"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r SubnetRequest
		if json.Unmarshal(b, &r) != nil {
			return
		}
		s, err := r.buildSubnet()
		if err != nil {
			return
		}
		if s.Gateway.IsValid() && !s.CIDR.Contains(s.Gateway) {
			t.Fatalf("gateway %v outside %v", s.Gateway, s.CIDR)
		}
		var prev netip.Addr
		for i, p := range s.AllocationPools {
			if !s.CIDR.Contains(p.Start) || !s.CIDR.Contains(p.End) || p.Start.Compare(p.End) > 0 {
				t.Fatalf("pool %v not inside %v", p, s.CIDR)
			}
			if p.Contains(s.Gateway) {
				t.Fatalf("pool %v holds the gateway", p)
			}
			if i > 0 && p.Start.Compare(prev) <= 0 {
				t.Fatalf("pools overlap or unsorted at %v", p)
			}
			prev = p.End
		}
	})
}
