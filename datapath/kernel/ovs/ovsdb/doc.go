// Package ovsdb is a small client of the OVSDB management protocol
// (RFC 7047, JSON-RPC over a stream): transactions on one connection kept
// open, the operations netbed needs to build, and the atoms, sets, maps
// and UUIDs of the protocol's notation. The same connection calls an OVS
// daemon's unixctl commands (Call), which are JSON-RPC too. It imports
// nothing else from the repository and does no I/O of its own beyond the
// connection it is given.
package ovsdb
