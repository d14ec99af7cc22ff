package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// Main runs a package's tests (m.Run), then fails the run, naming them,
// if a process whose command line holds prefix (an OVS daemon started
// with a state directory named after it) or a namespace whose name holds
// it is still there; such namespaces are removed. prefix must hold a
// random part (testutil.Name), so that another run of the same tests at
// the same time is not taken for a leak.
func Main(m *testing.M, prefix string) {
	code := m.Run()
	if left := Processes(prefix); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left processes running: %v\n", left)
		code = 1
	}
	ents, _ := os.ReadDir(netns.NetnsDir)
	for _, e := range ents {
		if strings.Contains(e.Name(), prefix) {
			fmt.Fprintf(os.Stderr, "FAIL: tests left namespace %s\n", e.Name())
			exec.Command("ip", "netns", "del", e.Name()).Run()
			code = 1
		}
	}
	os.Exit(code)
}

// Processes returns the pid and command line of every process whose
// command line holds s.
func Processes(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// Lab deploys topo as namespaces and veth pairs for t (its state under
// t.TempDir()), waits until every link is up, and destroys it when t
// ends; it fails t if it cannot. The caller has checked for root.
func Lab(t testing.TB, topo *topologies.Topology) *netns.Lab {
	t.Helper()
	opt := &netns.Options{StateRoot: t.TempDir()}
	t.Cleanup(func() {
		if _, err := netns.Destroy(topo.Name, opt); err != nil {
			t.Errorf("destroy lab %s: %v", topo.Name, err)
		}
	})
	ctx := context.Background()
	lab, _, err := netns.Deploy(ctx, topo, opt)
	if err != nil {
		t.Fatalf("deploy lab %s: %v", topo.Name, err)
	}
	t.Cleanup(func() { lab.Close() })
	if err := lab.WaitUp(ctx, 5*time.Second); err != nil {
		t.Fatalf("lab %s: %v", topo.Name, err)
	}
	return lab
}

// ShortDir is a new directory for t, removed when t ends, with a short
// path: a daemon's unix socket path is limited to 108 bytes, and
// t.TempDir()'s are long.
func ShortDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TCPTransfer sends n bytes over one TCP connection from src to a
// listener on dst, and checks that all of them arrive within timeout.
// inSrc and inDst run a function in src's and dst's namespaces
// (netns.DoIn); the connection is made from src, which may be the zero
// address (any). dst's family is the connection's.
func TCPTransfer(inSrc, inDst func(func() error) error, src, dst netip.Addr, n int, timeout time.Duration) error {
	network := "tcp4"
	if dst.Is6() {
		network = "tcp6"
	}
	var ln net.Listener
	if err := inDst(func() error {
		var err error
		ln, err = net.Listen(network, net.JoinHostPort(dst.String(), "0"))
		return err
	}); err != nil {
		return fmt.Errorf("listen on %v: %w", dst, err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		m, err := io.Copy(io.Discard, c)
		if err == nil && m != int64(n) {
			err = fmt.Errorf("received %d bytes, want %d", m, n)
		} else if err != nil {
			err = fmt.Errorf("received %d of %d bytes: %w", m, n, err)
		}
		got <- err
	}()
	var c net.Conn
	if err := inSrc(func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		var err error
		c, err = d.Dial(network, ln.Addr().String())
		return err
	}); err != nil {
		return fmt.Errorf("connect to %v: %w", ln.Addr(), err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	_, werr := c.Write(make([]byte, n))
	c.Close()
	if werr != nil {
		werr = fmt.Errorf("send: %w", werr)
	}
	return errors.Join(werr, <-got)
}
