// Package netns realises a topology on one Linux machine as one network
// namespace per node and one veth pair per link, named as containerlab names
// its containers, and attaches to labs that netbed or containerlab already
// deployed.
package netns
