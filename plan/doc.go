// Package plan answers a capacity planner's questions about a fabric of
// the seed's scale by building it for each generation on sim, spawning
// its instances, and reading what the devices hold: table sizes per
// device and their distribution against switch profiles, VLANs and VNIs
// used, flood domains, the controller's load in a spawn storm, and what
// failing one device of each class cuts off.
package plan
