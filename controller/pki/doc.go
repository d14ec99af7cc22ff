// Package pki writes a small certificate authority with a server
// certificate and per-node client certificates (ECDSA P-256), so that a
// lab can run the controller with mutual TLS in one command.
package pki
