package api

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/netbed/netbed/controller"
)

// MaxWait caps one long-poll (?wait=) request; clients poll again.
const MaxWait = 60 * time.Second

// maxBody caps a request body.
const maxBody = 1 << 20

// Server is the controller's HTTP API over a Service. Routes (JSON bodies):
//
//	POST   /v1/networks                 NetworkRequest -> 201 Network
//	GET    /v1/networks[?label=]        -> []Network
//	GET    /v1/networks/{ref}           -> Network (ref: name or ID)
//	DELETE /v1/networks/{ref}           -> Network (409 "in_use" while it has subnets)
//	POST   /v1/subnets                  SubnetRequest -> 201 Subnet
//	GET    /v1/subnets[?network=]       -> []Subnet
//	DELETE /v1/subnets/{id}             -> Subnet (409 "in_use" while addresses are held)
//	POST   /v1/ports                    PortRequest -> 202 Port (bound, overlay pending) or 201
//	PUT    /v1/ports/{name}             PortRequest -> get-or-create: 200 or 201/202 Port
//	GET    /v1/ports[?host=]            -> []Port
//	GET    /v1/ports/{name}[?wait=ACTIVE_ACTIVE&timeout=10s] -> Port (408 "timeout" if not reached)
//	DELETE /v1/ports/{name}             -> 200 Port
//	PUT    /v1/ports/{name}/binding     {"host": h} -> Port
//	PUT    /v1/ports/{name}/underlay    StateUpdate -> Port (host agent)
//	PUT    /v1/ports/{name}/overlay     StateUpdate -> Port (CNC)
//	POST   /v1/allocations              AllocRequest -> 201 {"allocations": [...]} (batch, by network or label)
//	POST   /v1/reservations             ReserveRequest -> 201 Allocation
//	POST   /v1/releases                 ReleaseRequest -> 204
//	GET    /v1/stats                    -> []EndpointStats (latency per endpoint)
//	GET    /metrics                     -> the same in Prometheus text format
//	GET    /v1/check                    -> {"problems": [...]} (store consistency)
//	GET    /healthz                     -> 204 (never authenticated)
//
// With SetAuth, every other request is authenticated (401 "unauthorized")
// and authorized by its caller's Role (403 "forbidden"); both answers name
// the refusing rule in "rule" and are counted in /metrics.
//
// Errors are {"code","message"[,"field"]} with the status of their code.
type Server struct {
	svc    *controller.Service
	mux    *http.ServeMux
	stats  *Stats
	log    *slog.Logger
	auth   *Auth // nil: every caller may do everything
	limits Limits
	waits  waiters
}

// SetAuth makes the server authenticate every request but GET /healthz
// (401 without valid credentials) and authorize it by the caller's role
// (403 naming the rule); nil serves everyone. Call it before serving.
func (s *Server) SetAuth(a *Auth) { s.auth = a }

// SetLogger sets where the server logs what it does not tell callers: the
// internal cause of a 500 (a store error, say) and the decoder's own
// words for a bad body. The default is slog.Default().
func (s *Server) SetLogger(l *slog.Logger) { s.log = l }

var _ http.Handler = (*Server)(nil)

// ReserveRequest holds a specific address.
type ReserveRequest struct {
	Network string     `json:"network"`
	Address netip.Addr `json:"address"`
	Holder  string     `json:"holder"`
}

// ReleaseRequest frees addresses of a network.
type ReleaseRequest struct {
	Network   string       `json:"network"`
	Addresses []netip.Addr `json:"addresses"`
	Holder    string       `json:"holder,omitempty"`
}

// AllocResponse lists a batch's addresses.
type AllocResponse struct {
	Allocations []controller.Allocation `json:"allocations"`
}

// BindRequest sets a port's host ("" unbinds).
type BindRequest struct {
	Host string `json:"host"`
}

// CheckResponse lists store inconsistencies (none when healthy).
type CheckResponse struct {
	Problems []string `json:"problems"`
}

// NewServer returns the API of svc.
func NewServer(svc *controller.Service) *Server {
	s := &Server{svc: svc, mux: http.NewServeMux(), stats: newStats(), log: slog.Default(), limits: DefaultLimits()}
	s.handle("POST /v1/networks", s.createNetwork)
	s.handle("GET /v1/networks", s.listNetworks)
	s.handle("GET /v1/networks/{ref}", s.getNetwork)
	s.handle("DELETE /v1/networks/{ref}", func(r *http.Request) (int, any, error) {
		n, err := s.svc.DeleteNetwork(r.Context(), r.PathValue("ref"))
		return http.StatusOK, n, err
	})
	s.handle("POST /v1/subnets", s.createSubnet)
	s.handle("DELETE /v1/subnets/{id}", func(r *http.Request) (int, any, error) {
		sub, err := s.svc.DeleteSubnet(r.Context(), r.PathValue("id"))
		return http.StatusOK, sub, err
	})
	s.handle("GET /v1/subnets", s.listSubnets)
	s.handle("POST /v1/ports", s.createPort)
	s.handle("PUT /v1/ports/{name}", s.ensurePort)
	s.handle("GET /v1/ports", s.listPorts)
	s.handle("GET /v1/ports/{name}", s.getPort)
	s.handle("DELETE /v1/ports/{name}", s.deletePort)
	s.handle("PUT /v1/ports/{name}/binding", s.bindPort)
	s.handle("PUT /v1/ports/{name}/underlay", s.setState(controller.PlaneUnderlay))
	s.handle("PUT /v1/ports/{name}/overlay", s.setState(controller.PlaneOverlay))
	s.handle("POST /v1/allocations", s.allocate)
	s.handle("POST /v1/reservations", s.reserve)
	s.handle("POST /v1/releases", s.release)
	s.handle("PUT /v1/nodes/{name}", s.ensureNode)
	s.handle("GET /v1/nodes", s.listNodes)
	s.handle("DELETE /v1/nodes/{name}", s.deleteNode)
	s.handle("GET /v1/check", s.check)
	s.mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats.Snapshot())
	})
	s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_ = s.stats.WritePrometheus(w)
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s
}

// Stats returns the server's latency figures.
func (s *Server) Stats() *Stats { return s.stats }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" || r.URL.Path != cleanPath(r.URL.Path) {
		// The mux would redirect a path it cleans; no client of this
		// API writes one.
		noRoute(w, r, h)
		return
	}
	if s.auth != nil && pattern != "GET /healthz" {
		p, e := s.auth.authenticate(r)
		if e == nil {
			e = authorize(pattern, p)
		}
		if e != nil {
			s.refuse(w, r, pattern, p, e)
			return
		}
		r = r.WithContext(withPrincipal(r.Context(), p))
	}
	s.mux.ServeHTTP(w, r)
}

// refuse answers a request that authentication or authorization refused,
// logs it and counts it by rule.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, pattern string, p Principal, e *Error) {
	start := time.Now()
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="netbed-controller"`)
	}
	s.log.Warn("controller API: refused", "method", r.Method, "path", r.URL.Path, "caller", p.Name, "role", p.Role, "status", e.Status, "rule", e.Rule, "remote", r.RemoteAddr)
	_ = writeJSON(w, e.Status, e)
	s.stats.refused(e.Rule)
	s.stats.observe(pattern, time.Since(start), true)
}

// noRoute answers a request no route matches (the mux's 404, 405 or
// redirect) with the same status and a JSON error.
func noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}, status: http.StatusMovedPermanently}
	if r.URL.Path == cleanPath(r.URL.Path) {
		rec.status = 0
		h.ServeHTTP(rec, r)
	}
	e := &Error{Status: rec.status, Code: "not_found", Message: fmt.Sprintf("no route %s %s; the routes are listed on api.Server", r.Method, r.URL.Path)}
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		e.Code, e.Message = "method_not_allowed", fmt.Sprintf("%s %s: method not allowed; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow"))
		w.Header().Set("Allow", rec.header.Get("Allow"))
	case rec.status >= 300 && rec.status < 400:
		e.Status, e.Message = http.StatusNotFound, fmt.Sprintf("no route %s %s; write the path without empty, . or .. segments", r.Method, r.URL.Path)
	case rec.status != http.StatusNotFound:
		e.Status = http.StatusNotFound
	}
	_ = writeJSON(w, e.Status, e)
}

// cleanPath is p as the mux cleans it: no empty, . or .. segments, a
// trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// statusRecorder keeps the status and headers a handler writes and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

// handler returns a status and a body (nil for none) or an error.
type handler func(r *http.Request) (int, any, error)

func (s *Server) handle(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status, body, err := h(r)
		if err != nil {
			e := toError(err)
			if e.cause != nil {
				s.log.Error("controller API", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code, "error", e.cause)
			}
			if e.Status == http.StatusForbidden {
				p, _ := principalOf(r)
				s.log.Warn("controller API: refused", "method", r.Method, "path", r.URL.Path, "caller", p.Name, "role", p.Role, "status", e.Status, "rule", e.Rule, "remote", r.RemoteAddr)
				s.stats.refused(e.Rule)
			}
			status, body = e.Status, e
		}
		if err := writeJSON(w, status, body); err != nil {
			s.log.Error("controller API: encode response", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		s.stats.observe(pattern, time.Since(start), status >= 400)
	})
}

// writeJSON writes body with status; a body that cannot be encoded (a
// server bug) becomes a 500 whose cause is returned for the log.
func writeJSON(w http.ResponseWriter, status int, body any) error {
	if body == nil {
		w.WriteHeader(status)
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Code: "internal", Message: internalMessage})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return err
}

// decode reads a JSON body into v, refusing unknown fields and trailing
// data. Its errors say what the caller sent wrong, in the API's words (the
// field, the JSON type it wants); the decoder's own text goes to the log.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e := bodyError(err)
		e.Status, e.Code, e.cause = http.StatusBadRequest, "invalid", err
		e.Message = fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, e.Message)
		return e
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("%s %s: the body goes on after its JSON object; send one object", r.Method, r.URL.Path)}
	}
	return nil
}

// bodyError says what is wrong with a body the JSON decoder refused.
func bodyError(err error) *Error {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		large *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return &Error{Message: "the body is empty; send a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Message: "the body ends in the middle of its JSON object"}
	case errors.As(err, &large):
		return &Error{Message: fmt.Sprintf("the body is larger than %d bytes", large.Limit)}
	case errors.As(err, &syn):
		return &Error{Message: fmt.Sprintf("the body is not valid JSON (at byte %d)", syn.Offset)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &Error{Message: fmt.Sprintf("the body is JSON %s; send a JSON object", typ.Value)}
		}
		return &Error{Field: typ.Field, Message: fmt.Sprintf("field %q: want %s, got JSON %s", typ.Field, jsonKind(typ.Type), typ.Value)}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &Error{Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	// A value whose type parses itself (an address, a prefix, a state).
	return &Error{Message: "a value in the body is not valid: addresses are written like \"10.0.0.5\", prefixes like \"10.0.0.0/24\", states and segment types as the API documents them"}
}

// jsonKind names the JSON a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number from 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	if t.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string"
	}
	return "another JSON type"
}

func (s *Server) createNetwork(r *http.Request) (int, any, error) {
	var req controller.NetworkRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	n, err := s.svc.CreateNetwork(r.Context(), req)
	return http.StatusCreated, n, err
}

func (s *Server) listNetworks(r *http.Request) (int, any, error) {
	ns, err := s.svc.ListNetworks(r.Context(), r.URL.Query().Get("label"))
	if ns == nil {
		ns = []controller.Network{}
	}
	return http.StatusOK, ns, err
}

func (s *Server) getNetwork(r *http.Request) (int, any, error) {
	n, err := s.svc.GetNetwork(r.Context(), r.PathValue("ref"))
	return http.StatusOK, n, err
}

func (s *Server) createSubnet(r *http.Request) (int, any, error) {
	var req controller.SubnetRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	sub, err := s.svc.CreateSubnet(r.Context(), req)
	return http.StatusCreated, sub, err
}

func (s *Server) listSubnets(r *http.Request) (int, any, error) {
	subs, err := s.svc.ListSubnets(r.Context(), r.URL.Query().Get("network"))
	if subs == nil {
		subs = []controller.Subnet{}
	}
	return http.StatusOK, subs, err
}

// createdStatus is 202 when the port waits for its overlay, else 201.
func createdStatus(p controller.Port) int {
	if p.Host != "" && p.Status() != controller.StatusActiveActive {
		return http.StatusAccepted
	}
	return http.StatusCreated
}

func (s *Server) createPort(r *http.Request) (int, any, error) {
	var req controller.PortRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := nodeHost(r, "host", &req.Host, false); err != nil {
		return 0, nil, err
	}
	p, err := s.svc.CreatePort(r.Context(), req)
	return createdStatus(p), p, err
}

func (s *Server) ensurePort(r *http.Request) (int, any, error) {
	var req controller.PortRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if req.Name != "" && req.Name != name {
		return 0, nil, &controller.FieldError{Field: "name", Value: req.Name, Reason: fmt.Sprintf("differs from the port named in the path, %q", name)}
	}
	req.Name = name
	if err := nodeHost(r, "host", &req.Host, false); err != nil {
		return 0, nil, err
	}
	p, created, err := s.svc.EnsurePort(r.Context(), req)
	if created {
		return createdStatus(p), p, err
	}
	return http.StatusOK, p, err
}

func (s *Server) ensureNode(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if p, ok := principalOf(r); ok && p.Role == RoleNode && name != p.Host {
		return 0, nil, forbidden(RuleNodeOwnBlock, "%s may not take node %q's block: a node takes only its own, %q's", p, name, p.Host)
	}
	n, created, err := s.svc.EnsureNode(r.Context(), name)
	if created {
		return http.StatusCreated, n, err
	}
	return http.StatusOK, n, err
}

func (s *Server) listNodes(r *http.Request) (int, any, error) {
	ns, err := s.svc.ListNodes(r.Context())
	if ns == nil {
		ns = []controller.Node{}
	}
	return http.StatusOK, ns, err
}

func (s *Server) deleteNode(r *http.Request) (int, any, error) {
	n, err := s.svc.DeleteNode(r.Context(), r.PathValue("name"))
	return http.StatusOK, n, err
}

func (s *Server) listPorts(r *http.Request) (int, any, error) {
	var ps []controller.Port
	var err error
	if h := r.URL.Query().Get("host"); h != "" {
		ps, err = s.svc.PortsOnHost(r.Context(), h)
	} else {
		ps, err = s.svc.ListPorts(r.Context())
	}
	if ps == nil {
		ps = []controller.Port{}
	}
	return http.StatusOK, ps, err
}

func (s *Server) getPort(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	q := r.URL.Query()
	want := q.Get("wait")
	if want == "" {
		p, err := s.svc.GetPort(r.Context(), name)
		return http.StatusOK, p, err
	}
	switch controller.Status(want) {
	case controller.StatusActiveActive, controller.StatusBuild, controller.StatusDown, controller.StatusError:
	default:
		return 0, nil, &controller.FieldError{Field: "wait", Value: want, Reason: "want ACTIVE_ACTIVE, BUILD, DOWN or ERROR"}
	}
	timeout := 30 * time.Second
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return 0, nil, &controller.FieldError{Field: "timeout", Value: t, Reason: "want a positive duration such as 10s"}
		}
		timeout = d
	}
	leave, err := s.waits.enter(r, s.limits.MaxWaits)
	if err != nil {
		return 0, nil, err
	}
	defer leave()
	ctx, cancel := context.WithTimeout(r.Context(), min(timeout, MaxWait))
	defer cancel()
	p, err := s.svc.WaitPort(ctx, name, controller.Status(want))
	return http.StatusOK, p, err
}

func (s *Server) deletePort(r *http.Request) (int, any, error) {
	p, err := s.svc.DeletePort(r.Context(), r.PathValue("name"))
	return http.StatusOK, p, err
}

func (s *Server) bindPort(r *http.Request) (int, any, error) {
	var req BindRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := nodeHost(r, "host", &req.Host, true); err != nil {
		return 0, nil, err
	}
	p, err := s.svc.BindPort(r.Context(), r.PathValue("name"), req.Host)
	return http.StatusOK, p, err
}

func (s *Server) setState(plane controller.Plane) handler {
	return func(r *http.Request) (int, any, error) {
		var req controller.StateUpdate
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if err := nodeHost(r, "host", &req.Host, false); err != nil {
			return 0, nil, err
		}
		set := s.svc.SetUnderlayState
		if plane == controller.PlaneOverlay {
			set = s.svc.SetOverlayState
		}
		p, err := set(r.Context(), r.PathValue("name"), req)
		return http.StatusOK, p, err
	}
}

func (s *Server) allocate(r *http.Request) (int, any, error) {
	var req controller.AllocRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := s.checkBatch("count", req.Count); err != nil {
		return 0, nil, err
	}
	as, err := s.svc.AllocateBatch(r.Context(), req)
	return http.StatusCreated, AllocResponse{Allocations: as}, err
}

func (s *Server) reserve(r *http.Request) (int, any, error) {
	var req ReserveRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	a, err := s.svc.Reserve(r.Context(), req.Network, req.Address, req.Holder)
	return http.StatusCreated, a, err
}

func (s *Server) release(r *http.Request) (int, any, error) {
	var req ReleaseRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := s.checkBatch("addresses", len(req.Addresses)); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, s.svc.Release(r.Context(), req.Network, req.Addresses, req.Holder)
}

func (s *Server) check(r *http.Request) (int, any, error) {
	ps, err := s.svc.Check(r.Context())
	if ps == nil {
		ps = []string{}
	}
	return http.StatusOK, CheckResponse{Problems: ps}, err
}
