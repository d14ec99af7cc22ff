package topologies

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var rateUnits = []struct {
	suffix string
	mult   int64
}{{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}}

// FormatRate writes a rate in bits per second the way netbed's files and
// flags spell it: "25G", "100G", "1500M", or plain bits per second.
func FormatRate(bps int64) string {
	for _, u := range rateUnits {
		if bps != 0 && bps%u.mult == 0 {
			return strconv.FormatInt(bps/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(bps, 10)
}

// ParseRate reads a rate in bits per second: a number with an optional
// K, M, G or T suffix (decimal) and an optional "bps" or "bit/s" ("25G",
// "25Gbps", "2.5G", "1000000").
func ParseRate(s string) (int64, error) {
	num := strings.TrimSpace(s)
	low := strings.ToLower(num)
	for _, unit := range []string{"bit/s", "bps", "b/s", "bit"} {
		if strings.HasSuffix(low, unit) {
			num, low = num[:len(num)-len(unit)], low[:len(low)-len(unit)]
			break
		}
	}
	mult := int64(1)
	for _, u := range rateUnits {
		if strings.HasSuffix(low, strings.ToLower(u.suffix)) {
			mult, num = u.mult, num[:len(num)-1]
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("rate %q: want a number of bits per second with an optional K/M/G/T suffix, like 25G", s)
	}
	return int64(math.Round(f * float64(mult))), nil
}

// FormatDelay writes a duration in ASCII ("500us", "1ms", "0s"), which
// time.ParseDuration reads back.
func FormatDelay(d time.Duration) string {
	return strings.ReplaceAll(d.String(), "µ", "u")
}

// ParseDelay reads a non-negative duration ("500us", "1.5ms").
func ParseDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("delay %q: want a non-negative duration like 500us or 2ms", s)
	}
	return d, nil
}
