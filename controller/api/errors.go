package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// Error codes on the wire, each with its HTTP status and the sentinel the
// client's error matches with errors.Is. First match wins on the server.
var codes = []struct {
	code   string
	status int
	err    error
}{
	{"pool_exhausted", http.StatusConflict, ipam.ErrPoolExhausted},
	{"address_in_use", http.StatusConflict, ipam.ErrAddressInUse},
	{"not_allocated", http.StatusNotFound, ipam.ErrNotAllocated},
	{"not_holder", http.StatusConflict, ipam.ErrNotHolder},
	{"out_of_range", http.StatusBadRequest, ipam.ErrOutOfRange},
	{"invalid", http.StatusBadRequest, controller.ErrInvalid},
	{"not_found", http.StatusNotFound, controller.ErrNotFound},
	{"already_exists", http.StatusConflict, controller.ErrExists},
	{"subnet_overlap", http.StatusConflict, controller.ErrOverlap},
	{"illegal_transition", http.StatusConflict, controller.ErrIllegalTransition},
	{"in_use", http.StatusConflict, controller.ErrInUse},
	{"stale", http.StatusConflict, controller.ErrStale},
	{"store_unreachable", http.StatusServiceUnavailable, store.ErrUnreachable},
	{"too_large", http.StatusRequestEntityTooLarge, store.ErrTooLarge},
	{"timeout", http.StatusRequestTimeout, context.DeadlineExceeded},
	{"unavailable", http.StatusServiceUnavailable, store.ErrClosed},
	{"canceled", http.StatusServiceUnavailable, context.Canceled}, // server shutting down or client gone
	{"unauthorized", http.StatusUnauthorized, ErrUnauthorized},
	{"forbidden", http.StatusForbidden, ErrForbidden},
	{"busy", http.StatusTooManyRequests, ErrBusy},
}

// Error is an error response: what the server said, and (through Unwrap)
// the sentinel its code stands for.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"` // for code "invalid": the field at fault
	Rule    string `json:"rule,omitempty"`  // for codes "unauthorized" and "forbidden": the rule that refused
	// cause is what the server logs and does not send: the internal
	// error behind an "internal" or "unavailable" answer, or the JSON
	// decoder's words behind an "invalid" body.
	cause error
}

// internalMessage answers a request that failed inside the controller
// (a store error, a bug): the cause is in the server's log, not in the
// response.
const internalMessage = "internal error in the controller; its log has the cause"

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel of e's code, so errors.Is(err,
// ipam.ErrPoolExhausted) holds for a client error as for a local one.
func (e *Error) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

// toError turns a service error into a wire error.
func toError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	e := &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			e.Status, e.Code = c.status, c.code
			break
		}
	}
	// The controller's own errors (not found, invalid field, conflicts)
	// are written for the caller; what is left is internal, or the
	// context's and the store's words: fixed messages, the cause logged.
	switch e.Code {
	case "internal":
		e.Message, e.cause = internalMessage, err
	case "unavailable":
		e.Message, e.cause = "the controller is shutting down (its store is closed); retry against the restarted controller", err
	case "store_unreachable":
		e.Message, e.cause = "the controller cannot reach its store (etcd): a change is made entirely or not at all; retry, reading first what a change that failed this way may have made", err
	case "canceled":
		e.Message, e.cause = "the request was canceled: the controller is shutting down or the client went away", err
	case "timeout":
		if msg, ok := strings.CutSuffix(err.Error(), ": "+context.DeadlineExceeded.Error()); ok {
			e.Message = msg + ": timed out"
		} else if err.Error() == context.DeadlineExceeded.Error() {
			e.Message = "the request timed out"
		}
	}
	var fe *controller.FieldError
	if errors.As(err, &fe) {
		e.Field = fe.Field
	}
	return e
}
