package clab

import (
	"regexp"
	"strconv"
	"strings"
)

// Interface aliases: containerlab lets a link name a NOS's own interface
// ("ethernet-1/1" on SR Linux, "Ethernet1" on cEOS, "ge-0/0/0" on a
// Juniper VM) and maps it to the Linux interface inside the container
// ("e1-1", "eth1", "eth1"). containerlab generate writes such names for
// the kinds below. netbed uses the Linux names, so that a netbed lab and a
// containerlab lab have the same interfaces in the same namespaces.
type aliasRule struct {
	kinds []string
	re    *regexp.Regexp
	linux func(m []string) string
}

// plus returns a mapping to eth(port+add), port being submatch 1: VM-based
// kinds keep eth0 for management, and count their own ports from 0 or 1.
func plus(add int) func([]string) string {
	return func(m []string) string {
		n, _ := strconv.Atoi(m[1])
		return "eth" + strconv.Itoa(n+add)
	}
}

var aliasRules = []aliasRule{
	{[]string{"srl", "nokia_srlinux"}, regexp.MustCompile(`^ethernet-(\d+)/(\d+)(?:/(\d+))?$`), func(m []string) string {
		s := "e" + m[1] + "-" + m[2]
		if m[3] != "" {
			s += "-" + m[3]
		}
		return s
	}},
	{[]string{"ceos", "arista_ceos"}, regexp.MustCompile(`^(?:Ethernet|Et)(\d+)(?:/(\d+))?$`), func(m []string) string {
		s := "eth" + m[1]
		if m[2] != "" {
			s += "_" + m[2]
		}
		return s
	}},
	{[]string{"arista_veos", "vr-veos", "vr-arista_veos"}, regexp.MustCompile(`^(?:Et|Ethernet)1/(\d+)$`), plus(0)},
	{[]string{"nokia_sros", "vr-sros", "vr-nokia_sros"}, regexp.MustCompile(`^1/1/(\d+)$`), plus(0)},
	// SR-SIM (SR OS in a container): card/[xiom/]mda/[connector/]port, every
	// index from 1, to e<card>-[x<xiom>-]<mda>-[c<connector>-]<port>.
	{[]string{"nokia_srsim"}, regexp.MustCompile(`^([1-9]\d*)/(?:x([1-9]\d*)/)?([1-9]\d*)(?:/c([1-9]\d*))?/([1-9]\d*)$`), func(m []string) string {
		s := "e" + m[1] + "-"
		if m[2] != "" {
			s += "x" + m[2] + "-"
		}
		s += m[3] + "-"
		if m[4] != "" {
			s += "c" + m[4] + "-"
		}
		return s + m[5]
	}},
	{[]string{"juniper_vmx", "vr-vmx", "vr-juniper_vmx", "juniper_vqfx", "vr-vqfx", "vr-juniper_vqfx",
		"juniper_vsrx", "vr-vsrx", "vr-juniper_vsrx", "juniper_vjunosrouter", "juniper_vjunosswitch", "juniper_vjunosevolved"},
		regexp.MustCompile(`^(?:et|xe|ge)-0/0/(\d+)$`), plus(1)},
	{[]string{"cisco_xrv9k", "vr-xrv9k", "vr-cisco_xrv9k", "cisco_xrd_vrouter"},
		regexp.MustCompile(`^(?:Gi|GigabitEthernet|Te|TenGigE|TenGigabitEthernet) ?0/0/0/(\d+)$`), plus(1)},
}

// linuxIface maps an interface alias of kind to its Linux name; ok is false
// when name is not an alias.
func linuxIface(kind, name string) (string, bool) {
	kind = strings.ToLower(kind)
	for _, r := range aliasRules {
		for _, k := range r.kinds {
			if k != kind {
				continue
			}
			if m := r.re.FindStringSubmatch(name); m != nil {
				return r.linux(m), true
			}
			return "", false
		}
	}
	return "", false
}
