package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/controller/ipam"
)

// localIPAM is the ebpf mode's node-local IPAM: an ipam.NodePool over the
// node's CIDR kept in a file under DataDir, changed under an exclusive file
// lock (plugin invocations run concurrently), written atomically. An
// address never leaves the node: nothing but this file knows it.
type localIPAM struct {
	path, lock string
	cidr       netip.Prefix
	field      string // the configuration's field for cidr
}

type localState struct {
	Pool    *ipam.NodePool        `json:"pool"`
	Holders map[string]netip.Addr `json:"holders"` // container ID/ifname -> address
}

func newLocalIPAM(dir, network string, cidr netip.Prefix) *localIPAM {
	name := portName(network) // safe as a file name: no "/"
	return &localIPAM{path: filepath.Join(dir, name+".json"), lock: filepath.Join(dir, name+".lock"), cidr: cidr, field: "nodeCIDR"}
}

// newLocalIPAM6 is the local IPAM of the node's IPv6 CIDR (dual stack):
// a state file of its own beside the IPv4 one.
func newLocalIPAM6(dir, network string, cidr netip.Prefix) *localIPAM {
	name := portName(network) + ".ipv6"
	return &localIPAM{path: filepath.Join(dir, name+".json"), lock: filepath.Join(dir, name+".lock"), cidr: cidr, field: "nodeCIDR6"}
}

// inUse reports whether the IPAM has a CIDR: given, or in its state file.
func (l *localIPAM) inUse() bool {
	if l.cidr.IsValid() {
		return true
	}
	_, err := os.Stat(l.path)
	return err == nil
}

// with runs fn on the state under the lock and saves it when fn changed it.
func (l *localIPAM) with(fn func(s *localState) (bool, error)) error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("local IPAM: %w (check dataDir)", err)
	}
	lf, err := os.OpenFile(l.lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("local IPAM: %w", err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("local IPAM: lock %s: %w", l.lock, err)
	}
	defer unix.Flock(int(lf.Fd()), unix.LOCK_UN)

	s := &localState{Holders: map[string]netip.Addr{}}
	b, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !l.cidr.IsValid() {
			if l.field == "nodeCIDR6" {
				return errors.New("local IPAM: no IPv6 node CIDR: set nodeCIDR6")
			}
			return errors.New("local IPAM: no node CIDR yet: set nodeCIDR, or controllerURL to get one from the cluster pool")
		}
		if s.Pool, err = ipam.NewNodePool(l.cidr); err != nil {
			return fmt.Errorf("local IPAM: %w", err)
		}
	case err != nil:
		return fmt.Errorf("local IPAM: %w", err)
	default:
		if err := json.Unmarshal(b, s); err != nil {
			return fmt.Errorf("local IPAM: %s: %w (move the file away to start afresh)", l.path, err)
		}
		// Without a CIDR (DEL, CHECK, GC with the block from the
		// controller) the file's is the node's.
		if s.Pool == nil || l.cidr.IsValid() && s.Pool.CIDR() != l.cidr {
			return fmt.Errorf("local IPAM: %s holds node CIDR %v but %s is %v; release the pods first or use another dataDir", l.path, cidrOf(s.Pool), l.field, l.cidr)
		}
		if s.Holders == nil {
			s.Holders = map[string]netip.Addr{}
		}
	}
	changed, err := fn(s)
	if err != nil || !changed {
		return err
	}
	out, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("local IPAM: %w", err)
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return fmt.Errorf("local IPAM: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("local IPAM: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local IPAM: %w", err)
	}
	return os.Rename(tmp, l.path)
}

func cidrOf(p *ipam.NodePool) any {
	if p == nil {
		return "(none)"
	}
	return p.CIDR()
}

// Allocate returns holder's address, allocating one on first call, and the
// node gateway.
func (l *localIPAM) Allocate(holder string) (addr, gw netip.Addr, err error) {
	err = l.with(func(s *localState) (bool, error) {
		gw = s.Pool.Gateway()
		if a, ok := s.Holders[holder]; ok {
			addr = a
			return false, nil
		}
		a, err := s.Pool.Allocate()
		if err != nil && s.Pool.Used() < s.Pool.Size() {
			// NodePool.Allocate can miss free addresses behind its cursor
			// in a CIDR smaller than 64 addresses; find one by hand.
			a, err = firstFree(s.Pool)
		}
		if err != nil {
			return false, fmt.Errorf("node CIDR %v: %w", l.cidr, err)
		}
		addr = a
		s.Holders[holder] = a
		return true, nil
	})
	return addr, gw, err
}

// NodeCIDR returns the node CIDR the state holds, if there is one.
func (l *localIPAM) NodeCIDR() (netip.Prefix, error) {
	if _, err := os.Stat(l.path); err != nil {
		return netip.Prefix{}, nil
	}
	var cidr netip.Prefix
	err := l.with(func(s *localState) (bool, error) {
		cidr = s.Pool.CIDR()
		return false, nil
	})
	return cidr, err
}

// Lookup returns holder's address, if any.
func (l *localIPAM) Lookup(holder string) (addr, gw netip.Addr, ok bool, err error) {
	err = l.with(func(s *localState) (bool, error) {
		gw = s.Pool.Gateway()
		addr, ok = s.Holders[holder]
		return false, nil
	})
	return addr, gw, ok, err
}

// Release frees holder's address; a holder without one is not an error.
func (l *localIPAM) Release(holder string) error {
	return l.with(func(s *localState) (bool, error) {
		a, ok := s.Holders[holder]
		if !ok {
			return false, nil
		}
		delete(s.Holders, holder)
		if err := s.Pool.Release(a); err != nil && !errors.Is(err, ipam.ErrNotAllocated) {
			return false, err
		}
		return true, nil
	})
}

// GC releases the address of every holder not in valid.
func (l *localIPAM) GC(valid map[string]bool) error {
	return l.with(func(s *localState) (bool, error) {
		changed := false
		for h, a := range s.Holders {
			if valid[h] {
				continue
			}
			delete(s.Holders, h)
			if err := s.Pool.Release(a); err != nil && !errors.Is(err, ipam.ErrNotAllocated) {
				return false, err
			}
			changed = true
		}
		return changed, nil
	})
}

// firstFree reserves and returns the lowest free address of p.
func firstFree(p *ipam.NodePool) (netip.Addr, error) {
	for a := p.CIDR().Addr(); p.CIDR().Contains(a); a = a.Next() {
		if !p.InUse(a) {
			return a, p.Reserve(a)
		}
	}
	return netip.Addr{}, fmt.Errorf("%w (pool %v)", ipam.ErrPoolExhausted, p.CIDR())
}
