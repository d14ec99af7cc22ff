package doctor

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine says what Linux reports of the CPU, memory and kernel, and the
// Go version, as benchmark figures and calibration files record them:
// "2 vCPU AMD EPYC, 24 GB, Linux 6.18, go1.26.8". Anything unreadable is
// left out.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GB", (kb+1<<19)>>20)
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d vCPU %s%s%s, %s", runtime.NumCPU(), cpu, mem, kernel, runtime.Version())
}

// Load is the one-minute load average, or "" when it cannot be read.
func Load() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f[0]
		}
	}
	return ""
}
