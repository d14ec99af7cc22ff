package ovsdb

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
)

// fakeServer reads requests from conn and answers each with reply(req);
// before the first answer it sends the client an echo request, which
// the client must answer with its params. The real server is in
// datapath/kernel/ovs's TestAddPort.
func fakeServer(t *testing.T, conn net.Conn, reply func(req map[string]any) any) (echoed chan map[string]any) {
	echoed = make(chan map[string]any, 1)
	go func() {
		defer conn.Close()
		enc := json.NewEncoder(conn)
		dec := json.NewDecoder(bufio.NewReader(conn))
		if err := enc.Encode(map[string]any{"method": "echo", "params": []any{"ping"}, "id": "echo"}); err != nil {
			return
		}
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return
			}
			if m["id"] == "echo" {
				echoed <- m
				continue
			}
			if err := enc.Encode(map[string]any{"id": m["id"], "error": nil, "result": reply(m)}); err != nil {
				return
			}
		}
	}()
	return echoed
}

func TestTransact(t *testing.T) {
	a, b := net.Pipe()
	var got map[string]any
	echoed := fakeServer(t, b, func(req map[string]any) any {
		got = req
		return []any{
			map[string]any{"uuid": []any{"uuid", "1b0c2bd0-0000-4000-8000-000000000001"}},
			map[string]any{"count": 1},
			map[string]any{"rows": []any{map[string]any{"next_cfg": 7, "ofport": []any{"set", []any{3}}, "error": []any{"set", []any{}}}}},
		}
	})
	c := NewClient(a)
	defer c.Close()
	res, err := c.Transact(context.Background(), "Open_vSwitch",
		Insert("Interface", map[string]any{"name": "p", "external_ids": Map(map[string]string{"b": "2", "a": "1"})}, "iface"),
		Mutate("Open_vSwitch", nil, Mutation{"next_cfg", "+=", 1}),
		Select("Open_vSwitch", []string{"next_cfg"}))
	if err != nil {
		t.Fatal(err)
	}
	if e := <-echoed; e["error"] != nil || len(e["result"].([]any)) != 1 || e["result"].([]any)[0] != "ping" {
		t.Errorf("echo answered %v, want result [ping]", e)
	}
	if got["method"] != "transact" {
		t.Errorf("method %v", got["method"])
	}
	wire, _ := json.Marshal(got["params"])
	want := `["Open_vSwitch",{"op":"insert","row":{"external_ids":["map",[["a","1"],["b","2"]]],"name":"p"},"table":"Interface","uuid-name":"iface"},` +
		`{"mutations":[["next_cfg","+=",1]],"op":"mutate","table":"Open_vSwitch","where":[]},` +
		`{"columns":["next_cfg"],"op":"select","table":"Open_vSwitch","where":[]}]`
	if string(wire) != want {
		t.Errorf("params\n got %s\nwant %s", wire, want)
	}
	if res[0].UUID != "1b0c2bd0-0000-4000-8000-000000000001" || res[1].Count != 1 {
		t.Errorf("results %+v", res)
	}
	row := res[2].Rows[0]
	if n, ok := Int(row, "next_cfg"); !ok || n != 7 {
		t.Errorf("next_cfg %d %v", n, ok)
	}
	if n, ok := Int(row, "ofport"); !ok || n != 3 {
		t.Errorf("ofport %d %v", n, ok)
	}
	if s := String(row, "error"); s != "" {
		t.Errorf("error column %q, want empty", s)
	}
}

// TestTransactError: a refused operation is a *TransactError naming it
// (and the operations after it, not run, come back null); an error at
// commit has Op -1.
func TestTransactError(t *testing.T) {
	for _, c := range []struct {
		name   string
		result []any
		op     int
		want   string
	}{
		{"operation", []any{map[string]any{}, map[string]any{"error": "timed out", "details": "\"wait\" timed out"}, nil},
			1, `ovsdb: transact: operation 1 (wait Bridge): timed out: "wait" timed out`},
		{"commit", []any{map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{"error": "constraint violation", "details": "duplicate"}},
			-1, "ovsdb: transact: commit: constraint violation: duplicate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := net.Pipe()
			fakeServer(t, b, func(map[string]any) any { return c.result })
			cl := NewClient(a)
			defer cl.Close()
			_, err := cl.Transact(context.Background(), "Open_vSwitch",
				Select("Bridge", nil), Wait("Bridge", []Condition{Eq("name", "x")}, []string{"name"}, "==", []map[string]any{{"name": "x"}}, 0), Select("Port", nil))
			var te *TransactError
			if !errors.As(err, &te) || te.Op != c.op || err.Error() != c.want {
				t.Errorf("got %v (%#v), want op %d: %s", err, te, c.op, c.want)
			}
		})
	}
}

// TestClosed: a call waiting when the server goes away returns
// ErrClosed, and so does every call after.
func TestClosed(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		// Read the request, then hang up without answering.
		json.NewDecoder(b).Decode(new(map[string]any))
		b.Close()
	}()
	c := NewClient(a)
	defer c.Close()
	if _, err := c.Transact(context.Background(), "Open_vSwitch", Select("Bridge", nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("first call: %v, want ErrClosed", err)
	}
	if _, err := c.Transact(context.Background(), "Open_vSwitch", Select("Bridge", nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("call after: %v, want ErrClosed", err)
	}
	if c.Err() == nil {
		t.Error("Err is nil after the server hung up")
	}
}
