// Package yamltext says what is wrong with a YAML file before a YAML
// parser does, in words a user can act on: a binary file, a file with
// nothing in it, a tab in the indentation.
package yamltext

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Binary reports whether data is not text: it holds a NUL byte, or is not
// UTF-8, in its first 8 KiB (as git and grep decide).
func Binary(data []byte) bool {
	if len(data) <= 8<<10 {
		return bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data)
	}
	head := data[:8<<10]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	// The cut may split a character: up to 3 bytes of one at the end.
	for cut := range utf8.UTFMax {
		if utf8.Valid(head[:len(head)-cut]) {
			return false
		}
	}
	return true
}

// Empty reports whether data holds no YAML: only blank lines, comments
// and document markers.
func Empty(data []byte) bool {
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && l != "---" && l != "..." {
			return false
		}
	}
	return true
}

// TabIndent finds the first line indented with a tab (YAML indents with
// spaces only) and returns its number and the key it holds, if any.
func TabIndent(data []byte) (line int, key string, ok bool) {
	n := 0
	for l := range strings.Lines(string(data)) {
		n++
		body := strings.TrimLeft(l, " \t")
		indent := l[:len(l)-len(body)]
		body = strings.TrimSpace(body)
		if !strings.Contains(indent, "\t") || body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		k, _, found := strings.Cut(strings.TrimPrefix(body, "- "), ":")
		if !found || strings.ContainsAny(k, " {}[]\"'") {
			k = ""
		}
		return n, k, true
	}
	return 0, "", false
}
