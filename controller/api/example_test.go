package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/store"
)

// A controller served over HTTP and driven by the client: a labelled
// network, a subnet, a port bound to a host, the host agent's report.
func Example() {
	dir, _ := os.MkdirTemp("", "netbed-example")
	defer os.RemoveAll(dir)
	st, err := store.OpenBolt(filepath.Join(dir, "ctl.db"), store.BoltOptions{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	svc := controller.New(st, nil, nil) // no overlay: routed networks need none
	defer svc.Close()
	srv := httptest.NewServer(api.NewServer(svc))
	defer srv.Close()

	ctx := context.Background()
	c := api.NewClient(srv.URL, nil)
	if _, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: "pods-1", Labels: []string{"prod-env"}}); err != nil {
		panic(err)
	}
	if _, err := c.CreateSubnet(ctx, controller.SubnetRequest{Network: "pods-1", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		panic(err)
	}
	p, err := c.CreatePort(ctx, controller.PortRequest{Name: "default.web-0", Label: "prod-env", DeviceOwner: controller.OwnerPod, Host: "node-1"})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name, p.IPs[0].Address, p.IPs[0].Gateway, p.Status())
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		p, err = c.SetUnderlayState(ctx, p.Name, controller.StateUpdate{State: s, Host: "node-1"})
		if err != nil {
			panic(err)
		}
	}
	fmt.Println(p.Status())
	_, err = c.CreateNetwork(ctx, controller.NetworkRequest{Name: "bad", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 4095}})
	fmt.Println(err)
	// Output:
	// default.web-0 10.0.0.2 10.0.0.1 BUILD
	// ACTIVE_ACTIVE
	// create network "bad": invalid segment.id 4095: VLAN ID must be 1–4094 (0 and 4095 are reserved by 802.1Q)
}
