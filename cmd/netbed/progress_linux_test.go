package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal: what a user's
// terminal gives netbed as stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestProgressTerminal: on a terminal progress redraws one line with
// carriage returns; to a file, a pipe or a buffer it writes plain lines.
func TestProgressTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if !newProgress(slave).tty {
		t.Fatal("a pseudo-terminal is not taken for a terminal")
	}
	p := newProgress(slave)
	p.line("[1/1] x/evpn on sim")("spawning")
	p.done("[1/1] x/evpn on sim: ok")
	// Everything is written already; a read may return part of it.
	const want = "\r\033[K[1/1] x/evpn on sim: spawning\r\033[K[1/1] x/evpn on sim: ok"
	var got []byte
	buf := make([]byte, 512)
	for len(got) < len(want) {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !strings.HasPrefix(string(got), want) {
		t.Errorf("on a terminal: %q", got)
	}

	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, out := range map[string]io.Writer{"file": f, "pipe": w, "buffer": &bytes.Buffer{}} {
		if newProgress(out).tty {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	var b bytes.Buffer
	p = newProgress(&b)
	p.line("[1/1] x")("spawning")
	p.line("[1/1] x")("traffic")
	p.done("[1/1] x: ok")
	if b.String() != "[1/1] x: spawning\n[1/1] x: traffic\n[1/1] x: ok\n" {
		t.Errorf("off a terminal: %q", b.String())
	}
}

// TestRunProgressToFile: a run whose stderr is not a terminal (CI, a log
// file) shows its progress as plain lines, no carriage return.
func TestRunProgressToFile(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if code := run([]string{"run", "--backend", "sim", "--gen", "evpn", "../../scenarios/library/cross-subnet-hops.yaml"}, &bytes.Buffer{}, f); code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(b, "\r\033") || !strings.Contains(string(b), "[1/1] cross-subnet-hops/evpn on sim: starting\n") ||
		!strings.Contains(string(b), "[1/1] cross-subnet-hops/evpn on sim: ok (") {
		t.Errorf("progress in a file:\n%q", b)
	}
}
