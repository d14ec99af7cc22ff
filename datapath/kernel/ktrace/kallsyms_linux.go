package ktrace

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// kallsyms names kernel text addresses from /proc/kallsyms, read on first
// use (root sees the addresses).
type kallsyms struct {
	once  sync.Once
	addrs []uint64
	names []string
}

func (k *kallsyms) load() {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return
	}
	defer f.Close()
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || (fields[1] != "t" && fields[1] != "T") || strings.HasPrefix(fields[2], "__pfx_") {
			continue
		}
		a, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		syms = append(syms, sym{a, fields[2]})
	}
	slices.SortFunc(syms, func(a, b sym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	k.addrs = make([]uint64, len(syms))
	k.names = make([]string, len(syms))
	for i, s := range syms {
		k.addrs[i], k.names[i] = s.addr, s.name
	}
}

// name is the function holding addr, or "" if unknown.
func (k *kallsyms) name(addr uint64) string {
	if addr == 0 {
		return ""
	}
	k.once.Do(k.load)
	i, found := slices.BinarySearch(k.addrs, addr)
	if !found {
		i--
	}
	if i < 0 {
		return ""
	}
	return k.names[i]
}
