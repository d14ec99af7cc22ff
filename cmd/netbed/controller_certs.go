package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/pki"
)

// newControllerCertsCmd is `netbed controller certs`: a lab's CA, server
// and client certificates and tokens, for trying the secure setup.
func newControllerCertsCmd() *cobra.Command {
	var out, nodes, hosts string
	c := &cobra.Command{
		Use:   "certs --out DIR [--nodes a,b] [--hosts name,ip]",
		Short: "write a lab's CA, server and client certificates (ECDSA P-256) and bearer tokens",
		Long: `Writes into DIR a certificate authority (ca.crt), the controller's
certificate (server.crt, for localhost, 127.0.0.1, ::1 and --hosts), client
certificates for admin, cnc, read and each node of --nodes (node-<name>.crt:
the node role for that host), a tokens file for --tokens and each client's
token alone (token-admin, token-node-<name>, ...). Keys and tokens are 0600.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out DIR is required")
			}
			return writeControllerCerts(out, splitList(nodes), splitList(hosts), c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write the files to (created 0700 if missing)")
	c.Flags().StringVar(&nodes, "nodes", "", "comma-separated node (host) names that get a client certificate and a token each")
	c.Flags().StringVar(&hosts, "hosts", "", "comma-separated DNS names and IP addresses the server certificate is for, besides localhost")
	return c
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func writeControllerCerts(dir string, nodes, hosts []string, stdout io.Writer) error {
	lab, err := pki.WriteLab(pki.Options{Dir: dir, Nodes: nodes, ServerNames: hosts})
	if err != nil {
		return err
	}
	toks, err := api.WriteLabTokens(dir, nodes)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(lab.Clients))
	for n := range lab.Clients {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "CA            %s\nserver        %s, %s\n", lab.CA, lab.Server, lab.ServerKey)
	for _, n := range names {
		fmt.Fprintf(stdout, "client %-6s %s, %s, token %s\n", n, lab.Clients[n].Cert, lab.Clients[n].Key, toks.Clients[n])
	}
	fmt.Fprintf(stdout, "tokens        %s\n\nserve:  netbed controller serve --listen 0.0.0.0:7480 --tls-cert %s --tls-key %s --client-ca %s --tokens %s\n",
		toks.Server, lab.Server, lab.ServerKey, lab.CA, toks.Server)
	fmt.Fprintf(stdout, "call:   curl --cacert %s -H \"Authorization: Bearer $(cat %s)\" https://localhost:7480/v1/networks\n", lab.CA, filepath.Join(dir, "token-admin"))
	return nil
}
