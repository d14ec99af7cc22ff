package ovs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel/ovs/ovsdb"
)

// accessIDs are the external IDs of an instance's access port's
// interface, as Neutron's OVS agent sets them.
func accessIDs(instance string, mac net.HardwareAddr) map[string]string {
	return map[string]string{"iface-id": instance, "attached-mac": mac.String()}
}

// dbName is the vswitch's database (the schema's name).
const dbName = "Open_vSwitch"

// applyTimeout bounds the wait for ovs-vswitchd to apply a change, as
// the --timeout netbed gives ovs-vsctl.
const applyTimeout = 20_000 // ms

// ErrNoBridge: a port was to be added to a bridge the vswitch does not
// have.
var ErrNoBridge = errors.New("no such bridge")

// dbClient returns v's connection to its ovsdb-server, opened on first
// use and kept until stop (opened again if the server closed it).
func (v *vswitch) dbClient() (*ovsdb.Client, error) {
	v.cmu.Lock()
	defer v.cmu.Unlock()
	if v.conn != nil && v.conn.Err() == nil {
		return v.conn, nil
	}
	if v.conn != nil {
		v.conn.Close()
		v.conn = nil
	}
	c, err := dialUnix(filepath.Join(v.dir, "db.sock"))
	if err != nil {
		return nil, fmt.Errorf("connect to ovsdb-server: %w", err)
	}
	v.conn = ovsdb.NewClient(c)
	return v.conn, nil
}

// ctlClient returns v's connection to ovs-vswitchd's unixctl socket,
// opened on first use and kept until stop (opened again if the daemon
// closed it).
func (v *vswitch) ctlClient() (*ovsdb.Client, error) {
	v.cmu.Lock()
	defer v.cmu.Unlock()
	if v.ctlc != nil && v.ctlc.Err() == nil {
		return v.ctlc, nil
	}
	if v.ctlc != nil {
		v.ctlc.Close()
		v.ctlc = nil
	}
	c, err := dialUnix(v.ctl())
	if err != nil {
		return nil, fmt.Errorf("connect to ovs-vswitchd: %w", err)
	}
	v.ctlc = ovsdb.NewClient(c)
	return v.ctlc, nil
}

// closeDB closes v's connections to its daemons, if open.
func (v *vswitch) closeDB() {
	v.cmu.Lock()
	defer v.cmu.Unlock()
	for _, c := range []**ovsdb.Client{&v.conn, &v.ctlc} {
		if *c != nil {
			(*c).Close()
			*c = nil
		}
	}
}

// dialUnix connects to the unix socket at path; a path longer than a
// socket address holds is reached through /proc/self/fd, as OVS does.
func dialUnix(path string) (net.Conn, error) {
	if len(path) <= maxSunPath {
		return net.Dial("unix", path)
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Dir(path), err)
	}
	defer unix.Close(dir)
	return net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir, filepath.Base(path)))
}

// addPort adds dev to bridge as a port with its one interface, tagged
// tag (0: a trunk) and holding externalIDs, as `ovs-vsctl add-port
// bridge dev tag=… -- set interface dev external_ids:…` does, over v's
// open OVSDB connection rather than a process per port. It returns once
// ovs-vswitchd has applied the change (its cur_cfg reached the
// next_cfg the change set, ovs-vsctl's wait), with the interface's
// OpenFlow port number; a device ovs-vswitchd could not open is an error
// with its reason, and the port is taken off again.
func (v *vswitch) addPort(ctx context.Context, bridge, dev string, tag uint16, externalIDs map[string]string) (ofport int, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("add port %s to %s: %w", dev, bridge, err)
		}
	}()
	c, err := v.dbClient()
	if err != nil {
		return 0, err
	}
	port := map[string]any{"name": dev, "interfaces": ovsdb.NamedUUID("iface")}
	if tag != 0 {
		port["tag"] = int(tag)
	}
	res, err := c.Transact(ctx, dbName,
		// The bridge must be there: refused at once otherwise.
		ovsdb.Wait("Bridge", []ovsdb.Condition{ovsdb.Eq("name", bridge)}, []string{"name"}, "==", []map[string]any{{"name": bridge}}, 0),
		ovsdb.Insert("Interface", map[string]any{"name": dev, "external_ids": ovsdb.Map(externalIDs)}, "iface"),
		ovsdb.Insert("Port", port, "port"),
		ovsdb.Mutate("Bridge", []ovsdb.Condition{ovsdb.Eq("name", bridge)}, ovsdb.Mutation{"ports", "insert", ovsdb.Set(ovsdb.NamedUUID("port"))}),
		ovsdb.Mutate("Open_vSwitch", nil, ovsdb.Mutation{"next_cfg", "+=", 1}),
		ovsdb.Select("Open_vSwitch", []string{"next_cfg"}),
		ovsdb.Comment("netbed: add port "+dev+" to "+bridge))
	if err != nil {
		var te *ovsdb.TransactError
		if errors.As(err, &te) && te.Op == 0 {
			return 0, fmt.Errorf("%w %q", ErrNoBridge, bridge)
		}
		return 0, err
	}
	cfg, err := nextCfg(res[5])
	if err != nil {
		return 0, err
	}
	rows, err := v.applied(ctx, c, cfg, ovsdb.Select("Interface", []string{"ofport", "error"}, ovsdb.Eq("name", dev)))
	if err != nil {
		return 0, err
	}
	if len(rows) == 1 {
		if n, ok := ovsdb.Int(rows[0], "ofport"); ok && n > 0 {
			return n, nil
		}
	}
	why := "no OpenFlow port"
	if len(rows) == 1 && ovsdb.String(rows[0], "error") != "" {
		why = ovsdb.String(rows[0], "error")
	}
	if derr := v.dropPort(ctx, bridge, dev); derr != nil {
		return 0, fmt.Errorf("ovs-vswitchd: %s (and taking it off again: %v)", why, derr)
	}
	return 0, fmt.Errorf("ovs-vswitchd: %s", why)
}

// dropPort takes dev off bridge (nothing if it is not there), as
// `ovs-vsctl --if-exists del-port bridge dev` does, and returns once
// ovs-vswitchd has applied the change.
func (v *vswitch) dropPort(ctx context.Context, bridge, dev string) error {
	c, err := v.dbClient()
	if err != nil {
		return fmt.Errorf("delete port %s from %s: %w", dev, bridge, err)
	}
	res, err := c.Transact(ctx, dbName, ovsdb.Select("Port", []string{"_uuid"}, ovsdb.Eq("name", dev)))
	if err != nil {
		return fmt.Errorf("delete port %s from %s: %w", dev, bridge, err)
	}
	if len(res[0].Rows) == 0 {
		return nil
	}
	id, ok := ovsdb.RowUUID(res[0].Rows[0])
	if !ok {
		return fmt.Errorf("delete port %s from %s: port row without a UUID: %v", dev, bridge, res[0].Rows[0])
	}
	// The port row goes with its last reference (Port is not a root
	// table), and its interface with it.
	res, err = c.Transact(ctx, dbName,
		ovsdb.Mutate("Bridge", []ovsdb.Condition{ovsdb.Eq("name", bridge)}, ovsdb.Mutation{"ports", "delete", ovsdb.Set(id)}),
		ovsdb.Mutate("Open_vSwitch", nil, ovsdb.Mutation{"next_cfg", "+=", 1}),
		ovsdb.Select("Open_vSwitch", []string{"next_cfg"}),
		ovsdb.Comment("netbed: delete port "+dev+" from "+bridge))
	if err != nil {
		return fmt.Errorf("delete port %s from %s: %w", dev, bridge, err)
	}
	cfg, err := nextCfg(res[2])
	if err != nil {
		return fmt.Errorf("delete port %s from %s: %w", dev, bridge, err)
	}
	if _, err := v.applied(ctx, c, cfg); err != nil {
		return fmt.Errorf("delete port %s from %s: %w", dev, bridge, err)
	}
	return nil
}

// nextCfg reads the next_cfg a change's select returned.
func nextCfg(r ovsdb.Result) (int, error) {
	if len(r.Rows) != 1 {
		return 0, fmt.Errorf("%d Open_vSwitch rows", len(r.Rows))
	}
	n, ok := ovsdb.Int(r.Rows[0], "next_cfg")
	if !ok {
		return 0, fmt.Errorf("Open_vSwitch row without next_cfg: %v", r.Rows[0])
	}
	return n, nil
}

// applied waits until ovs-vswitchd has applied configuration cfg (its
// cur_cfg is at least cfg: the server holds the transaction until no row
// has a smaller one), then runs the select then in the same transaction
// and returns its rows.
func (v *vswitch) applied(ctx context.Context, c *ovsdb.Client, cfg int, then ...ovsdb.Op) ([]map[string]any, error) {
	ops := append([]ovsdb.Op{ovsdb.Wait("Open_vSwitch", []ovsdb.Condition{ovsdb.Where("cur_cfg", "<", cfg)}, nil, "==", nil, applyTimeout)}, then...)
	res, err := c.Transact(ctx, dbName, ops...)
	if err != nil {
		var te *ovsdb.TransactError
		if errors.As(err, &te) && te.Op == 0 {
			return nil, fmt.Errorf("ovs-vswitchd did not apply configuration %d within %d ms (log in %s)", cfg, applyTimeout, v.dir)
		}
		return nil, err
	}
	if len(then) == 0 {
		return nil, nil
	}
	return res[1].Rows, nil
}
