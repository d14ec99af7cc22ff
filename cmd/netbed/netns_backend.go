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
// own stack, pcap captures under out/pcap. It fails, saying what is
// missing, where this machine cannot run it (doctor's netns checks).
func netnsBackend(out string) (backendChoice, error) {
	for _, b := range doctor.Run().Backends {
		if b.Name == "netns" && len(b.Missing) > 0 {
			return backendChoice{}, fmt.Errorf("netns backend needs %s (see netbed doctor)", strings.Join(b.Missing, ", "))
		}
	}
	return backendChoice{"netns", func(s *scenarios.Scenario) scenarios.Backend {
		return scenarios.NewFabricBackend(scenarios.FabricOptions{
			Runtime: netnsrt.New(netnsrt.Options{Scenario: s.Name, OutDir: out}),
			HTTP:    true,
		})
	}}, nil
}
