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

// EditDistance is the Levenshtein distance between a and b (bytes): how
// many insertions, deletions and substitutions turn one into the other.
// Readers use it to suggest the field a misspelt one meant.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
