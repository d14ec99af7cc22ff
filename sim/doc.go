// Package sim runs datapath nodes in virtual time: a deterministic
// discrete-event engine with links (propagation delay, serialisation,
// bounded queues, loss), faults, frame lineage and probe results.
//
// Timing. A frame sent at time t on a wire of rate R starts serialising at
// max(t, the end of the previous frame in that direction), takes
// ceil(len*8/R) (length without preamble, FCS or gap; 0 for R = 0), then
// travels the wire's Delay, and the receiving node handles it after its
// processing delay (nodes have no queue of their own). With a DeviceCost
// (SetDeviceCost), every device a node traces costs time besides: the
// devices of one step run one after another, each event is stamped when
// its device is done, and frames leave when the last device before the
// send is (the scenarios' sim runtime costs devices from the calibration
// table of package datapath/cost). Each direction holds
// at most LinkOpts.QueueFrames frames, the one on the wire included;
// beyond that the frame is dropped (queue-full). Loss is drawn from the
// engine's seeded RNG when the frame is sent. Wire MTUs are not enforced.
//
// Order. Events run by (time, scheduling order), so equal seeds and inputs
// give byte-identical traces (WriteTrace).
//
// Frames. The engine owns the frame buffers: Send copies a frame into a
// free one; Forward of the frame a node is receiving (or of a slice of it
// from its start) hands that frame's buffer on without a copy, once per
// received frame; a second send of it, or an inner frame, is a copy. Once the fabric has
// learnt its addresses, a packet hop allocates nothing.
//
// Accounting. Every Send or Forward injects a frame; each injected frame is delivered
// (its receiver sent nothing in response and traced no drop), forwarded
// (its receiver sent one or more frames, injected in turn), dropped by
// reason (by the receiver's drop event, or by the engine: queue-full,
// link-loss, port-down on an unwired port or a link that is or went down,
// node-down), or still in flight. Conservation checks the sum.
//
// Lineage. Trace events are stamped with the time and the probe ID of the
// frame being handled; frames sent while handling a frame inherit it, and
// frames sent in Do get the ID passed to Do. Each recorded event also
// points at the event before it on its frame's path, which is how Result
// finds a probe's forward and return paths without ARP exchanges or flood
// copies (see Result). Nodes that hold a packet back (for ARP) and send it
// later keep its lineage through stack.Resumer, which the engine's Output
// implements.
package sim
