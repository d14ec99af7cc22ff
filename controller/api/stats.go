package api

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Latency histogram buckets grow by 10% from 1µs; 220 buckets reach ~1.3 h.
const (
	bucketBase   = float64(time.Microsecond)
	bucketGrowth = 1.1
	bucketCount  = 220
)

// EndpointStats is the request latency of one endpoint (method and route).
type EndpointStats struct {
	Endpoint string  `json:"endpoint"`
	Count    uint64  `json:"count"`
	Errors   uint64  `json:"errors"` // responses with status >= 400
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
}

type histogram struct {
	count, errors uint64
	max           time.Duration
	buckets       [bucketCount]uint64
}

func bucketOf(d time.Duration) int {
	if float64(d) <= bucketBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/bucketBase) / math.Log(bucketGrowth)))
	return min(i, bucketCount-1)
}

func bucketUpper(i int) float64 { return bucketBase * math.Pow(bucketGrowth, float64(i)) }

// quantile returns the upper bound of the bucket holding quantile q (at
// most 10% above the true value), capped by the maximum seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	var seen uint64
	for i, n := range h.buckets {
		seen += n
		if seen >= rank {
			return min(time.Duration(bucketUpper(i)), h.max)
		}
	}
	return h.max
}

// Stats collects request latency per endpoint. Safe for concurrent use.
type Stats struct {
	mu      sync.Mutex
	m       map[string]*histogram
	refusal map[string]uint64 // 401 and 403 answers by rule
}

func newStats() *Stats { return &Stats{m: map[string]*histogram{}, refusal: map[string]uint64{}} }

func (s *Stats) refused(rule string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusal[rule]++
}

// Refused returns how many requests were refused (401, 403) by each rule.
func (s *Stats) Refused() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.refusal))
	for k, v := range s.refusal {
		out[k] = v
	}
	return out
}

func (s *Stats) observe(endpoint string, d time.Duration, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.m[endpoint]
	if h == nil {
		h = &histogram{}
		s.m[endpoint] = h
	}
	h.count++
	if failed {
		h.errors++
	}
	h.max = max(h.max, d)
	h.buckets[bucketOf(d)]++
}

// Snapshot returns every endpoint's figures, sorted by endpoint.
func (s *Stats) Snapshot() []EndpointStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EndpointStats, 0, len(s.m))
	for ep, h := range s.m {
		out = append(out, EndpointStats{
			Endpoint: ep, Count: h.count, Errors: h.errors,
			P50ms: ms(h.quantile(0.50)), P99ms: ms(h.quantile(0.99)), Maxms: ms(h.max),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WritePrometheus writes the figures in the Prometheus text format: a
// summary per endpoint (seconds) and an error counter.
func (s *Stats) WritePrometheus(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# HELP netbed_controller_request_seconds Request latency per endpoint.\n")
	b.WriteString("# TYPE netbed_controller_request_seconds summary\n")
	snap := s.Snapshot()
	for _, e := range snap {
		l := strconv.Quote(e.Endpoint)
		fmt.Fprintf(&b, "netbed_controller_request_seconds{endpoint=%s,quantile=\"0.5\"} %g\n", l, e.P50ms/1000)
		fmt.Fprintf(&b, "netbed_controller_request_seconds{endpoint=%s,quantile=\"0.99\"} %g\n", l, e.P99ms/1000)
		fmt.Fprintf(&b, "netbed_controller_request_seconds_count{endpoint=%s} %d\n", l, e.Count)
	}
	b.WriteString("# HELP netbed_controller_request_errors_total Responses with status >= 400 per endpoint.\n")
	b.WriteString("# TYPE netbed_controller_request_errors_total counter\n")
	for _, e := range snap {
		fmt.Fprintf(&b, "netbed_controller_request_errors_total{endpoint=%s} %d\n", strconv.Quote(e.Endpoint), e.Errors)
	}
	b.WriteString("# HELP netbed_controller_refused_total Requests refused by authentication (401) or authorization (403), per rule.\n")
	b.WriteString("# TYPE netbed_controller_refused_total counter\n")
	refused := s.Refused()
	rules := make([]string, 0, len(refused))
	for r := range refused {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		fmt.Fprintf(&b, "netbed_controller_refused_total{rule=%s} %d\n", strconv.Quote(r), refused[r])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
