package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clone deep-copies a report through JSON, as a baseline file would be.
func clone(t *testing.T, r *Report) *Report {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	out, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiffSameIsEmpty(t *testing.T) {
	r := sample()
	if ch := Diff(clone(t, r), r, DiffOptions{MaxSlowdown: 1.5}); len(ch) != 0 {
		t.Errorf("changes against itself: %+v", ch)
	}
}

func TestDiffFindsRegressions(t *testing.T) {
	base := sample()
	cases := []struct {
		name  string
		edit  func(r *Report)
		opts  DiffOptions
		reg   bool
		wants string
	}{
		{"hops", func(r *Report) { r.Runs[0].Probes[2].Hops = 24 }, DiffOptions{}, true, "cross-subnet-hops/vlan: probe 2 (a -> b, ): 24 hops (0 switch), was 18 (0)"},
		{"verdict", func(r *Report) { r.Runs[1].Probes[0].Delivered = false }, DiffOptions{}, true, "probe 0 (a -> b, ): dropped, was forwarded"},
		{"path", func(r *Report) { r.Runs[0].Probes[0].Path = []string{"a", "x", "b"} }, DiffOptions{}, true, "path a → x → b, was a → b"},
		{"drop", func(r *Report) { r.Runs[0].Probes[10].DropAt = "core2" }, DiffOptions{}, true, `dropped at "core2" (no-route ), was "core1"`},
		{"check", func(r *Report) { r.Runs[0].Checks[0].Passed = false }, DiffOptions{}, true, "check no longer holds: step 3 hops"},
		{"check fixed", func(r *Report) { r.Runs[1].Checks[0].Passed = true }, DiffOptions{}, false, "check holds now: step 3 hops"},
		{"fewer probes", func(r *Report) { r.Runs[0].Probes = r.Runs[0].Probes[:5] }, DiffOptions{}, true, "5 probes, baseline 11"},
		{"gone", func(r *Report) { r.Runs = r.Runs[:1] }, DiffOptions{}, true, "cross-subnet-hops/evpn: gone"},
		{"new", func(r *Report) { r.Runs = append(r.Runs, &Run{Scenario: "s2", Generation: "ebpf", Backend: "sim"}) }, DiffOptions{}, false, "s2/ebpf: new"},
		{"slower", func(r *Report) {
			for i := range r.Runs[0].Probes {
				r.Runs[0].Probes[i].RTT *= 3
			}
		}, DiffOptions{MaxSlowdown: 2}, true, "round-trip p50 312.0µs, baseline 104.0µs: 3.00× slower (allowed 2.00×)"},
		{"slower, timings off", func(r *Report) {
			for i := range r.Runs[0].Probes {
				r.Runs[0].Probes[i].RTT *= 3
			}
		}, DiffOptions{}, false, ""},
		{"slower on another backend", func(r *Report) {
			r.Runs[0].Backend = "netns"
			for i := range r.Runs[0].Probes {
				r.Runs[0].Probes[i].RTT *= 3
			}
		}, DiffOptions{MaxSlowdown: 2}, false, ""},
		{"faster", func(r *Report) {
			for i := range r.Runs[0].Probes {
				r.Runs[0].Probes[i].RTT /= 4
			}
		}, DiffOptions{MaxSlowdown: 2}, false, "faster"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := clone(t, base)
			c.edit(cur)
			ch := Diff(base, cur, c.opts)
			if Regressed(ch) != c.reg {
				t.Errorf("regressed = %v, want %v: %+v", Regressed(ch), c.reg, ch)
			}
			var md bytes.Buffer
			if err := WriteDiffMarkdown(&md, "base.json", ch); err != nil {
				t.Fatal(err)
			}
			if c.wants == "" {
				if len(ch) != 0 {
					t.Errorf("changes %+v, want none", ch)
				}
				return
			}
			if !strings.Contains(md.String(), c.wants) {
				t.Errorf("diff lacks %q:\n%s", c.wants, md.String())
			}
		})
	}
}

func TestDiffMatchesAcrossBackends(t *testing.T) {
	base := sample()
	cur := clone(t, base)
	for _, r := range cur.Runs {
		r.Backend = "netns"
		for i := range r.Probes {
			r.Probes[i].RTT += time.Millisecond
		}
	}
	if ch := Diff(base, cur, DiffOptions{MaxSlowdown: 1.1}); len(ch) != 0 {
		t.Errorf("netns against a sim baseline with the same behaviour: %+v", ch)
	}
}
