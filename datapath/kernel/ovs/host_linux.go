package ovs

import (
	"context"
	"net"

	"github.com/netbed/netbed/datapath/kernel"
)

// Vswitch is a private Open vSwitch in a node's namespace: an
// ovsdb-server and an ovs-vswitchd (userspace datapath) with their
// sockets, database and logs in one directory. Gen 1 runs one per host
// and switch; other kernel fabrics reuse it (gen 2's hosts, which are
// gen 1's, and its leaves' access ports).
type Vswitch struct{ v *vswitch }

// StartVswitch starts a vswitch in node's namespace with its files in
// dir and its database holding config (ovs-vsctl commands, each
// starting with "--"); it returns once ovs-vswitchd has applied it.
func StartVswitch(ctx context.Context, lab kernel.Lab, node, dir string, config ...string) (*Vswitch, error) {
	v, err := startVswitch(ctx, lab, node, dir, config...)
	if err != nil {
		return nil, err
	}
	return &Vswitch{v}, nil
}

// Vsctl runs ovs-vsctl against the vswitch's database, waiting until
// ovs-vswitchd has applied the change.
func (v *Vswitch) Vsctl(ctx context.Context, args ...string) (string, error) {
	return v.v.vsctl(ctx, args...)
}

// Ofctl runs ovs-ofctl against the vswitch (its bridges' management
// sockets are in its directory).
func (v *Vswitch) Ofctl(ctx context.Context, args ...string) (string, error) {
	return v.v.run(ctx, "ovs-ofctl", args...)
}

// Appctl runs an ovs-appctl command on the vswitch's ovs-vswitchd.
func (v *Vswitch) Appctl(ctx context.Context, args ...string) (string, error) {
	return v.v.appctl(ctx, args...)
}

// Node is the node whose namespace the vswitch runs in.
func (v *Vswitch) Node() string { return v.v.node }

// Stop ends both daemons (SIGTERM, then SIGKILL), waits for them and
// removes the vswitch's directory.
func (v *Vswitch) Stop() error { return v.v.stop() }

// HostConfig is a host's vswitch as Fig. 5 draws it: br-int (instances
// on access ports), the patch pair, br-bond with an active-backup bond
// of the host's first two NICs (or the one NIC), the first primary until
// SettleBond.
func HostConfig(nics []string) []string {
	args := []string{
		"--", "add-br", DevBrInt, "--", "set", "bridge", DevBrInt, "datapath_type=netdev",
		"--", "add-br", DevBrBond, "--", "set", "bridge", DevBrBond, "datapath_type=netdev",
		"--", "add-port", DevBrInt, DevPatchInt, "--", "set", "interface", DevPatchInt, "type=patch", "options:peer=" + DevPatchBond,
		"--", "add-port", DevBrBond, DevPatchBond, "--", "set", "interface", DevPatchBond, "type=patch", "options:peer=" + DevPatchInt,
	}
	if len(nics) >= 2 {
		return append(args, "--", "add-bond", DevBrBond, DevBond, nics[0], nics[1], "bond_mode=active-backup",
			"other_config:bond-primary="+nics[0])
	}
	return append(args, "--", "add-port", DevBrBond, nics[0])
}

// SettleBond waits until a host's bond (HostConfig with two NICs) has
// its first NIC active, then drops the primary setting, so that the
// bond does not fail back when that NIC returns.
func (v *Vswitch) SettleBond(ctx context.Context, first string) error {
	if err := waitActive(ctx, v.v, first); err != nil {
		return err
	}
	_, err := v.v.vsctl(ctx, "remove", "port", DevBond, "other_config", "bond-primary")
	return err
}

// PlugAccess puts dev (an instance's veth end in the vswitch's
// namespace) on br-int as an access port of VLAN vid, transmit checksum
// offload off, named for the instance as Neutron's OVS agent does; it
// returns once ovs-vswitchd has the port (over the vswitch's OVSDB
// connection, no ovs-vsctl).
func (v *Vswitch) PlugAccess(ctx context.Context, lab kernel.Lab, dev string, vid uint16, instance string, mac net.HardwareAddr) error {
	if err := lab.Do(v.v.node, func() error { return noTxChecksum(dev) }); err != nil {
		return err
	}
	_, err := v.v.addPort(ctx, DevBrInt, dev, vid, accessIDs(instance, mac))
	return err
}

// UnplugAccess takes dev off br-int (nothing if it is not there).
func (v *Vswitch) UnplugAccess(ctx context.Context, dev string) error {
	return v.v.delPort(ctx, DevBrInt, dev)
}

// NoTxChecksum turns transmit checksum offload off on dev in the
// calling thread's namespace (ethtool -K dev tx off): the userspace
// datapath never fills checksums in.
func NoTxChecksum(dev string) error { return noTxChecksum(dev) }
