// Package sim runs datapath nodes in virtual time: a deterministic
// discrete-event engine with links (propagation delay, serialisation,
// bounded queues, loss), faults, frame lineage and probe results.
package sim
