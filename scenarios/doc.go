// Package scenarios reads scenario files (YAML), validates them with errors
// that name the file, line and field, and replays them on a backend for each
// generation being compared.
//
// A generation is its registered description (package generation) and,
// here, its fabric builder: scenarios/gen_<name>.go registers with
// RegisterFabric how the generation's datapath.Fabric is built for the
// runtimes that run Go models (sim, netns). The FabricBackend looks both
// up and never compares generation names; see package generation for how
// to add one.
package scenarios
