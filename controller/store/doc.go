// Package store is the controller's durable, transactional key-value store:
// a small Store interface, its default implementation on bbolt, and Memory,
// bbolt's in-memory twin. The Store on etcd, for several replicas, is
// etcdstore's: a program that only speaks to a controller (the CNI plugin)
// links this package without etcd's client, gRPC and protobuf.
package store
