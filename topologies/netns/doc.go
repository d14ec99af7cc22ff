// Package netns realises a topology on one Linux machine as one network
// namespace per node and one veth pair per link, named as containerlab names
// its containers, and attaches to labs that netbed or containerlab already
// deployed.
//
// Deploy creates namespace t.LabPrefix()+node ("clab-lab-leaf1") bind-mounted
// under /run/netns, so `ip netns exec clab-lab-leaf1 ip link` works for a
// netbed lab as for a containerlab one. It records the lab under
// /run/netbed/labs/<lab>/ before creating anything and marks every
// interface it creates (loopbacks included) with the alias "netbed:<lab>",
// so Destroy and DestroyAll find what a crashed or killed run left. Attach,
// AttachLab and AttachClab open a deployed lab without creating anything.
//
// A Lab gives each node's namespace (NsHandle), a netlink handle that acts
// inside it (Handle) and Do, which runs a function on a locked OS thread in
// the node's namespace, e.g. to open AF_PACKET sockets there.
package netns
