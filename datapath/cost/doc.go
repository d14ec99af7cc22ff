// Package cost is what each device on a path costs in time: a calibration
// table of per-device costs measured on real kernel devices and Open
// vSwitch (calibration.json, embedded; remeasured by netbed calibrate), and
// the rule that costs a trace event by its device kind. The simulator
// charges these costs hop by hop, so its latencies are modelled from
// measurements rather than chosen.
package cost
