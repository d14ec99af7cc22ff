package topologies

import (
	"testing"
	"time"
)

func TestRates(t *testing.T) {
	cases := []struct {
		in   string
		bps  int64
		text string // FormatRate(bps)
		bad  bool
	}{
		{in: "25G", bps: 25e9, text: "25G"},
		{in: "100Gbps", bps: 100e9, text: "100G"},
		{in: "2.5G", bps: 2_500_000_000, text: "2500M"},
		{in: "10m", bps: 10e6, text: "10M"},
		{in: "1500", bps: 1500, text: "1500"},
		{in: "1T", bps: 1e12, text: "1T"},
		{in: "40 Gbit/s", bps: 40e9, text: "40G"},
		{in: "999", bps: 999, text: "999"},
		{in: "fast", bad: true},
		{in: "-1G", bad: true},
		{in: "", bad: true},
		{in: "1e30G", bad: true},
	}
	for _, c := range cases {
		got, err := ParseRate(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseRate(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.bps {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", c.in, got, err, c.bps)
			continue
		}
		if s := FormatRate(got); s != c.text {
			t.Errorf("FormatRate(%d) = %q, want %q", got, s, c.text)
		}
		if back, err := ParseRate(FormatRate(got)); err != nil || back != got {
			t.Errorf("rate %d does not survive format/parse: %d %v", got, back, err)
		}
	}
}

func TestDelays(t *testing.T) {
	for _, d := range []time.Duration{0, 500 * time.Microsecond, 1500 * time.Microsecond, 2 * time.Second, 7} {
		s := FormatDelay(d)
		for _, r := range s {
			if r > 127 {
				t.Errorf("FormatDelay(%v) = %q is not ASCII", d, s)
			}
		}
		if back, err := ParseDelay(s); err != nil || back != d {
			t.Errorf("delay %v -> %q -> %v, %v", d, s, back, err)
		}
	}
	if _, err := ParseDelay("-1ms"); err == nil {
		t.Error("negative delay accepted")
	}
}

// FuzzParseRate checks that every rate ParseRate accepts is non-negative
// and survives FormatRate and ParseRate again.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"25G", "100Gbps", "2.5G", "1500", "40 Gbit/s", "1e3M", "0", "-1", "NaN", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseRate(%q) = %d", s, v)
		}
		back, err := ParseRate(FormatRate(v))
		if err != nil || back != v {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, v, FormatRate(v), back, err)
		}
	})
}
