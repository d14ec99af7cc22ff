package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/topologies/netns"
)

// TestRunSimReportsAndExitCodes: a scenario whose expectations hold exits
// 0 and writes every report format; a wrong expectation exits 1.
func TestRunSimReportsAndExitCodes(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "-q", "--backend", "sim", "--gen", "evpn", "--out", out, "../../scenarios/library/spine-failure.yaml"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"report.md", "report.html", "report.json", "junit.xml"} {
		if fi, err := os.Stat(out + "/" + f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The summary is the overview table, the report's first, alone.
	rows := overviewRows(stdout.String())
	if len(rows) != 2 || rows[0][0] != "scenario" || !slices.Equal(rows[1][:5], []string{"spine-failure", "evpn", "sim", "4/4 ✓", "59/59"}) {
		t.Errorf("summary is not the overview with the evpn row:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "## spine-failure") || strings.Contains(stdout.String(), "Failed:") {
		t.Errorf("summary has more than the overview:\n%s", stdout.String())
	}
	bad := t.TempDir() + "/bad.yaml"
	src, _ := os.ReadFile("../../scenarios/library/spine-failure.yaml")
	os.WriteFile(bad, bytes.Replace(src, []byte("evpn: 3,"), []byte("evpn: 4,"), 1), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"run", "-q", "--backend", "sim", "--gen", "evpn", bad}, &stdout, &stderr); code != 1 {
		t.Errorf("wrong expectation: exit %d, want 1; %s", code, stderr.String())
	}
	if rows := overviewRows(stdout.String()); len(rows) != 2 || rows[1][3] != "3/4 ✗" || !strings.Contains(stdout.String(), "\nFailed:\n- spine-failure/evpn step 5 (line 18): switch hops = 4 — a-1 -> a-3 crossed 3 switches") {
		t.Errorf("summary of a failed check lacks its row or line:\n%s", stdout.String())
	}
	if code := run([]string{"run", "--backend", "quantum", bad}, &stdout, &stderr); code != 2 {
		t.Errorf("bad backend: exit %d, want 2", code)
	}
}

// overviewRows are the rows of the Markdown table at the start of out,
// header first, each cell trimmed.
func overviewRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			break
		}
		if strings.HasPrefix(l, "|--") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

// TestRunFormatJSON: with --format json the standard output is the
// report.json content alone, which a pipeline reads back, while the
// progress goes to standard error; against a baseline the changes go
// there too. An unknown format is a usage error.
func TestRunFormatJSON(t *testing.T) {
	out := t.TempDir()
	file := "../../scenarios/library/core-failure.yaml"
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--backend", "sim", "--format", "json", "--out", out, file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	written, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), written) {
		t.Errorf("stdout is not report.json:\n%.500s", stdout.String())
	}
	rep, err := reports.ReadJSON(&stdout)
	if err != nil || len(rep.Runs) != 1 || rep.Runs[0].Scenario != "core-failure" || len(rep.Runs[0].Probes) != 10 {
		t.Fatalf("stdout does not read back as the run's report: %v", err)
	}
	if !strings.Contains(stderr.String(), "[1/1] core-failure/vlan on sim: ok") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"run", "-q", "--backend", "sim", "--format", "json", "--baseline", filepath.Join(out, "report.json"), file}, &stdout, &stderr); code != 0 {
		t.Fatalf("against its own baseline: exit %d: %s", code, stderr.String())
	}
	if !json.Valid(stdout.Bytes()) {
		t.Errorf("stdout with --baseline is not the JSON alone:\n%.500s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "No change") {
		t.Errorf("the baseline comparison is not on stderr:\n%s", stderr.String())
	}
	if code := run([]string{"run", "--backend", "sim", "--format", "yaml", file}, &stdout, &stderr); code != 2 {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}

// TestRunInterruptTearsDown: SIGINT during a netns run stops it, exits
// non-zero and leaves no namespace of the run behind.
func TestRunInterruptTearsDown(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	// A name of its own, so that no other run's lab (tests of other
	// packages run at the same time) can be taken for this one's: the
	// signal must not arrive before the run listens for it.
	name := testutil.Name("sigint-")
	src, err := os.ReadFile("../../scenarios/library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/sigint.yaml"
	src = bytes.Replace(src, []byte("name: cross-subnet-hops"), []byte("name: "+name), 1)
	src = bytes.ReplaceAll(src, []byte("../../topologies/"), []byte(mustAbs(t, "../../topologies")+"/"))
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := "clab-nb-" + name + "-evpn-"
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run([]string{"run", "-q", "--backend", "netns", "--gen", "evpn", file}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for len(labNamespaces(prefix)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run never created its lab")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("interrupted run exited 0")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not stop after SIGINT")
	}
	if left := labNamespaces(prefix); len(left) > 0 {
		t.Errorf("namespaces left after SIGINT: %v", left)
	}
}

func labNamespaces(prefix string) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestShardsMerge: two shards of a comparison run disjoint halves of the
// scenario × generation runs, and `report merge` joins them into the whole.
func TestShardsMerge(t *testing.T) {
	dir := t.TempDir()
	file := "../../scenarios/library/spine-failure.yaml" // evpn, ebpf, ebpf-direct
	var stdout, stderr bytes.Buffer
	for i, shard := range []string{"0/2", "1/2"} {
		out := filepath.Join(dir, fmt.Sprint("s", i))
		if code := run([]string{"compare", "-q", "--backend", "sim", "--shard", shard, "--out", out, file}, &stdout, &stderr); code != 0 {
			t.Fatalf("shard %s: exit %d: %s", shard, code, stderr.String())
		}
	}
	stdout.Reset()
	if code := run([]string{"report", "merge", "-o", filepath.Join(dir, "all"), filepath.Join(dir, "s0", "report.json"), filepath.Join(dir, "s1", "report.json")}, &stdout, &stderr); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr.String())
	}
	// Each run once in the overview.
	for _, gen := range []string{"evpn", "ebpf", "ebpf-direct"} {
		row := regexp.MustCompile(`(?m)^\| spine-failure +\| ` + gen + ` +\| sim +\|`)
		if n := len(row.FindAllString(stdout.String(), -1)); n != 1 {
			t.Errorf("merged report has %d overview rows of %s:\n%s", n, gen, stdout.String())
		}
	}
	if code := run([]string{"compare", "--shard", "2/2", file}, &stdout, &stderr); code != 2 {
		t.Errorf("shard 2/2: exit %d, want 2", code)
	}
}

// TestBaseline: a sim run against its own earlier report changes nothing
// (sim is deterministic for a seed) and exits 0; against a baseline whose
// hop count differs it names the probe and exits 1, and `report diff`
// says the same.
func TestBaseline(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "-q", "--backend", "sim", "--gen", "vlan,evpn", "../../scenarios/library/cross-subnet-hops.yaml"}
	var stdout, stderr bytes.Buffer
	if code := run(append(args[:len(args)-1:len(args)-1], "--out", dir+"/a", args[len(args)-1]), &stdout, &stderr); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(append(args[:len(args)-1:len(args)-1], "--baseline", dir+"/a/report.json", "--out", dir+"/b", args[len(args)-1]), &stdout, &stderr); code != 0 {
		t.Fatalf("same run against its baseline: exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	if !strings.Contains(stdout.String(), "No change") {
		t.Errorf("no 'No change' line:\n%s", stdout.String())
	}
	if b, err := os.ReadFile(dir + "/b/baseline.md"); err != nil || !strings.Contains(string(b), "No change") {
		t.Errorf("baseline.md: %v %q", err, b)
	}
	// A baseline in which gen 1 took 24 hops (the stock host).
	raw, err := os.ReadFile(dir + "/a/report.json")
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(raw, []byte(`"hops": 18`), []byte(`"hops": 24`), 1)
	if bytes.Equal(edited, raw) {
		t.Fatal("report.json has no 18-hop probe to edit")
	}
	old := dir + "/old.json"
	if err := os.WriteFile(old, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := run(append(args[:len(args)-1:len(args)-1], "--baseline", old, args[len(args)-1]), &stdout, &stderr); code != 1 {
		t.Errorf("against a changed baseline: exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "**regression** cross-subnet-hops/vlan: probe 0 (web-1 -> db-1, icmp): 18 hops") {
		t.Errorf("the regression is not named:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"report", "diff", old, dir + "/b/report.json"}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), "18 hops") {
		t.Errorf("report diff: exit %d:\n%s", code, stdout.String())
	}
	if code := run([]string{"report", "diff", dir + "/a/report.json", dir + "/b/report.json"}, &stdout, &stderr); code != 0 {
		t.Errorf("report diff of equal reports: exit %d", code)
	}
	if code := run(append(args[:len(args)-1:len(args)-1], "--max-slowdown", "2", args[len(args)-1]), &stdout, &stderr); code != 2 {
		t.Errorf("--max-slowdown without --baseline: exit %d, want 2", code)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunHold: with --hold the lab stays up after the run, its nodes
// forwarding: from the namespace the listing names for web-1, db-1 (in
// the other subnet) echoes UDP. Ctrl-C then tears it down and the run
// exits 0.
func TestRunHold(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	name := testutil.Name("hold-")
	src, err := os.ReadFile("../../scenarios/library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/hold.yaml"
	src = bytes.Replace(src, []byte("name: cross-subnet-hops"), []byte("name: "+name), 1)
	src = bytes.ReplaceAll(src, []byte("../../topologies/"), []byte(mustAbs(t, "../../topologies")+"/"))
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"run", "--hold", "--backend", "sim", "--gen", "evpn", file}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("--hold on sim: exit %d, want 2", code)
	}
	stderr, stop := holdRun(t, file)
	nsOf, ipOf := map[string]string{}, map[string]string{}
	for _, l := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && f[2] == "on" && f[4] == "ip" && f[5] == "netns" && f[6] == "exec" {
			nsOf[f[0]], ipOf[f[0]] = f[7], f[1]
		}
	}
	if nsOf["web-1"] == "" || ipOf["db-1"] == "" {
		stop()
		t.Fatalf("listing lacks web-1 or db-1:\n%s", stderr.String())
	}
	echoed := udpEcho(t, nsOf["web-1"], ipOf["db-1"]+":7")
	if code, ended := stop(); !ended {
		t.Fatal("the held run did not end after SIGINT")
	} else if code != 0 {
		t.Errorf("held run exited %d after Ctrl-C: %s", code, stderr.String())
	}
	if !echoed {
		t.Errorf("db-1 did not echo web-1's datagram while the lab was held")
	}
	if left := labNamespaces("clab-nb-" + name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

// udpEcho sends a datagram to addr from inside namespace ns and reports
// whether it came back.
func udpEcho(t *testing.T, ns, addr string) bool {
	t.Helper()
	h, err := vnetns.GetFromName(ns)
	if err != nil {
		t.Errorf("namespace %s: %v", ns, err)
		return false
	}
	defer h.Close()
	ok := false
	err = netns.DoIn(h, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64)
		for range 5 {
			c.Write([]byte("held"))
			c.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "held" {
				ok = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("udp from %s: %v", ns, err)
	}
	return ok
}

// TestBaselineAcrossBackends: a sim report is a baseline for a netns run
// of the same scenario (the two must agree on paths, hops and verdicts):
// no change, exit 0.
func TestBaselineAcrossBackends(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	dir := t.TempDir()
	file := "../../scenarios/library/cross-subnet-hops.yaml"
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "-q", "--backend", "sim", "--gen", "evpn,ebpf", "--out", dir + "/sim", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("sim run: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	code := run([]string{"run", "-q", "--backend", "netns", "--gen", "evpn,ebpf", "--baseline", dir + "/sim/report.json", file}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "No change") {
		t.Errorf("netns against the sim baseline: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestRunHoldListsSpeakers: a held gen 2 lab with control_plane: bgp lists
// every switch's speaker with its gRPC socket, which exists while the lab
// is held.
func TestRunHoldListsSpeakers(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	name := testutil.Name("hold-")
	src, err := os.ReadFile("../../scenarios/library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/hold.yaml"
	src = bytes.Replace(src, []byte("name: leaf-failure"), []byte("name: "+name+"\ncontrol_plane: bgp"), 1)
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, stop := holdRun(t, file)
	socks := map[string]string{}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], "unix://") {
			socks[f[0]] = strings.TrimPrefix(f[1], "unix://")
		}
	}
	for _, n := range []string{"spine1", "spine2", "leaf1", "leaf4"} {
		if socks[n] == "" {
			t.Errorf("no speaker listed for %s:\n%s", n, stderr.String())
		} else if _, err := os.Stat(socks[n]); err != nil {
			t.Errorf("%s's socket: %v", n, err)
		}
	}
	if _, ended := stop(); !ended {
		t.Error("the held run did not end after SIGINT")
	}
	if left := labNamespaces("clab-nb-" + name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

// holdRun starts `netbed run --hold` of file's evpn run on netns and
// returns once the lab is held. stop sends SIGINT and waits for the run to
// end, returning its exit code (ended false if it did not end within a
// minute); a failing test calls it too, so that it leaves no lab behind.
func holdRun(t *testing.T, file string) (*syncBuffer, func() (code int, ended bool)) {
	t.Helper()
	done := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		done <- run([]string{"run", "-q", "--hold", "--backend", "netns", "--gen", "evpn", file}, &bytes.Buffer{}, stderr)
	}()
	stop := func() (int, bool) {
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		select {
		case code := <-done:
			return code, true
		case <-time.After(60 * time.Second):
			return 0, false
		}
	}
	deadline := time.Now().Add(120 * time.Second)
	for !strings.Contains(stderr.String(), "Ctrl-C tears it down") {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the lab was never held: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return stderr, stop
}
