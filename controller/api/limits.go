package api

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/netbed/netbed/controller"
)

// Limits bound what one caller can make the server hold. Each refusal is
// an answer that names the limit.
type Limits struct {
	// MaxBatch caps the addresses of one batch: an allocation's count and
	// a release's addresses (400 "invalid", field count or addresses).
	MaxBatch int
	// MaxWaits caps the long-polls (GET /v1/ports/{name}?wait=) waiting at
	// once; one more is a 429 "busy".
	MaxWaits int
}

// Default limits. Request bodies are capped at 1 MiB (maxBody) whatever
// the limits.
const (
	DefaultMaxBatch = 4096
	DefaultMaxWaits = 1024
)

// DefaultLimits are a server's limits unless SetLimits changes them.
func DefaultLimits() Limits { return Limits{MaxBatch: DefaultMaxBatch, MaxWaits: DefaultMaxWaits} }

// ErrBusy matches a 429 answer: a limit on concurrent work was reached;
// retry later.
var ErrBusy = errors.New("busy")

// SetLimits sets the server's limits; a zero field keeps its default.
// Call it before serving.
func (s *Server) SetLimits(l Limits) {
	d := DefaultLimits()
	if l.MaxBatch <= 0 {
		l.MaxBatch = d.MaxBatch
	}
	if l.MaxBatch > controller.MaxBatch {
		l.MaxBatch = controller.MaxBatch
	}
	if l.MaxWaits <= 0 {
		l.MaxWaits = d.MaxWaits
	}
	s.limits = l
}

func (s *Server) checkBatch(field string, n int) error {
	if n > s.limits.MaxBatch {
		return &controller.FieldError{Field: field, Value: n, Reason: fmt.Sprintf("at most %d addresses in one batch (the server's limit); send several batches", s.limits.MaxBatch)}
	}
	return nil
}

// waiters counts the long-polls in progress.
type waiters struct{ n atomic.Int64 }

// enter takes a long-poll slot of max, or returns a 429 naming the limit.
func (w *waiters) enter(r *http.Request, max int) (leave func(), err error) {
	if w.n.Add(1) > int64(max) {
		w.n.Add(-1)
		return nil, &Error{Status: http.StatusTooManyRequests, Code: "busy",
			Message: fmt.Sprintf("%s %s: %d long-polls are already waiting, the server's limit; retry later or poll without wait", r.Method, r.URL.Path, max)}
	}
	return func() { w.n.Add(-1) }, nil
}
