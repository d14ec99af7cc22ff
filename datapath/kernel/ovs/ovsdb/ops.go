package ovsdb

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Op is one operation of a transaction, as RFC 7047 5.2 spells it; the
// functions below make the ones netbed uses.
type Op map[string]any

// Condition is a where clause's [column, function, value].
type Condition [3]any

// Eq is column == value.
func Eq(column string, value any) Condition { return Condition{column, "==", value} }

// Where is a condition on column with function ("<", ">=", "includes"…).
func Where(column, function string, value any) Condition {
	return Condition{column, function, value}
}

// Mutation is a mutate operation's [column, mutator, value].
type Mutation [3]any

// Insert adds row to table; uuidName names the new row for later
// operations of the same transaction (NamedUUID), "" for none.
func Insert(table string, row map[string]any, uuidName string) Op {
	op := Op{"op": "insert", "table": table, "row": row}
	if uuidName != "" {
		op["uuid-name"] = uuidName
	}
	return op
}

// Select reads columns (nil: all) of the rows of table matching where.
func Select(table string, columns []string, where ...Condition) Op {
	op := Op{"op": "select", "table": table, "where": conds(where)}
	if columns != nil {
		op["columns"] = columns
	}
	return op
}

// Mutate changes columns of the rows of table matching where.
func Mutate(table string, where []Condition, mutations ...Mutation) Op {
	return Op{"op": "mutate", "table": table, "where": conds(where), "mutations": mutations}
}

// Wait holds the transaction until the rows of table matching where,
// reduced to columns, are (until "==") or are not (until "!=") exactly
// rows, for at most timeoutMs milliseconds (0: fail at once if they are
// not); after that the server refuses the transaction ("timed out").
func Wait(table string, where []Condition, columns []string, until string, rows []map[string]any, timeoutMs int) Op {
	if columns == nil {
		columns = []string{}
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	return Op{"op": "wait", "table": table, "where": conds(where), "columns": columns, "until": until, "rows": rows, "timeout": timeoutMs}
}

// Comment is a comment the server logs with the transaction.
func Comment(s string) Op { return Op{"op": "comment", "comment": s} }

func conds(c []Condition) []Condition {
	if c == nil {
		return []Condition{}
	}
	return c
}

// UUID is a row's UUID; it is written as ["uuid", "…"].
type UUID string

func (u UUID) MarshalJSON() ([]byte, error) { return json.Marshal([]string{"uuid", string(u)}) }

func (u *UUID) UnmarshalJSON(b []byte) error {
	var v []string
	if err := json.Unmarshal(b, &v); err != nil || len(v) != 2 || v[0] != "uuid" {
		return fmt.Errorf("ovsdb: %s is not a UUID", b)
	}
	*u = UUID(v[1])
	return nil
}

// NamedUUID refers to the row an earlier Insert of the same transaction
// named.
func NamedUUID(name string) []string { return []string{"named-uuid", name} }

// Set is a set of atoms (["set", […]]); the empty set is an optional
// column's "no value".
func Set(atoms ...any) []any {
	if atoms == nil {
		atoms = []any{}
	}
	return []any{"set", atoms}
}

// Map is a map of string to string (["map", [[k, v]…]]), its pairs in
// key order.
func Map(m map[string]string) []any {
	pairs := make([]any, 0, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		pairs = append(pairs, []string{k, m[k]})
	}
	return []any{"map", pairs}
}

// Int reads an integer column of a selected row: false if it is absent
// or an empty optional value.
func Int(row map[string]any, column string) (int, bool) {
	switch v := row[column].(type) {
	case float64:
		return int(v), true
	case []any:
		// An optional column: ["set", []] or ["set", [n]].
		if len(v) == 2 && v[0] == "set" {
			if a, ok := v[1].([]any); ok && len(a) == 1 {
				if f, ok := a[0].(float64); ok {
					return int(f), true
				}
			}
		}
	}
	return 0, false
}

// String reads a string column of a selected row ("" if absent or an
// empty optional value).
func String(row map[string]any, column string) string {
	switch v := row[column].(type) {
	case string:
		return v
	case []any:
		if len(v) == 2 && v[0] == "set" {
			if a, ok := v[1].([]any); ok && len(a) == 1 {
				s, _ := a[0].(string)
				return s
			}
		}
	}
	return ""
}

// RowUUID reads a selected row's _uuid.
func RowUUID(row map[string]any) (UUID, bool) {
	v, ok := row["_uuid"].([]any)
	if !ok || len(v) != 2 || v[0] != "uuid" {
		return "", false
	}
	s, ok := v[1].(string)
	return UUID(s), ok && !strings.ContainsAny(s, " \"")
}
