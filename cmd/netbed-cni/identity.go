package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// hashLen is how many hex digits of a hash name a host-side veth.
const hashLen = 11

// Identity is who a pod is, as far as its port is concerned.
type Identity struct {
	// Port is the controller port's unique name.
	Port string
	// Stateful means the identity outlives the pod (a StatefulSet member,
	// an explicit NETBED_IDENTITY): with keepPort "auto" DEL keeps the port
	// so that the identity gets its address back wherever it comes up.
	Stateful bool
	// Source says where the identity came from: "NETBED_PORT",
	// "label:<key>", "NETBED_IDENTITY", "k8s" or "container".
	Source string
}

// parseCNIArgs splits CNI_ARGS ("K1=V1;K2=V2"). Malformed pairs are
// errors; empty pairs (";;") are skipped.
func parseCNIArgs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("CNI_ARGS: %q is not KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// identityOf derives a pod's identity, first match wins: NETBED_PORT in
// CNI_ARGS (the port's exact name, chosen by an orchestrator that manages
// ports itself, as Kuryr does with Neutron's), an identity label
// (args.cni.labels), NETBED_IDENTITY in CNI_ARGS, the Kubernetes
// namespace/name in CNI_ARGS, the container ID. Interfaces other than eth0
// get their own port ("@<ifname>"), except with NETBED_PORT.
func identityOf(conf *NetConf, cniArgs map[string]string, containerID, ifName string) (Identity, error) {
	if p, ok := cniArgs["NETBED_PORT"]; ok {
		if err := checkName(p); err != "" {
			return Identity{}, fmt.Errorf("NETBED_PORT %q: %s", p, err)
		}
		return Identity{Port: p, Stateful: true, Source: "NETBED_PORT"}, nil
	}
	ns := cniArgs["K8S_POD_NAMESPACE"]
	labels := conf.labels()
	var id Identity
	for _, key := range conf.IdentityLabels {
		if v := labels[key]; v != "" {
			id = Identity{Port: portName("sts", ns, v), Stateful: true, Source: "label:" + key}
			break
		}
	}
	if id.Port == "" {
		switch {
		case cniArgs["NETBED_IDENTITY"] != "":
			id = Identity{Port: portName("id", cniArgs["NETBED_IDENTITY"]), Stateful: true, Source: "NETBED_IDENTITY"}
		case ns != "" && cniArgs["K8S_POD_NAME"] != "":
			id = Identity{Port: portName("pod", ns, cniArgs["K8S_POD_NAME"]), Source: "k8s"}
		case containerID != "":
			id = Identity{Port: portName("ctr", containerID), Source: "container"}
		default:
			return id, fmt.Errorf("no pod identity: no identity label, NETBED_IDENTITY, K8S_POD_NAMESPACE/K8S_POD_NAME nor container ID")
		}
	}
	if ifName != "" && ifName != "eth0" {
		id.Port = portName(id.Port + "@" + ifName)
	}
	return id, nil
}

// portName joins parts with ":" into a controller port name (letters,
// digits, - _ . : @; at most 128 bytes). Other characters become "_"; a
// name that had to change, or is too long, ends in a hash of the original
// so that distinct identities keep distinct names.
func portName(parts ...string) string {
	orig := strings.Join(parts, ":")
	var b strings.Builder
	changed := false
	for _, r := range orig {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:@", r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	s := b.String()
	const max = 128
	if !changed && len(s) <= max {
		return s
	}
	h := hashHex(orig, 16)
	if len(s) > max-17 {
		s = s[:max-17]
	}
	return s + "." + h
}

func hashHex(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// hostIfName names the host side of a container's veth: prefix and a hash
// of the container ID and interface, unique per attachment.
func hostIfName(prefix, containerID, ifName string) string {
	return prefix + hashHex(containerID+"/"+ifName, hashLen)
}
