// Package etcdstore is the controller's store.Store on etcd v3, for several
// controller replicas sharing one state.
package etcdstore
