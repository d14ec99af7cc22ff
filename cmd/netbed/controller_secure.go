package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/scenarios"
)

// securityFlags are `controller serve`'s flags for TLS, authentication,
// the unix socket's permissions and the API's limits.
type securityFlags struct {
	tlsCert, tlsKey, clientCA, tokens, socketGroup string
	insecure                                       bool
	maxBatch, maxWaits                             int
}

func (s *securityFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&s.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM); needs --tls-key")
	fs.StringVar(&s.tlsKey, "tls-key", "", "the certificate's private key (PEM, mode 0600)")
	fs.StringVar(&s.clientCA, "client-ca", "", "verify client certificates against this CA (mutual TLS): a certificate names its caller (common name) and role (organization, default node); required of every client unless --tokens is set too")
	fs.StringVar(&s.tokens, "tokens", "", "bearer tokens file (mode 0600): lines of <token> <role> [host=<node>] [name=<who>] [expires=<RFC 3339>], role admin, node, cnc or read")
	fs.BoolVar(&s.insecure, "insecure", false, "serve a non-loopback address without TLS or authentication anyway (anyone who reaches it may do anything)")
	fs.StringVar(&s.socketGroup, "socket-group", "", "with --listen unix:PATH, the group (name or id) that may use the socket besides its owner (mode 0660); default none (0600)")
	fs.IntVar(&s.maxBatch, "max-batch", api.DefaultMaxBatch, "most addresses in one allocation or release batch")
	fs.IntVar(&s.maxWaits, "max-waits", api.DefaultMaxWaits, "most long-polls (GET /v1/ports/{name}?wait=) waiting at once")
}

// serverSecurity is what the flags resolved to.
type serverSecurity struct {
	tls     *tls.Config // nil: plain HTTP
	auth    *api.Auth   // nil: no authentication
	limits  api.Limits
	group   string
	warning string // the loud --insecure warning, or ""
}

// prepare checks the flags against the address to serve and loads the
// certificates and tokens. A non-loopback TCP address needs TLS and
// authentication, or --insecure.
func (s securityFlags) prepare(listen string) (*serverSecurity, error) {
	sec := &serverSecurity{limits: api.Limits{MaxBatch: s.maxBatch, MaxWaits: s.maxWaits}, group: s.socketGroup}
	switch {
	case (s.tlsCert == "") != (s.tlsKey == ""):
		return nil, usageErr("--tls-cert and --tls-key go together")
	case s.clientCA != "" && s.tlsCert == "":
		return nil, usageErr("--client-ca needs TLS: add --tls-cert FILE --tls-key FILE")
	case s.socketGroup != "" && !strings.HasPrefix(listen, "unix:"):
		return nil, usageErr("--socket-group is for --listen unix:PATH")
	}
	if exposed(listen) {
		var missing []string
		if s.tlsCert == "" {
			missing = append(missing, "--tls-cert FILE --tls-key FILE")
		}
		if s.tokens == "" && s.clientCA == "" {
			missing = append(missing, "--tokens FILE (or --client-ca FILE)")
		}
		if len(missing) > 0 {
			if !s.insecure {
				return nil, usageErr("--listen %s is not a loopback address: serving it without TLS and authentication would let anyone who reaches it create networks, take addresses and bind ports. Add %s (`netbed controller certs --out DIR` writes a lab's), or --insecure to serve it open anyway", listen, strings.Join(missing, " and "))
			}
			sec.warning = fmt.Sprintf("WARNING: --insecure: serving %s without %s; anyone who reaches it may create networks, take every address and bind any port", listen, map[bool]string{true: "TLS or authentication", false: "TLS"}[s.tokens == "" && s.clientCA == ""])
			if s.tlsCert != "" {
				sec.warning = fmt.Sprintf("WARNING: --insecure: serving %s without authentication; anyone who reaches it may create networks, take every address and bind any port", listen)
			}
		}
	}
	if s.tlsCert != "" {
		c, err := api.ServerTLS(s.tlsCert, s.tlsKey, s.clientCA, s.tokens == "")
		if err != nil {
			return nil, err
		}
		sec.tls = c
	}
	if s.tokens != "" || s.clientCA != "" {
		sec.auth = &api.Auth{ClientCerts: s.clientCA != ""}
		if s.tokens != "" {
			t, err := api.LoadTokens(s.tokens)
			if err != nil {
				return nil, err
			}
			sec.auth.Tokens = t
		}
	}
	return sec, nil
}

// exposed reports whether listen is a TCP address beyond this machine's
// loopback (all interfaces, a non-loopback address or a host name).
func exposed(listen string) bool {
	if strings.HasPrefix(listen, "unix:") {
		return false
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// apply sets the server's authentication and limits and says on out how
// it serves; the --insecure warning goes there and to the log.
func (sec *serverSecurity) apply(srv *api.Server, out io.Writer) {
	srv.SetLimits(sec.limits)
	if sec.auth != nil {
		srv.SetAuth(sec.auth)
	}
	if sec.warning != "" {
		fmt.Fprintf(out, "controller: %s\n", sec.warning)
		slog.Warn("controller: " + sec.warning)
	}
}

// listen opens the listener: a unix socket created 0600 (0660 with the
// socket group, given that group), TLS on top when configured.
func (sec *serverSecurity) listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	var err error
	if network == "unix" {
		// The socket is born with these permissions: no window in which
		// others could connect.
		old := syscall.Umask(0o177)
		ln, err = net.Listen(network, addr)
		syscall.Umask(old)
		if err == nil && sec.group != "" {
			err = groupSocket(addr, sec.group)
			if err != nil {
				ln.Close()
			}
		}
	} else {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, err
	}
	if sec.tls != nil {
		ln = tls.NewListener(ln, sec.tls)
	}
	return ln, nil
}

// groupSocket gives the socket at path to group (a name or a numeric
// id) and lets that group use it.
func groupSocket(path, group string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, lerr := user.LookupGroup(group)
		if lerr != nil {
			return fmt.Errorf("--socket-group %s: %w", group, lerr)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("--socket-group %s: %w", group, err)
	}
	return os.Chmod(path, 0o660)
}

func (sec *serverSecurity) scheme() string {
	if sec.tls != nil {
		return "https"
	}
	return "http"
}

// clientFlags say how a command reaches a controller that serves TLS and
// authenticates (a read token suffices for what the commands read).
type clientFlags struct {
	ca, tokenFile, cert, key string
}

func (c *clientFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&c.ca, "ca", "", "CA of the controller's certificate (https://); default the system's roots")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the bearer token to call the controller with (mode 0600)")
	fs.StringVar(&c.cert, "cert", "", "client certificate for mutual TLS (with --key)")
	fs.StringVar(&c.key, "key", "", "the client certificate's key (mode 0600)")
}

// client returns a client of the controller at url with the flags'
// TLS settings and token.
func (c clientFlags) client(url string) (*api.Client, error) {
	var hc *http.Client
	if c.ca != "" || c.cert != "" || c.key != "" {
		if !strings.HasPrefix(url, "https://") {
			return nil, usageErr("--ca, --cert and --key are for an https:// controller, not %s", url)
		}
		conf, err := api.ClientTLS(c.ca, c.cert, c.key, "")
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
	cl := api.NewClient(url, hc)
	if c.tokenFile != "" {
		tok, err := api.ReadTokenFile(c.tokenFile)
		if err != nil {
			return nil, err
		}
		cl = cl.WithToken(tok)
	}
	return cl, nil
}

// holdController says how to reach a held run's controller process: its
// socket and, in a secure run, the CA and the admin token to call it with.
func holdController(w io.Writer, b *scenarios.FabricBackend) {
	e, ok := b.ControllerEndpoint()
	if !ok {
		return
	}
	if e.CA == "" {
		fmt.Fprintf(w, "controller: curl --unix-socket %s http://localhost/v1/ports\n", e.Socket)
		return
	}
	fmt.Fprintf(w, "controller (TLS, tokens): curl --unix-socket %s --cacert %s -H \"Authorization: Bearer $(cat %s)\" https://localhost/v1/ports\n", e.Socket, e.CA, e.Tokens["admin"])
}
