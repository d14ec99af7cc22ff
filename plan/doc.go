// Package plan answers a capacity planner's questions about a fabric of
// the seed's scale by building it for each generation on sim, spawning
// its instances, and reading what the devices hold: table sizes per
// device and their distribution against switch profiles, VLANs and VNIs
// used, flood domains, the controller's load in a spawn storm, and what
// failing one device of each class cuts off. For the public cloud (the
// vpc generation, RunCloud) it gives the pods a node of each instance
// type holds and a zone's spawn storm through the cloud API's model, with
// and without warm pools.
package plan
