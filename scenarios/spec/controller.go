package spec

// ControllerSpec is how a scenario's controller runs.
type ControllerSpec struct {
	// Secure runs the controller with TLS and tokens where it is its own
	// process (netns): a lab CA, server and client certificates and
	// tokens are written for the run; the backend calls it as admin, the
	// CNC as cnc (by its client certificate), the CNI plugin on each host
	// as that node (by its token); a pod moves between hosts by the
	// backend's (admin's) binding, as Nova binds ports in Neutron. On sim
	// the controller runs in process and nothing crosses a wire.
	Secure bool
	// With store etcd, the etcd members also serve TLS and ask for a
	// client certificate (--client-cert-auth) of a CA of their own, which
	// the replicas present (--etcd-ca/--etcd-cert/--etcd-key): a node's
	// certificate, signed by the controller's CA, does not open etcd.
	//
	// Replicas is how many controller processes serve the API on one
	// store (1 unless set). Above 1 the store is etcd: on netns the run
	// starts a 3-member etcd and that many `netbed controller serve
	// --replica` processes, and its clients (the backend, the CNC, the CNI
	// plugin) reach any live replica through one socket. On sim the
	// controller runs in process and stands for its replicas: a replica's
	// or an etcd member's loss is recorded, and as on netns (where the
	// other replicas serve and a 3-member etcd keeps its quorum) the
	// clients do not see it.
	Replicas int
	// Store is bbolt (one controller) or etcd.
	Store string
}

// The controller's stores (controller.store).
const (
	StoreBolt = "bbolt"
	StoreEtcd = "etcd"
)

// EtcdMembers is the size of the etcd a run with store: etcd starts.
const EtcdMembers = 3

// CNCLeader names, in a fault on a run whose controller runs as replicas,
// the replica that holds the CNC's leadership when the fault fires (a
// restore restarts the replica last killed as the leader).
const CNCLeader = "cnc-leader"
