package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Options says what a lab's certificates are for.
type Options struct {
	// Dir receives the files; it is created (0700) if missing.
	Dir string
	// Nodes get a client certificate each, node-<name>.crt, whose common
	// name and DNS name is the node's name (the controller's node role
	// for that host).
	Nodes []string
	// ServerNames are the DNS names and IP addresses the server
	// certificate is valid for, besides localhost, 127.0.0.1 and ::1.
	ServerNames []string
	// Validity of every certificate; default one year.
	Validity time.Duration
	// Now is when the certificates start; zero means the current time.
	Now time.Time
}

// Lab lists the files WriteLab wrote.
type Lab struct {
	CA, CAKey         string
	Server, ServerKey string
	// Clients maps a client's name ("admin", "cnc", "read", each node's
	// name) to its certificate and key.
	Clients map[string]KeyPair
}

// KeyPair is a certificate file and its key file.
type KeyPair struct{ Cert, Key string }

// WriteLab writes a CA (ca.crt, ca.key), a server certificate
// (server.crt, server.key) and client certificates for admin, cnc and read
// (organization = the role) and for each node (organization node). Keys
// are written 0600, certificates 0644. Existing files are replaced.
func WriteLab(o Options) (Lab, error) {
	if o.Validity <= 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	for _, n := range o.Nodes {
		if n == "" || slices.Contains([]string{"admin", "cnc", "read", "ca", "server"}, n) {
			return Lab{}, fmt.Errorf("node name %q: want a host name other than admin, cnc, read, ca and server", n)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return Lab{}, fmt.Errorf("certificates directory: %w", err)
	}
	lab := Lab{Clients: map[string]KeyPair{}}
	caKey, err := newKey()
	if err != nil {
		return Lab{}, err
	}
	caTmpl := template(o, pkix.Name{CommonName: "netbed lab CA", Organization: []string{"netbed"}})
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.MaxPathLenZero = true, true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Lab{}, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Lab{}, err
	}
	if lab.CA, lab.CAKey, err = write(o.Dir, "ca", caDER, caKey); err != nil {
		return Lab{}, err
	}
	issue := func(name string, subj pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (KeyPair, error) {
		key, err := newKey()
		if err != nil {
			return KeyPair{}, err
		}
		t := template(o, subj)
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		t.DNSNames, t.IPAddresses = dns, ips
		der, err := x509.CreateCertificate(rand.Reader, t, ca, &key.PublicKey, caKey)
		if err != nil {
			return KeyPair{}, fmt.Errorf("certificate %s: %w", name, err)
		}
		c, k, err := write(o.Dir, name, der, key)
		return KeyPair{Cert: c, Key: k}, err
	}
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, n := range o.ServerNames {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else if n != "" {
			dns = append(dns, n)
		}
	}
	srv, err := issue("server", pkix.Name{CommonName: "netbed controller", Organization: []string{"netbed"}}, x509.ExtKeyUsageServerAuth, dns, ips)
	if err != nil {
		return Lab{}, err
	}
	lab.Server, lab.ServerKey = srv.Cert, srv.Key
	for _, role := range []string{"admin", "cnc", "read"} {
		if lab.Clients[role], err = issue(role, pkix.Name{CommonName: role, Organization: []string{role}}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
			return Lab{}, err
		}
	}
	for _, n := range o.Nodes {
		if lab.Clients[n], err = issue("node-"+n, pkix.Name{CommonName: n, Organization: []string{"node"}}, x509.ExtKeyUsageClientAuth, []string{n}, nil); err != nil {
			return Lab{}, err
		}
	}
	return lab, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return k, nil
}

func template(o Options, subj pkix.Name) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subj,
		NotBefore:    o.Now.Add(-time.Minute), // a little clock skew
		NotAfter:     o.Now.Add(o.Validity),
	}
}

// write writes name.crt (0644) and name.key (0600).
func write(dir, name string, der []byte, key *ecdsa.PrivateKey) (certFile, keyFile string, err error) {
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writeFile replaces path with data at mode, whatever mode an old file
// had.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // past the umask
}
