// Package datapath holds what every generation's forwarding shares: the Node
// contract, trace events, drop reasons and the hop-counting rule.
package datapath
