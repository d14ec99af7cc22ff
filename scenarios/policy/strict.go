package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// unknownField returns the path of the first field of data (a YAML
// document) that t, a Kubernetes API type, has no field for: what the
// API server's strict field validation names ("spec.ingres").
func unknownField(data []byte, t reflect.Type) string {
	var v any
	if yaml.Unmarshal(data, &v) != nil {
		return ""
	}
	return walkUnknown(v, t, nil)
}

func walkUnknown(v any, t reflect.Type, path *field.Path) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return ""
	}
	switch x := v.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for _, k := range sortedKeys(x) {
				if p := walkUnknown(x[k], t.Elem(), path.Key(k)); p != "" {
					return p
				}
			}
			return ""
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		fields := map[string]reflect.Type{}
		jsonFields(t, fields)
		for _, k := range sortedKeys(x) {
			p := field.NewPath(k)
			if path != nil {
				p = path.Child(k)
			}
			ft, ok := fields[k]
			if !ok {
				return p.String()
			}
			if s := walkUnknown(x[k], ft, p); s != "" {
				return s
			}
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return ""
		}
		for i, e := range x {
			if p := walkUnknown(e, t.Elem(), path.Index(i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// jsonFields collects t's JSON field names, descending into inline and
// embedded structs.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if (name == "" && f.Anonymous) || strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				jsonFields(ft, out)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
