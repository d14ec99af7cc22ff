package main

import (
	"fmt"
	"strings"

	"github.com/netbed/netbed/internal/doctor"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// netnsBackend returns the netns backend: the generation's node models in
// the userspace datapath on real namespaces, instances with the kernel's
// own stack, pcap captures under out/pcap. With kernel set it is the
// kernel backend instead: the same namespaces, with each generation on
// the kernel's own devices (Open vSwitch, bridge and VXLAN, tc BPF). It
// fails, saying what is missing, where this machine cannot run it
// (doctor's checks).
func netnsBackend(out string, kernel bool) (backendChoice, error) {
	name := "netns"
	if kernel {
		name = "kernel"
	}
	for _, b := range doctor.Run().Backends {
		if b.Name == name && len(b.Missing) > 0 {
			return backendChoice{}, fmt.Errorf("%s backend needs %s (see netbed doctor)", name, strings.Join(b.Missing, ", "))
		}
	}
	return backendChoice{name, func(s *scenarios.Scenario) scenarios.Backend {
		return scenarios.NewFabricBackend(scenarios.FabricOptions{
			Runtime: netnsrt.New(netnsrt.Options{Scenario: s.Name, OutDir: out, Kernel: kernel}),
			HTTP:    true,
		})
	}}, nil
}
