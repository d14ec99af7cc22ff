// Package policycompile compiles Kubernetes NetworkPolicies and
// CiliumNetworkPolicies (scenarios/policy) for each generation: gen 3
// into identity-keyed policy-map entries (datapath/ebpf), gen 1 into
// per-instance OpenStack security-group rules, the stock host's iptables
// chain (datapath/vlan). Gen 2 has no host policy: the seed puts a
// hardware firewall at the edge instead (ErrNoHostPolicy). Its results
// are checked against policy.Set.Evaluate, which shares no code with it.
package policycompile
