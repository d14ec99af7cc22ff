package clab

import (
	"regexp"
	"strings"
)

// Interface aliases: containerlab lets a link name a NOS's own interface
// ("ethernet-1/1" on SR Linux, "Ethernet1" on cEOS) and maps it to the
// Linux interface inside the container ("e1-1", "eth1"). netbed uses the
// Linux names, so that a netbed lab and a containerlab lab have the same
// interfaces in the same namespaces.
var (
	srlAlias  = regexp.MustCompile(`^ethernet-(\d+)/(\d+)(?:/(\d+))?$`)
	ceosAlias = regexp.MustCompile(`^(?:Ethernet|Et)(\d+)(?:/(\d+))?$`)
)

// linuxIface maps an interface alias of kind to its Linux name; ok is false
// when name is not an alias.
func linuxIface(kind, name string) (string, bool) {
	switch strings.ToLower(kind) {
	case "srl", "nokia_srlinux":
		if m := srlAlias.FindStringSubmatch(name); m != nil {
			s := "e" + m[1] + "-" + m[2]
			if m[3] != "" {
				s += "-" + m[3]
			}
			return s, true
		}
	case "ceos", "arista_ceos":
		if m := ceosAlias.FindStringSubmatch(name); m != nil {
			s := "eth" + m[1]
			if m[2] != "" {
				s += "_" + m[2]
			}
			return s, true
		}
	}
	return "", false
}
