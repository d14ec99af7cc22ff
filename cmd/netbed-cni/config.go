package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netbed/netbed/controller/ipam"
)

// Modes.
const (
	ModeEVPN = "evpn" // generation 2: global IPAM via the controller, bridge-attached tap
	ModeEBPF = "ebpf" // generation 3: local IPAM per node, routed lxc veth
)

// Port keeping policies on DEL.
const (
	KeepAuto   = "auto"   // keep the port of a stateful identity, delete others
	KeepAlways = "always" // keep every port (the address stays reserved)
	KeepNever  = "never"  // delete every port (its address is released)
)

// Where the host side of an evpn pod goes.
const (
	AttachBridge = "bridge" // into the Linux bridge Bridge
	AttachNone   = "none"   // nowhere: the host's datapath reads the veth itself
)

// Defaults.
const (
	DefaultBridge  = "br-int"
	DefaultDataDir = "/var/lib/netbed-cni"
	DefaultTimeout = 10 * time.Second
	// DefaultIdentityLabel is the label Kubernetes puts on a StatefulSet's
	// pods: a stable identity that must keep its address when it drifts.
	DefaultIdentityLabel = "statefulset.kubernetes.io/pod-name"
)

// NetConf is the plugin's network configuration (stdin JSON).
type NetConf struct {
	types.PluginConf

	// ControllerURL is the controller API: http://host:port, or
	// unix:///path/to/socket. Required in evpn mode, optional in ebpf mode.
	ControllerURL string `json:"controllerURL,omitempty"`
	// CAFile is the CA that signed the controller's certificate: with it
	// the plugin speaks TLS, on https:// (where it defaults to the
	// system's roots) and over a unix:// socket alike.
	CAFile string `json:"caFile,omitempty"`
	// ServerName is the name the controller's certificate must carry;
	// default the URL's host, "localhost" for a unix socket.
	ServerName string `json:"serverName,omitempty"`
	// TokenFile holds this node's bearer token (mode 0600); CertFile and
	// KeyFile its client certificate for mutual TLS. Either names the
	// node to a controller that authenticates.
	TokenFile string `json:"tokenFile,omitempty"`
	CertFile  string `json:"certFile,omitempty"`
	KeyFile   string `json:"keyFile,omitempty"`
	// Mode is "evpn" (default) or "ebpf".
	Mode string `json:"mode,omitempty"`
	// Network names the controller network to take the address from, or
	// Label picks any network carrying it that has room (evpn: exactly one
	// of them; ebpf: optional, to register ports in the controller).
	Network string `json:"network,omitempty"`
	Label   string `json:"label,omitempty"`
	// Host is this node's name in the controller and topology; default the
	// hostname.
	Host string `json:"host,omitempty"`
	// Attach says where the host side goes in evpn mode: "bridge"
	// (default: into Bridge) or "none" (left up on its own, for a datapath
	// that reads the veth itself: netbed's userspace datapath, an OVS
	// netdev or AF_XDP port).
	Attach string `json:"attach,omitempty"`
	// Bridge is the evpn host bridge (default br-int); CreateBridge makes
	// it when missing instead of failing.
	Bridge       string `json:"bridge,omitempty"`
	CreateBridge bool   `json:"createBridge,omitempty"`
	// HostIfPrefix names host-side veths: prefix + 11 hex digits of a hash
	// of container ID and interface (default "tap" in evpn, "lxc" in ebpf).
	HostIfPrefix string `json:"hostIfPrefix,omitempty"`
	// MTU of both veth ends; 0 leaves the kernel default.
	MTU int `json:"mtu,omitempty"`
	// NodeCIDR is the ebpf node's own address block (local IPAM). Left
	// out, with a ControllerURL, ADD asks the controller for this host's
	// block of its cluster pool (PUT /v1/nodes/{host}).
	NodeCIDR string `json:"nodeCIDR,omitempty"`
	// NodeCIDR6 makes the ebpf node dual-stack: its IPv6 block, from
	// which every pod also gets an IPv6 /128 (local IPAM, its own state
	// file); the result lists both addresses.
	NodeCIDR6 string `json:"nodeCIDR6,omitempty"`
	// DataDir holds the local IPAM state (ebpf); default /var/lib/netbed-cni.
	DataDir string `json:"dataDir,omitempty"`
	// IdentityLabels are label keys (args.cni.labels) whose value names a
	// stateful identity; default ["statefulset.kubernetes.io/pod-name"].
	IdentityLabels []string `json:"identityLabels,omitempty"`
	// KeepPort is what DEL does with the controller port: "auto" (default:
	// keep a stateful identity's port so that it keeps its address when it
	// comes back, delete others), "always" or "never".
	KeepPort string `json:"keepPort,omitempty"`
	// Timeout bounds each controller call, as a Go duration; default 10s.
	Timeout string `json:"timeout,omitempty"`

	Args *struct {
		CNI struct {
			Labels []Label `json:"labels,omitempty"`
		} `json:"cni"`
	} `json:"args,omitempty"`

	// Parsed.
	nodeCIDR, nodeCIDR6 netip.Prefix
	timeout             time.Duration
}

// Label is one args.cni.labels entry.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// labels returns args.cni.labels as a map.
func (c *NetConf) labels() map[string]string {
	m := map[string]string{}
	if c.Args != nil {
		for _, l := range c.Args.CNI.Labels {
			m[l.Key] = l.Value
		}
	}
	return m
}

// configError is a CNI error naming the field at fault.
func configError(field, format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig,
		fmt.Sprintf("netbed-cni config: field %q: %s", field, fmt.Sprintf(format, a...)), "")
}

// parseConf decodes and validates stdin. hostname is the default host.
func parseConf(stdin []byte, hostname string) (*NetConf, *types.Error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, types.NewError(types.ErrDecodingFailure,
				fmt.Sprintf("netbed-cni config: field %q: want a %s, got %s", te.Field, te.Type, te.Value), "")
		}
		return nil, types.NewError(types.ErrDecodingFailure, "netbed-cni config: "+err.Error(), "")
	}
	if err := c.validate(hostname); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *NetConf) validate(hostname string) *types.Error {
	if c.Mode == "" {
		c.Mode = ModeEVPN
	}
	if c.Mode != ModeEVPN && c.Mode != ModeEBPF {
		return configError("mode", "%q is not a mode; want %q (global IPAM via the controller) or %q (local IPAM)", c.Mode, ModeEVPN, ModeEBPF)
	}
	if c.ControllerURL == "" && c.Mode == ModeEVPN {
		return configError("controllerURL", "required in evpn mode, e.g. \"http://10.0.0.1:7480\" or \"unix:///run/netbed/controller.sock\"")
	}
	if c.ControllerURL != "" {
		u, err := url.Parse(c.ControllerURL)
		switch {
		case err != nil:
			return configError("controllerURL", "%v", err)
		case u.Scheme == "http" || u.Scheme == "https":
			if u.Host == "" {
				return configError("controllerURL", "%q has no host", c.ControllerURL)
			}
		case u.Scheme == "unix":
			if u.Path == "" {
				return configError("controllerURL", "%q has no socket path; want unix:///path/to/socket", c.ControllerURL)
			}
		default:
			return configError("controllerURL", "scheme %q unsupported; want http, https or unix", u.Scheme)
		}
		switch {
		case u.Scheme == "http" && (c.CAFile != "" || c.CertFile != "" || c.ServerName != ""):
			return configError("controllerURL", "%q is plain http, but caFile, certFile or serverName asks for TLS; write https://", c.ControllerURL)
		case (c.CertFile == "") != (c.KeyFile == ""):
			return configError(map[bool]string{true: "keyFile", false: "certFile"}[c.KeyFile == ""], "certFile and keyFile go together (the client certificate and its key)")
		case u.Scheme == "unix" && c.CertFile != "" && c.CAFile == "":
			return configError("caFile", "a client certificate over a unix socket needs TLS: set caFile, the controller's CA")
		}
	} else if c.CAFile != "" || c.TokenFile != "" || c.CertFile != "" || c.KeyFile != "" {
		return configError("controllerURL", "caFile, tokenFile, certFile and keyFile are for talking to a controller; set controllerURL")
	}
	switch {
	case c.Network != "" && c.Label != "":
		return configError("label", "set either network or label, not both")
	case c.Mode == ModeEVPN && c.Network == "" && c.Label == "":
		return configError("network", "evpn mode needs a network (or a label) to take the address from")
	case c.Mode == ModeEBPF && c.ControllerURL == "" && (c.Network != "" || c.Label != ""):
		return configError("controllerURL", "network/label given in ebpf mode but no controller to register ports in")
	}
	if c.Host == "" {
		c.Host = hostname
	}
	if err := checkName(c.Host); err != "" {
		return configError("host", "%q: %s", c.Host, err)
	}
	switch c.Attach {
	case "", AttachBridge:
		c.Attach = AttachBridge
		if c.Bridge == "" {
			c.Bridge = DefaultBridge
		}
		if err := checkIfName(c.Bridge, 15); err != "" {
			return configError("bridge", "%q: %s", c.Bridge, err)
		}
	case AttachNone:
		if c.Bridge != "" || c.CreateBridge {
			return configError("bridge", "set with \"attach\": \"none\", which leaves the host side out of any bridge")
		}
	default:
		return configError("attach", "%q; want %q (the host side joins bridge) or %q (it stays on its own)", c.Attach, AttachBridge, AttachNone)
	}
	if c.HostIfPrefix == "" {
		c.HostIfPrefix = "tap"
		if c.Mode == ModeEBPF {
			c.HostIfPrefix = "lxc"
		}
	}
	if err := checkIfName(c.HostIfPrefix, 15-hashLen); err != "" {
		return configError("hostIfPrefix", "%q: %s", c.HostIfPrefix, err)
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return configError("mtu", "%d outside 68–65535 (0 keeps the kernel default)", c.MTU)
	}
	if c.NodeCIDR != "" {
		p, err := netip.ParsePrefix(c.NodeCIDR)
		if err != nil {
			return configError("nodeCIDR", "%v; want a CIDR such as 10.244.1.0/24", err)
		}
		if p.Masked() != p {
			return configError("nodeCIDR", "%q has host bits set; did you mean %v?", c.NodeCIDR, p.Masked())
		}
		if !p.Addr().Is4() || p.Bits() > 30 {
			return configError("nodeCIDR", "%q: want an IPv4 block of /30 or larger", c.NodeCIDR)
		}
		c.nodeCIDR = p
	}
	if c.NodeCIDR6 != "" {
		p, err := netip.ParsePrefix(c.NodeCIDR6)
		switch {
		case err != nil:
			return configError("nodeCIDR6", "%v; want an IPv6 CIDR such as fd10::100/120", err)
		case p.Masked() != p:
			return configError("nodeCIDR6", "%q has host bits set; did you mean %v?", c.NodeCIDR6, p.Masked())
		case !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() < 128-ipam.MaxNodeHostBits || p.Bits() > 126:
			return configError("nodeCIDR6", "%q: want an IPv6 block from /%d to /126", c.NodeCIDR6, 128-ipam.MaxNodeHostBits)
		case c.Mode != ModeEBPF:
			return configError("nodeCIDR6", "only used in ebpf mode; evpn takes addresses from the controller")
		}
		c.nodeCIDR6 = p
	}
	if c.Mode == ModeEBPF && !c.nodeCIDR.IsValid() && c.ControllerURL == "" {
		return configError("nodeCIDR", "ebpf mode allocates locally and needs this node's CIDR, e.g. \"10.244.1.0/24\", or a controllerURL to get it from the cluster pool")
	}
	if c.Mode == ModeEVPN && c.NodeCIDR != "" {
		return configError("nodeCIDR", "only used in ebpf mode; evpn takes addresses from the controller")
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if len(c.IdentityLabels) == 0 {
		c.IdentityLabels = []string{DefaultIdentityLabel}
	}
	for i, l := range c.IdentityLabels {
		if strings.TrimSpace(l) == "" {
			return configError(fmt.Sprintf("identityLabels[%d]", i), "empty label key")
		}
	}
	switch c.KeepPort {
	case "":
		c.KeepPort = KeepAuto
	case KeepAuto, KeepAlways, KeepNever:
	default:
		return configError("keepPort", "%q; want %q, %q or %q", c.KeepPort, KeepAuto, KeepAlways, KeepNever)
	}
	c.timeout = DefaultTimeout
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return configError("timeout", "%q; want a positive Go duration such as \"10s\"", c.Timeout)
		}
		c.timeout = d
	}
	return nil
}

// checkName checks a controller name (host, port): letters, digits and
// - _ . : @, at most 128 bytes. It returns what is wrong, or "".
func checkName(s string) string {
	if s == "" {
		return "empty (set it, or give the machine a hostname)"
	}
	if len(s) > 128 {
		return "longer than 128 bytes"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:@", r)) {
			return fmt.Sprintf("character %q not allowed (use letters, digits and - _ . : @)", r)
		}
	}
	return ""
}

// checkIfName checks a Linux interface name (or prefix) of at most max
// bytes.
func checkIfName(s string, max int) string {
	if s == "" {
		return "empty"
	}
	if len(s) > max {
		return fmt.Sprintf("longer than %d bytes", max)
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == ':' || r > '~' {
			return fmt.Sprintf("character %q not allowed in an interface name", r)
		}
	}
	return ""
}
