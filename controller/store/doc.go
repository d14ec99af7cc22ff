// Package store is the controller's durable, transactional key-value store:
// a small Store interface, its default implementation on bbolt, etcd for
// several replicas, and Memory, bbolt's in-memory twin.
package store
