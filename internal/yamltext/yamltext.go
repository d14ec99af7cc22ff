// Package yamltext says what is wrong with a YAML file before a YAML
// parser does, in words a user can act on: a binary file, a file with
// nothing in it, a tab in the indentation.
package yamltext

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
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

// MisIndented finds the line a YAML parser's "did not find expected key"
// (or "'-' indicator") error is about. The parser names the line where the
// enclosing block starts (from); the culprit is the first line after it
// that steps back to an indentation no line since from has had, so that
// it belongs to no block: one space too few or too many on a sibling.
// indent is its indentation in spaces.
func MisIndented(data []byte, from int) (line, indent int, key string, ok bool) {
	seen := map[int]bool{}
	prev, n := -1, 0
	for l := range strings.Lines(string(data)) {
		n++
		body := strings.TrimLeft(l, " ")
		ind := len(l) - len(body)
		body = strings.TrimSpace(body)
		if n < from || body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		if prev >= 0 && ind < prev && !seen[ind] {
			k, _, found := strings.Cut(strings.TrimPrefix(body, "- "), ":")
			if !found || strings.ContainsAny(k, " {}[]\"'") {
				k = ""
			}
			return n, ind, k, true
		}
		seen[ind] = true
		// A list item's content is a block at the dash's indentation + 2.
		for rest := body; strings.HasPrefix(rest, "- "); {
			ind += 2
			rest = strings.TrimLeft(rest[2:], " ")
			seen[ind] = true
		}
		prev = ind
	}
	return 0, 0, "", false
}

// expectedAt matches a YAML parser's "did not find expected ..." error,
// which names the line where the enclosing block starts.
var expectedAt = regexp.MustCompile(`line (\d+): did not find expected`)

// BadIndent explains a YAML parser's error err about data when it comes
// from a line indented to no enclosing block's level (MisIndented): the
// line, its key, and a message saying so.
func BadIndent(data []byte, err error) (line int, key, msg string, ok bool) {
	m := expectedAt.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, "", "", false
	}
	from, _ := strconv.Atoi(m[1])
	line, ind, key, ok := MisIndented(data, from)
	if !ok {
		return 0, "", "", false
	}
	return line, key, fmt.Sprintf("this line is indented by %d spaces, as no line of the block above it (from line %d) is; line it up with its siblings", ind, from), true
}

// Where is how every reader of netbed's YAML files says what is wrong
// and where: "file:line: field: msg", leaving out the line when it is
// not known (0) and the field when there is none.
func Where(file string, line int, field, msg string) string {
	loc := file
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	if field != "" {
		return loc + ": " + field + ": " + msg
	}
	return loc + ": " + msg
}
