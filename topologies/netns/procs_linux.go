package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsID is a network namespace's identity: the device and inode of its
// nsfs file, the same through a bind mount and /proc/PID/ns/net.
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// killProcessesIn SIGKILLs every process whose network namespace is one
// of the namespaces bound at paths, and waits until they are gone: the
// daemons a run started inside its lab (BGP speakers, ovsdb-server and
// ovs-vswitchd, FRR) outlive a run that was killed itself, and would keep
// the namespaces alive after their mounts are removed. It returns how
// many it killed.
func killProcessesIn(paths []string) (int, error) {
	want := map[nsID]bool{}
	for _, p := range paths {
		id, err := statNS(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return 0, fmt.Errorf("namespace %s: %w", p, err)
		}
		want[id] = true
	}
	if len(want) == 0 {
		return 0, nil
	}
	pids, err := processesIn(want)
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return 0, fmt.Errorf("kill process %d in the lab's namespaces: %w", pid, err)
		}
	}
	// A killed process leaves /proc once its parent (or init) reaps it.
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return len(pids), nil
}

// processesIn lists the processes whose network namespace is in want.
func processesIn(want map[nsID]bool) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		id, err := statNS("/proc/" + e.Name() + "/ns/net")
		if err != nil {
			continue // gone, or a kernel thread
		}
		if want[id] {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// alive reports whether pid still exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] != 'Z'
		}
	}
	return true
}

// killRecorded SIGKILLs the processes recorded in lab's state
// (RecordProcess) that still run as the same process, and waits until
// they are gone; it returns how many it killed.
func killRecorded(root, lab string) (int, error) {
	st, _, err := readState(root, lab)
	if err != nil {
		return 0, nil // no state: nothing recorded
	}
	var pids []int
	for _, p := range st.Processes {
		if p.Start == 0 || procStart(p.PID) != p.Start || !alive(p.PID) {
			continue
		}
		if err := unix.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return 0, fmt.Errorf("kill recorded process %d (%s): %w", p.PID, p.What, err)
		}
		pids = append(pids, p.PID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return len(pids), nil
}
