package netns

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// testLabPrefix starts every lab name this package's tests use, so that the
// leak check below sees only its own namespaces (other packages' tests may
// run at the same time with their own nbtest- names).
const testLabPrefix = "nbtest-ns"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childDeploy())
	}
	code := m.Run()
	if leaked := leakedNamespaces(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left namespaces behind: %s\n", strings.Join(leaked, " "))
		for _, n := range leaked {
			removeNamespace(n)
		}
		code = 1
	}
	os.Exit(code)
}

func leakedNamespaces() []string {
	ents, _ := os.ReadDir(NetnsDir)
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), testLabPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
