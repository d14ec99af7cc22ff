package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRequestBodies posts arbitrary bodies to the write endpoints of a real
// service: every answer is a 2xx or a 4xx with a JSON error, never a 5xx,
// and the store stays consistent.
func FuzzRequestBodies(f *testing.F) {
	seeds := []struct {
		route int
		body  string
	}{
		{0, `{"name":"n2","labels":["x"],"segment":{"type":"vlan","id":4095}}`},
		{1, `{"network":"n1","cidr":"10.0.0.0/16"}`},
		{1, `{"network":"n1","cidr":"fd00::/64","gateway":"fd01::1"}`},
		{2, `{"name":"p","label":"prod","host":"h1","mac":"02:00:00:00:00:09"}`},
		{2, `{"name":"q","network":"n1","ip":"10.9.0.2"}`},
		{3, `{"network":"n1","count":3,"holder":"lb"}`},
		{4, `{"state":"ACTIVE","host":"h1"}`},
		{5, `{"network":"n1","addresses":["10.9.0.2"]}`},
		{2, `{"name":`},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}
	fx := newFixture(f, nil)
	fx.network(f, "n1", 1, []string{"prod"}, "10.9.0.0/28")
	if _, err := fx.c.CreatePort(context.Background(), portReq("p0", "n1", "h1")); err != nil {
		f.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"POST", "/v1/networks"}, {"POST", "/v1/subnets"}, {"POST", "/v1/ports"},
		{"POST", "/v1/allocations"}, {"PUT", "/v1/ports/p0/underlay"}, {"POST", "/v1/releases"},
		{"PUT", "/v1/ports/p0/binding"}, {"PUT", "/v1/ports/p0"},
	}
	f.Fuzz(func(t *testing.T, route int, body []byte) {
		if route < 0 {
			route = -route
		}
		r := routes[route%len(routes)]
		req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		NewServer(fx.svc).ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && !bytes.Contains(w.Body.Bytes(), []byte(`"code"`)) {
			t.Fatalf("error without a code: %s", w.Body)
		}
		if w.Code == http.StatusOK || w.Code == http.StatusCreated || w.Code == http.StatusAccepted || w.Code == http.StatusNoContent {
			return
		}
	})
	probs, err := fx.svc.Check(context.Background())
	if err != nil || len(probs) > 0 {
		f.Errorf("store after fuzzing: %v %v", probs, err)
	}
}
