package scenarios

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/pki"
	"github.com/netbed/netbed/controller/store/etcdstore"
	"github.com/netbed/netbed/topologies"
)

// ctlSecurity is a secure run's certificates and tokens.
type ctlSecurity struct {
	lab  pki.Lab
	toks api.LabTokens
	etcd pki.Lab // the etcd members' CA, server and (admin) client certificates
}

// setupSecure writes the run's certificates and tokens beside the
// controller's socket and makes the backend's clients speak TLS with
// them: the backend's with the admin token, the CNC's with its client
// certificate.
func (b *FabricBackend) setupSecure() error {
	dir := filepath.Join(b.cniDir, "pki")
	var hosts []string
	for _, h := range b.env.Topology.NodesByRole(topologies.RoleHost) {
		hosts = append(hosts, h.Name)
	}
	lab, err := pki.WriteLab(pki.Options{Dir: dir, Nodes: hosts})
	if err != nil {
		return fmt.Errorf("controller certificates: %w", err)
	}
	toks, err := api.WriteLabTokens(dir, hosts)
	if err != nil {
		return fmt.Errorf("controller tokens: %w", err)
	}
	b.ctl.sec = &ctlSecurity{lab: lab, toks: toks}
	if b.replicated() {
		if b.ctl.sec.etcd, err = pki.WriteLab(pki.Options{Dir: filepath.Join(dir, "etcd")}); err != nil {
			return fmt.Errorf("etcd certificates: %w", err)
		}
	}
	admin, err := b.secureClient(pki.KeyPair{}, toks.Clients["admin"])
	if err != nil {
		return err
	}
	cncClient, err := b.secureClient(lab.Clients["cnc"], "")
	if err != nil {
		return err
	}
	b.ctl.client, b.ctl.cncClient = admin, cncClient
	b.progress("controller: TLS with tokens and client certificates (%s)", dir)
	return nil
}

// secureClient is a client of the controller's socket over TLS with the
// run's CA, presenting kp, sending the token in tokenFile, if set.
func (b *FabricBackend) secureClient(kp pki.KeyPair, tokenFile string) (*api.Client, error) {
	return b.secureClientOn(b.controllerSocket(), kp, tokenFile)
}

// secureClientOn is secureClient on the socket sock (a replica's own).
func (b *FabricBackend) secureClientOn(sock string, kp pki.KeyPair, tokenFile string) (*api.Client, error) {
	conf, err := api.ClientTLS(b.ctl.sec.lab.CA, kp.Cert, kp.Key, "localhost")
	if err != nil {
		return nil, fmt.Errorf("controller client: %w", err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, TLSClientConfig: conf,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", sock)
		}}
	c := api.NewClient("https://localhost", &http.Client{Transport: tr, Timeout: 30 * time.Second})
	if tokenFile != "" {
		tok, err := api.ReadTokenFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("controller client: %w", err)
		}
		c = c.WithToken(tok)
	}
	return c, nil
}

// secureArgs are `controller serve`'s flags of a secure run.
func (b *FabricBackend) secureArgs() []string {
	s := b.ctl.sec
	if s == nil {
		return nil
	}
	return []string{"--tls-cert", s.lab.Server, "--tls-key", s.lab.ServerKey, "--client-ca", s.lab.CA, "--tokens", s.toks.Server}
}

// etcdSecurity returns, in a secure run on etcd, the members' TLS flags,
// the client TLS of a replica (for the health check) and the replicas'
// flags; all nil otherwise.
func (b *FabricBackend) etcdSecurity() (member []string, client *tls.Config, replica []string, err error) {
	s := b.ctl.sec
	if s == nil || s.etcd.CA == "" {
		return nil, nil, nil, nil
	}
	kp := s.etcd.Clients["admin"]
	if client, err = etcdstore.TLS(s.etcd.CA, kp.Cert, kp.Key); err != nil {
		return nil, nil, nil, err
	}
	member = []string{"--client-cert-auth", "--trusted-ca-file", s.etcd.CA, "--cert-file", s.etcd.Server, "--key-file", s.etcd.ServerKey}
	replica = []string{"--etcd-ca", s.etcd.CA, "--etcd-cert", kp.Cert, "--etcd-key", kp.Key}
	return member, client, replica, nil
}

// checkEtcdSecure makes sure, in a secure run on etcd, that the members
// refuse a client without a certificate and one presenting a certificate
// of the controller's CA (a node's, which every host holds), so that a
// run whose etcd is open fails.
func (b *FabricBackend) checkEtcdSecure(endpoints []string) error {
	s := b.ctl.sec
	if s == nil || s.etcd.CA == "" {
		return nil
	}
	other, who := s.lab.Clients["admin"], "the controller's admin certificate"
	for name, kp := range s.lab.Clients {
		if name != "admin" && name != "cnc" && name != "read" {
			other, who = kp, "node "+name+"'s certificate"
			break
		}
	}
	for _, t := range []struct{ who, cert, key string }{
		{"a client without a certificate", "", ""},
		{who, other.Cert, other.Key},
	} {
		conf, err := etcdstore.TLS(s.etcd.CA, t.cert, t.key)
		if err != nil {
			return err
		}
		st, err := etcdstore.Open(etcdstore.Options{Endpoints: endpoints, TLS: conf, DialTimeout: time.Second, Name: "probe"})
		if err == nil {
			st.Close()
			return fmt.Errorf("secure etcd: %s was let in, want it refused", t.who)
		}
	}
	return nil
}

// checkSecure makes sure the controller just started refuses a caller
// without credentials, so that a secure run that is not would fail.
func (b *FabricBackend) checkSecure(ctx context.Context) error {
	if b.ctl.sec == nil {
		return nil
	}
	anon, err := b.secureClient(pki.KeyPair{}, "")
	if err != nil {
		return err
	}
	_, err = anon.ListNetworks(ctx, "")
	if !errors.Is(err, api.ErrUnauthorized) {
		return fmt.Errorf("secure controller: a caller without credentials got %v, want a 401", err)
	}
	return nil
}

// secureCNI adds to a CNI configuration what the plugin on host needs to
// reach a secure controller: the CA and the node's token.
func (b *FabricBackend) secureCNI(conf map[string]any, host string) {
	if s := b.ctl.sec; s != nil {
		conf["caFile"], conf["tokenFile"] = s.lab.CA, s.toks.Clients[host]
	}
}

// secureMove binds a pod's existing port to the host it is being added
// on, as the orchestrator (admin), when it is bound elsewhere: a node may
// not take another host's port, so the plugin on the new host finds it
// already its own.
func (b *FabricBackend) secureMove(ctx context.Context, name, host string) error {
	if b.ctl.sec == nil {
		return nil
	}
	p, err := b.api.GetPort(ctx, name)
	if errors.Is(err, controller.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", name, host, err)
	}
	if p.Host == "" || p.Host == host {
		return nil
	}
	if _, err := b.api.BindPort(ctx, name, host); err != nil {
		return fmt.Errorf("move %s to %s: %w", name, host, err)
	}
	return nil
}

// cncAPI is the controller as the CNC of a controller process calls it.
func (b *FabricBackend) cncAPI() controller.API {
	if b.ctl.cncClient != nil {
		return b.ctl.cncClient
	}
	return b.ctl.client
}

// ControllerEndpoint says how to reach a run's controller process: its
// unix socket and, in a secure run, the CA its certificate is signed by
// and the token files by caller ("admin", "cnc", "read", each host).
type ControllerEndpoint struct {
	Socket string
	CA     string
	Tokens map[string]string
}

// ControllerEndpoint returns how to reach the run's controller, when it
// is its own process (netns).
func (b *FabricBackend) ControllerEndpoint() (ControllerEndpoint, bool) {
	if b.ctl.bin == "" {
		return ControllerEndpoint{}, false
	}
	e := ControllerEndpoint{Socket: b.controllerSocket()}
	if s := b.ctl.sec; s != nil {
		e.CA, e.Tokens = s.lab.CA, s.toks.Clients
	}
	return e, true
}
