package netnsrt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies/netns"
)

// PluginType is the CNI plugin AttachPod runs.
const PluginType = "netbed-cni"

// DefaultCNIPath is where the plugin is looked for unless
// Options.CNIPath says otherwise: the running executable's directory,
// then $CNI_PATH, then /opt/cni/bin.
func DefaultCNIPath() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("CNI_PATH"))...)
	return append(dirs, "/opt/cni/bin")
}

// FindPlugin returns the path of the netbed-cni plugin in dirs
// (DefaultCNIPath if nil).
func FindPlugin(dirs []string) (string, error) {
	if dirs == nil {
		dirs = DefaultCNIPath()
	}
	return invoke.FindInPath(PluginType, dirs)
}

// cniPath is where the plugin is looked for.
func (r *Runtime) cniPath() []string {
	if len(r.opts.CNIPath) > 0 {
		return r.opts.CNIPath
	}
	return DefaultCNIPath()
}

// cni returns libcni over the plugin path, and the pod's configuration
// and runtime arguments.
func (r *Runtime) cni(in *instance) (*libcni.CNIConfig, *libcni.PluginConfig, *libcni.RuntimeConf, error) {
	conf, err := libcni.ConfFromBytes(in.cni)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CNI configuration: %w", err)
	}
	if conf.Network.Type != PluginType {
		return nil, nil, nil, fmt.Errorf("CNI configuration: type %q; the netns runtime runs %q", conf.Network.Type, PluginType)
	}
	r.mu.Lock()
	if r.cniCache == "" {
		if r.cniCache, err = os.MkdirTemp("", "netbed-cni-cache-"); err == nil {
			err = r.RecordTempDir(r.cniCache)
		}
	}
	cache := r.cniCache
	r.mu.Unlock()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CNI cache: %w", err)
	}
	rc := &libcni.RuntimeConf{
		ContainerID: in.netns,
		NetNS:       filepath.Join(netns.NetnsDir, in.netns),
		IfName:      stack.Port,
		// The port is the pod's name: a pod that drifts finds it again.
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"NETBED_PORT", in.name}},
	}
	return libcni.NewCNIConfigWithCacheDir(r.cniPath(), cache, nil), conf, rc, nil
}

// cniAdd runs CNI ADD for in inside its host's namespace (the plugin
// creates the host side there, as it does on a real node) and takes the
// pod's address, gateway, MAC and host interface from the result.
func (r *Runtime) cniAdd(ctx context.Context, in *instance) error {
	cfg, conf, rc, err := r.cni(in)
	if err != nil {
		return err
	}
	var res types.Result
	err = r.lab.Do(in.host, func() error {
		var err error
		res, err = cfg.AddNetwork(ctx, conf, rc)
		return err
	})
	if err != nil {
		if _, ferr := FindPlugin(r.cniPath()); ferr != nil {
			return fmt.Errorf("pods on the netns backend are attached by the %s plugin: %w (make build puts it beside netbed in bin/)", PluginType, ferr)
		}
		return fmt.Errorf("CNI ADD on %s: %w", in.host, err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("CNI ADD on %s: result: %w", in.host, err)
	}
	for _, ifc := range cur.Interfaces {
		switch {
		case ifc.Sandbox == "":
			in.ifname = ifc.Name
		case ifc.Name == stack.Port:
			if in.mac, err = net.ParseMAC(ifc.Mac); err != nil {
				return fmt.Errorf("CNI ADD on %s: %s's MAC %q: %w", in.host, ifc.Name, ifc.Mac, err)
			}
		}
	}
	// The first address of each family: a dual-stack pod's result
	// lists an IPv6 one beside the IPv4 one. A pod that drifted here
	// still has its old host's addresses: the result's replace them.
	in.ip, in.gw, in.ip6, in.gw6 = netip.Prefix{}, netip.Addr{}, netip.Prefix{}, netip.Addr{}
	for _, ipc := range cur.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		ones, _ := ipc.Address.Mask.Size()
		gw, _ := netip.AddrFromSlice(ipc.Gateway)
		switch {
		case a.Is4() && !in.ip.IsValid():
			in.ip, in.gw = netip.PrefixFrom(a, ones), gw.Unmap()
		case a.Is6() && !in.ip6.IsValid():
			in.ip6, in.gw6 = netip.PrefixFrom(a, ones), gw
		}
	}
	if in.ifname == "" || in.mac == nil || !in.ip.IsValid() {
		return fmt.Errorf("CNI ADD on %s: the result lacks the host interface, the pod's MAC or an IPv4 address: %+v", in.host, cur)
	}
	if in.ip6.IsValid() {
		// The plugin turned IPv6 on for the routed host side, as a node
		// routing to its pods needs; here the host's namespace only holds
		// the veth the userspace datapath reads, and IPv6 stays off in it
		// as on the host's other links: its kernel would otherwise answer
		// the pod's IPv6 to other pods with ICMPv6 "no route" (it routes
		// nothing), and the pod's TCP gives up before the datapath's
		// answer comes.
		p := "/proc/sys/net/ipv6/conf/" + in.ifname + "/disable_ipv6"
		if err := r.lab.Do(in.host, func() error { return os.WriteFile(p, []byte("1"), 0o644) }); err != nil {
			return fmt.Errorf("CNI ADD on %s: IPv6 off on %s: %w", in.host, in.ifname, err)
		}
	}
	return nil
}

// cniDel runs CNI DEL for in inside its host's namespace.
func (r *Runtime) cniDel(in *instance) error {
	cfg, conf, rc, err := r.cni(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.lab.Do(in.host, func() error { return cfg.DelNetwork(ctx, conf, rc) }); err != nil {
		return fmt.Errorf("CNI DEL on %s: %w", in.host, err)
	}
	return nil
}
