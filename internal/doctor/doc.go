// Package doctor probes what this machine's kernel offers netbed (namespaces,
// veth, bridges, VXLAN, tc, BPF, ...) in a throw-away network namespace and
// says which backends can run here.
package doctor
