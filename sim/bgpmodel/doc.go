// Package bgpmodel is gen 2's BGP control plane in the simulator's
// virtual time: one model speaker per leaf and spine, sessions over the
// fabric's links with keepalive and hold timers, UPDATEs carried hop by
// hop with a per-message processing delay and the advertisement interval,
// route reflection, best-path selection and withdrawals, with timings
// calibrated from the real speakers (package datapath/speaker) on this
// machine. Each leaf's tables are fed from its own model speaker's best
// paths, as on netns they are from its GoBGP speaker's.
package bgpmodel
