package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/controller"
)

// Role is what an authenticated caller may do.
type Role string

// Roles. Every role may read (GET); each adds its writes.
const (
	// RoleAdmin may do everything: networks, subnets, pools,
	// allocations, bindings, node blocks.
	RoleAdmin Role = "admin"
	// RoleNode speaks for one host: it creates, binds (to itself),
	// reports the underlay of and deletes the ports of that host only,
	// and takes that host's node block only.
	RoleNode Role = "node"
	// RoleCNC reports overlay states (the CNC programming the leaves).
	RoleCNC Role = "cnc"
	// RoleRead reads: gets, lists, stats, metrics, the store check (and
	// so blast radius, which only reads).
	RoleRead Role = "read"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{RoleAdmin, RoleNode, RoleCNC, RoleRead}

func (r Role) valid() bool { return slices.Contains(Roles, r) }

// Principal is an authenticated caller.
type Principal struct {
	Name string // from the token file's name=, or the certificate's subject
	Role Role
	Host string // RoleNode: the host it speaks for
	Via  string // "token" or "certificate"
}

func (p Principal) String() string {
	return fmt.Sprintf("%q (role %s)", p.Name, p.Role)
}

// MinTokenLen is the shortest token a tokens file may hold.
const MinTokenLen = 16

// Tokens is a set of bearer tokens, each with its principal and an
// optional expiry, read from a file. Only the tokens' SHA-256 hashes are
// kept, so a lookup costs one hash and its time says nothing about how
// much of a guess was right.
type Tokens struct {
	byHash map[[32]byte]tokenEntry
}

type tokenEntry struct {
	p       Principal
	expires time.Time // zero: never
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// ErrInsecureFile is what reading a secret (a tokens file, a token, a
// key) fails with when group or others may access the file.
var ErrInsecureFile = errors.New("group or others may access it")

// ReadSecretFile reads a file holding a secret, refusing it when group or
// others have any permission on it (as ssh refuses a private key): the
// error names the file, its mode and the chmod that fixes it.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w; run chmod 600 %s", path, m, ErrInsecureFile, path)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b.Bytes(), nil
}

// LoadTokens reads a tokens file (see ParseTokens), refusing one that
// group or others may access.
func LoadTokens(path string) (*Tokens, error) {
	data, err := ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return ParseTokens(path, data)
}

// ParseTokens parses a tokens file: one token a line,
//
//	<token> <role> [host=<node>] [name=<who>] [expires=<RFC 3339 time>]
//
// with role admin, node (which needs host=), cnc or read; blank lines and
// lines starting with # are left out. A token is at least MinTokenLen
// printable characters without spaces. Errors name file:line.
func ParseTokens(file string, data []byte) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]tokenEntry{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	line := 0
	bad := func(format string, a ...any) error {
		return fmt.Errorf("tokens file %s:%d: %s", file, line, fmt.Sprintf(format, a...))
	}
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 2 {
			return nil, bad("want <token> <role> [host=<node>] [name=<who>] [expires=<time>]")
		}
		tok, role := fields[0], Role(fields[1])
		if len(tok) < MinTokenLen {
			return nil, bad("token of %d characters; want at least %d (e.g. 32 hex digits from openssl rand -hex 16)", len(tok), MinTokenLen)
		}
		for _, r := range tok {
			if r <= ' ' || r > '~' {
				return nil, bad("token holds character %q; use printable ASCII", r)
			}
		}
		if !role.valid() {
			return nil, bad("role %q; want admin, node, cnc or read", role)
		}
		e := tokenEntry{p: Principal{Role: role, Via: "token"}}
		for _, f := range fields[2:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok || v == "" {
				return nil, bad("%q: want key=value (host, name or expires)", f)
			}
			switch k {
			case "host":
				e.p.Host = v
			case "name":
				e.p.Name = v
			case "expires":
				at, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return nil, bad("expires %q: want an RFC 3339 time such as 2027-01-31T00:00:00Z", v)
				}
				e.expires = at
			default:
				return nil, bad("unknown key %q; want host, name or expires", k)
			}
		}
		switch {
		case role == RoleNode && e.p.Host == "":
			return nil, bad("role node needs host=<the node's name>")
		case role != RoleNode && e.p.Host != "":
			return nil, bad("host= is only for role node, not %s", role)
		}
		if e.p.Name == "" {
			e.p.Name = string(role)
			if e.p.Host != "" {
				e.p.Name += " " + e.p.Host
			}
		}
		h := sha256.Sum256([]byte(tok))
		if _, dup := t.byHash[h]; dup {
			return nil, bad("the same token again (a token names one caller)")
		}
		t.byHash[h] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", file, err)
	}
	if len(t.byHash) == 0 {
		return nil, fmt.Errorf("tokens file %s: no tokens (a line is <token> <role> [host=<node>])", file)
	}
	return t, nil
}

// Auth says how the server authenticates callers: bearer tokens, verified
// client certificates (mutual TLS), or both. A request that carries an
// Authorization header is judged by its token alone.
type Auth struct {
	Tokens *Tokens // nil: no bearer tokens
	// ClientCerts accepts a client certificate the TLS handshake verified
	// (tls.Config.ClientCAs) as the caller's identity: the role is the
	// first of the subject's organizations that names one (default node),
	// the name the subject's common name, else its first DNS name; a node
	// speaks for the host of that name.
	ClientCerts bool
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
}

// Auth rule names, in 401 and 403 answers and in /metrics.
const (
	RuleCredentials   = "credentials"    // 401: none sent
	RuleTokenFormat   = "token-format"   // 401: Authorization is not "Bearer <token>"
	RuleTokenUnknown  = "token-unknown"  // 401: no such token
	RuleTokenExpired  = "token-expired"  // 401: past its expires=
	RuleRole          = "role"           // 403: the role may not call the route
	RuleNodeOwnHost   = "node-own-host"  // 403: a node named another host
	RuleNodeOwnPort   = "node-own-port"  // 403: a node touched another host's port
	RuleNodeOwnBlock  = "node-own-block" // 403: a node asked for another node's block
	RuleCertification = "certificate"    // 401: a client certificate without a usable name
)

// ErrUnauthorized matches a 401 answer: no, or no valid, credentials.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden matches a 403 answer: the caller may not do that.
var ErrForbidden = errors.New("forbidden")

func unauthorized(rule, format string, a ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Rule: rule, Message: fmt.Sprintf(format, a...)}
}

func forbidden(rule, format string, a ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Rule: rule, Message: fmt.Sprintf(format, a...)}
}

// authenticate returns r's caller.
func (a *Auth) authenticate(r *http.Request) (Principal, *Error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return Principal{}, unauthorized(RuleTokenFormat, "the Authorization header is not \"Bearer <token>\"")
		}
		if a.Tokens == nil {
			return Principal{}, unauthorized(RuleTokenUnknown, "this controller takes no bearer tokens; authenticate with a client certificate")
		}
		e, ok := a.Tokens.byHash[sha256.Sum256([]byte(tok))]
		if !ok {
			return Principal{}, unauthorized(RuleTokenUnknown, "the bearer token is not one of the controller's tokens")
		}
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		if !e.expires.IsZero() && !now().Before(e.expires) {
			return Principal{}, unauthorized(RuleTokenExpired, "the bearer token of %s expired at %s; ask for a new one", e.p, e.expires.Format(time.RFC3339))
		}
		return e.p, nil
	}
	if a.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return certPrincipal(r.TLS.VerifiedChains[0][0])
	}
	how := "send \"Authorization: Bearer <token>\""
	switch {
	case a.Tokens == nil:
		how = "present a client certificate of the controller's CA"
	case a.ClientCerts:
		how += " or present a client certificate of the controller's CA"
	}
	return Principal{}, unauthorized(RuleCredentials, "no credentials: %s", how)
}

// certPrincipal is the caller a verified client certificate names.
func certPrincipal(c *x509.Certificate) (Principal, *Error) {
	p := Principal{Role: RoleNode, Name: c.Subject.CommonName, Via: "certificate"}
	for _, o := range c.Subject.Organization {
		if Role(o).valid() {
			p.Role = Role(o)
			break
		}
	}
	if p.Name == "" && len(c.DNSNames) > 0 {
		p.Name = c.DNSNames[0]
	}
	if p.Name == "" {
		return Principal{}, unauthorized(RuleCertification, "the client certificate names nobody: give it a common name or a DNS name (the node's name)")
	}
	if p.Role == RoleNode {
		p.Host = p.Name
	}
	return p, nil
}

// writeRoutes are the routes a role other than admin may call besides
// every GET; a node's are checked further (nodeHost, the port guard).
var writeRoutes = map[Role][]string{
	RoleNode: {
		"POST /v1/ports", "PUT /v1/ports/{name}", "DELETE /v1/ports/{name}",
		"PUT /v1/ports/{name}/binding", "PUT /v1/ports/{name}/underlay",
		"PUT /v1/nodes/{name}",
	},
	RoleCNC: {"PUT /v1/ports/{name}/overlay"},
}

// authorize checks that p may call the route pattern; routes not listed
// (new ones included) are admin's alone.
func authorize(pattern string, p Principal) *Error {
	if p.Role == RoleAdmin || strings.HasPrefix(pattern, "GET ") || slices.Contains(writeRoutes[p.Role], pattern) {
		return nil
	}
	var may []string
	for _, r := range Roles {
		if r == RoleAdmin || slices.Contains(writeRoutes[r], pattern) {
			may = append(may, string(r))
		}
	}
	return forbidden(RuleRole, "%s may not call %s; roles that may: %s", p, pattern, strings.Join(may, ", "))
}

type principalKey struct{}

// withPrincipal returns ctx carrying p and, for a node, the port guard
// that keeps it to its own host's ports inside the store's transaction.
func withPrincipal(ctx context.Context, p Principal) context.Context {
	ctx = context.WithValue(ctx, principalKey{}, p)
	if p.Role == RoleNode {
		ctx = controller.WithPortGuard(ctx, func(op string, cur controller.Port) error {
			// A node binds (ensure, bind) a port that is unbound or its
			// own; everything else only on its own ports.
			if cur.Host == p.Host || (cur.Host == "" && (op == "ensure" || op == "bind")) {
				return nil
			}
			where := fmt.Sprintf("bound to host %q", cur.Host)
			if cur.Host == "" {
				where = "not bound to any host"
			}
			return forbidden(RuleNodeOwnPort, "%s may not %s port %q: it is %s, and a node acts only on its own host's ports (an admin moves a port between hosts)", p, opVerb(op), cur.Name, where)
		})
	}
	return ctx
}

func opVerb(op string) string {
	switch op {
	case "ensure", "bind":
		return "bind"
	case "delete":
		return "delete"
	}
	return "set the " + op + " state of"
}

// principalOf returns r's authenticated caller; ok is false on a server
// without authentication.
func principalOf(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(Principal)
	return p, ok
}

// nodeHost checks the host a request names in field against a node
// caller's own: a node names only itself. An unset host stays unset when
// keepEmpty (an unbind) and becomes the node's own otherwise (a port it
// creates is bound to it; its state report is checked against the port's
// host).
func nodeHost(r *http.Request, field string, host *string, keepEmpty bool) error {
	p, ok := principalOf(r)
	if !ok || p.Role != RoleNode {
		return nil
	}
	switch {
	case *host == p.Host:
		return nil
	case *host == "" && keepEmpty:
		return nil
	case *host == "":
		*host = p.Host
		return nil
	}
	return forbidden(RuleNodeOwnHost, "%s may not name host %q in %s: a node speaks for its own host, %q", p, *host, field, p.Host)
}

// ReadTokenFile reads a client's bearer token: the file's one line,
// refused when group or others may access the file, or when it is empty.
func ReadTokenFile(path string) (string, error) {
	data, err := ReadSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	switch {
	case tok == "":
		return "", fmt.Errorf("token file %s is empty; it holds the bearer token on one line", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("token file %s holds more than one word; it holds the bearer token alone on one line", path)
	}
	return tok, nil
}
