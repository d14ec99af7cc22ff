package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NewToken returns a fresh random bearer token (32 hex digits).
func NewToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// LabTokens lists the files WriteLabTokens wrote.
type LabTokens struct {
	// Server is the tokens file for `netbed controller serve --tokens`.
	Server string
	// Clients maps "admin", "cnc", "read" and each node's name to the
	// file holding its token (a client's --token-file).
	Clients map[string]string
}

// WriteLabTokens writes a tokens file with a token for admin, cnc, read
// and each node (role node, host=<node>) to dir/tokens, and each token
// alone to dir/token-<name> (a node's: token-node-<name>), every file
// 0600.
func WriteLabTokens(dir string, nodes []string) (LabTokens, error) {
	out := LabTokens{Server: filepath.Join(dir, "tokens"), Clients: map[string]string{}}
	var b strings.Builder
	b.WriteString("# netbed controller tokens: <token> <role> [host=<node>] [name=<who>] [expires=<RFC 3339>]\n")
	add := func(name, file, line string) error {
		tok := NewToken()
		fmt.Fprintf(&b, "%s %s\n", tok, line)
		out.Clients[name] = filepath.Join(dir, file)
		return writeSecret(out.Clients[name], tok+"\n")
	}
	for _, r := range []Role{RoleAdmin, RoleCNC, RoleRead} {
		if err := add(string(r), "token-"+string(r), fmt.Sprintf("%s name=%s", r, r)); err != nil {
			return LabTokens{}, err
		}
	}
	for _, n := range nodes {
		if err := add(n, "token-node-"+n, fmt.Sprintf("node host=%s name=%s", n, n)); err != nil {
			return LabTokens{}, err
		}
	}
	return out, writeSecret(out.Server, b.String())
}

// writeSecret replaces path with data, 0600 whatever the umask or an old
// file's mode.
func writeSecret(path, data string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
