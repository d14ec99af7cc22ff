// Package ipamd is a node's warm pool of VPC addresses, as the AWS VPC
// CNI's ipamd keeps it: ENIs attached and secondary addresses assigned
// ahead of the pods that will take them (WARM_ENI_TARGET, WARM_IP_TARGET,
// MINIMUM_IP_TARGET), through the cloud API of package cloud. Pods take
// and return addresses without calling the API; a reconciler pass brings
// the pool back to its targets. With every target 0 the pool is off and
// each pod's address is assigned by an API call on its spawn, the
// baseline warm pools are measured against (Storm).
package ipamd
