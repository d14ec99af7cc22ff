package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestPolicyBench(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		rows int
	}{
		{"json", []string{"--rules", "10,200", "--lookups", "256", "--json"}, 0, 2},
		{"table", []string{"--rules", "5", "--lookups", "128"}, 0, 1},
		{"bad-count", []string{"--rules", "ten"}, 2, 0},
		{"few-lookups", []string{"--lookups", "3"}, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(append([]string{"policy-bench"}, c.args...), &out, &errb); code != c.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, c.code, errb.String())
			}
			if c.code != 0 {
				return
			}
			if c.name == "json" {
				var rows []policyBenchRow
				if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
					t.Fatal(err)
				}
				if len(rows) != c.rows || rows[1].Rules != 200 || rows[0].MapNsLookup <= 0 || rows[1].ChainNsLookup <= 0 {
					t.Errorf("rows %+v", rows)
				}
				return
			}
			if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != c.rows+1 {
				t.Errorf("table %q", out.String())
			}
		})
	}
}
