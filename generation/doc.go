// Package generation is the registry of netbed's datapath generations: each
// is one registered description (Desc) of what it is and what it can do,
// and the rest of netbed looks a generation up here instead of switching on
// its name.
//
// The package imports only the standard library, so that the scenario
// reader, reports and plans can know every generation without the
// controller or any datapath model. What builds a generation's fabric is
// registered by the packages that own the fabrics, keyed by the same name:
// scenarios.RegisterFabric (the model that sim and netns run) and the
// kernel backend's registry in scenarios/netnsrt (its kernel devices).
//
// # Adding a generation
//
// A generation named x is added in these files, and nowhere else:
//
//   - generation/x.go: func init() { Register(Desc{Name: "x", Family: …}) }
//     with its family, IPAM, how its instances attach, its segments, its
//     capabilities and its colour;
//   - scenarios/gen_x.go: func init() { RegisterFabric("x", build) }, where
//     build makes its datapath.Fabric (and, for a CNC-driven fabric, its
//     leaf driver) from a FabricEnv;
//   - optionally scenarios/netnsrt/kernelgen_x_linux.go: its kernel fabric
//     (registerKernel), for --backend kernel.
//
// Registration order within a family is report order; families come in
// their number's order.
package generation
