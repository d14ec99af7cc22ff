// Package testutil holds helpers shared by netbed's tests: the privilege
// gate and random names for test namespaces.
package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// EnvRequirePrivileged turns a privileged test's skip into a failure. CI sets
// it, because CI runs as root and nothing privileged may silently vanish.
const EnvRequirePrivileged = "NETBED_REQUIRE_PRIVILEGED"

// RequireRoot skips t when the process is not root, giving why, and fails it
// instead when NETBED_REQUIRE_PRIVILEGED=1.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "needs root to create network namespaces and links")
}

// Unavailable skips t because the machine lacks something (root, a kernel
// feature, a binary), or fails it when NETBED_REQUIRE_PRIVILEGED=1.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequirePrivileged) == "1" {
		t.Fatalf("%s, and %s=1 forbids skipping", why, EnvRequirePrivileged)
	}
	t.Skip(why)
}

// Name returns prefix followed by 8 random hex digits, e.g. "nbtest-1a2b3c4d",
// for namespaces and links that must not collide with other test runs.
func Name(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}
