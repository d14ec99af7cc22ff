// Package policy reads network policies in the formats people write
// (Kubernetes NetworkPolicy, an L3/L4 subset of CiliumNetworkPolicy) and
// says what they allow, by the formats' own documented semantics: the
// reference that every generation's compiled policy is checked against.
// It imports nothing from controller/ or datapath/.
package policy
