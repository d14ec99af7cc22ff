// Package controller is the network service: networks, labels, subnets and
// ports with their addresses and state machine, kept in a durable store.
package controller
