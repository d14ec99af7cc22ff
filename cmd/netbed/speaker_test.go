package main

import (
	"strings"
	"testing"
)

// netbed speaker is hidden from help, says what it wants, and fails
// naming the configuration it could not read. (The netns runtime's
// tests run it for real, in switches' namespaces.)
func TestSpeakerCommand(t *testing.T) {
	if _, out, _ := runCLI("help"); strings.Contains(out, "speaker") {
		t.Errorf("help lists the hidden speaker command:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"speaker"}, 2, "want --config FILE"},
		{[]string{"speaker", "--config", "/nonexistent/leaf1.json", "extra"}, 2, ""},
		{[]string{"speaker", "--config", "/nonexistent/leaf1.json"}, 1, "/nonexistent/leaf1.json"},
		{[]string{"speaker", "-h"}, 0, "speaker --config FILE"},
	} {
		code, stdout, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, stdout, stderr, c.code, c.want)
		}
	}
}
