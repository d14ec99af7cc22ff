// Package spec reads scenario files: the Scenario and its steps, and the
// parser that validates a file with errors naming its file, line and field.
//
// It imports neither the controller nor any datapath model nor the
// simulator (internal/layering's TestFloors checks it with go list -deps):
// a generation is a name it looks up in package generation, an EVPN route
// type a number of its own (RouteType), and the default address plan the
// literal values of datapath/ebpf's defaults. Package scenarios runs what
// it reads, and keeps its names as aliases (scenarios.Scenario).
package spec
