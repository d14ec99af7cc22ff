package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/netbed/netbed/internal/testutil"
)

// TestLibCNIEBPFDualStackPrivileged runs the real plugin through libcni
// (the CNI protocol: the binary, its environment and stdin) in ebpf mode
// with nodeCIDR and nodeCIDR6, for every CNI spec version: ADD's result
// lists both addresses (an IPv4 /32 and an IPv6 /128 from the node's two
// blocks, each with its family's gateway, the 0.3.x and 0.4.0 results
// with their version field) and a default route per family; the pod has
// both addresses and IPv6 on, though its namespace started with IPv6 off
// (as netbed's netns backend makes them); real UDP crosses the lxc veth
// over both families; CHECK passes; DEL releases both addresses.
func TestLibCNIEBPFDualStackPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	cidr, cidr6 := netip.MustParsePrefix("10.244.6.0/24"), netip.MustParsePrefix("fd10::600/120")
	gw, gw6 := netip.MustParseAddr("10.244.6.1"), netip.MustParseAddr("fd10::601")
	for _, ver := range specVersions {
		t.Run(ver, func(t *testing.T) {
			host, pod := newNS(t), newNS(t)
			host.addrAdd(t, "lo", netip.PrefixFrom(gw, 32), false)
			host.addrAdd(t, "lo", netip.PrefixFrom(gw6, 128), false)
			pod.in(t, func() {
				for _, p := range []string{"all", "default"} {
					if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6", []byte("1"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			})
			dataDir := t.TempDir()
			run := newCNIRun(t, confJSON(t, ver, map[string]any{"mode": "ebpf", "controllerURL": nil, "network": nil, "host": "node-6",
				"nodeCIDR": cidr.String(), "nodeCIDR6": cidr6.String(), "dataDir": dataDir}))
			ctx := context.Background()
			var raw types.Result
			host.in(t, func() {
				var err error
				if raw, err = run.cfg.AddNetwork(ctx, run.conf, rt("c6", pod)); err != nil {
					t.Fatalf("ADD: %v", err)
				}
			})
			if raw.Version() != ver {
				t.Errorf("result of version %s, want %s", raw.Version(), ver)
			}
			b, err := json.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			if ver < "1.0.0" {
				// The 0.3.x/0.4.0 format names each address's family.
				var old types040.Result
				if err := json.Unmarshal(b, &old); err != nil {
					t.Fatal(err)
				}
				var fams []string
				for _, ip := range old.IPs {
					fams = append(fams, ip.Version)
				}
				if strings.Join(fams, ",") != "4,6" {
					t.Errorf("result's ips have versions %v, want 4 and 6: %s", fams, b)
				}
			}
			res, err := types100.NewResultFromResult(raw)
			if err != nil {
				t.Fatal(err)
			}
			var addrs []netip.Prefix
			gws := map[netip.Prefix]netip.Addr{}
			for _, ipc := range res.IPs {
				a, _ := netip.AddrFromSlice(ipc.Address.IP)
				ones, _ := ipc.Address.Mask.Size()
				p := netip.PrefixFrom(a.Unmap(), ones)
				g, _ := netip.AddrFromSlice(ipc.Gateway)
				addrs, gws[p] = append(addrs, p), g.Unmap()
			}
			if len(addrs) != 2 || !addrs[0].Addr().Is4() || addrs[0].Bits() != 32 || !cidr.Contains(addrs[0].Addr()) || gws[addrs[0]] != gw ||
				!addrs[1].Addr().Is6() || addrs[1].Bits() != 128 || !cidr6.Contains(addrs[1].Addr()) || gws[addrs[1]] != gw6 {
				t.Fatalf("result's ips %v (gateways %v), want a /32 of %v via %v and a /128 of %v via %v: %s", addrs, gws, cidr, gw, cidr6, gw6, b)
			}
			var defaults []string
			for _, r := range res.Routes {
				if ones, _ := r.Dst.Mask.Size(); ones == 0 {
					defaults = append(defaults, r.GW.String())
				}
			}
			if strings.Join(defaults, " ") != gw.String()+" "+gw6.String() {
				t.Errorf("default routes via %v, want via %v and %v", defaults, gw, gw6)
			}
			if got := pod.podAddrs(t, "eth0"); !sameSet(got, addrs) {
				t.Errorf("pod has %v, want %v", got, addrs)
			}
			routes, err := pod.handle(t).RouteList(nil, netlink.FAMILY_V6)
			if err != nil {
				t.Fatal(err)
			}
			hasDefault6 := false
			for _, r := range routes {
				if r.Dst == nil || r.Dst.IP.IsUnspecified() {
					hasDefault6 = hasDefault6 || r.Gw.Equal(gw6.AsSlice())
				}
			}
			if !hasDefault6 {
				t.Errorf("pod has no IPv6 default route via %v: %v", gw6, routes)
			}
			udpExchange(t, host, gw, pod, addrs[0].Addr())
			udpExchange(t, host, gw6, pod, addrs[1].Addr())
			host.in(t, func() {
				if err := run.cfg.CheckNetwork(ctx, run.conf, rt("c6", pod)); err != nil && ver >= "0.4.0" {
					t.Errorf("CHECK: %v", err)
				}
				if err := run.cfg.DelNetwork(ctx, run.conf, rt("c6", pod)); err != nil {
					t.Fatalf("DEL: %v", err)
				}
			})
			for _, f := range []string{"netbed.json", "netbed.ipv6.json"} {
				st, err := os.ReadFile(filepath.Join(dataDir, f))
				if err != nil {
					t.Fatal(err)
				}
				var s localState
				if err := json.Unmarshal(st, &s); err != nil {
					t.Fatal(err)
				}
				if len(s.Holders) != 0 || s.Pool.Used() != 0 {
					t.Errorf("%s after DEL: holders %v, %d addresses used", f, s.Holders, s.Pool.Used())
				}
			}
		})
	}
}
