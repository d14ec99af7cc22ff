// Package store is the controller's durable, transactional key-value store:
// a small Store interface and its default implementation on bbolt.
package store
