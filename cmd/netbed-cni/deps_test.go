package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The plugin is started once per pod, and every package it links runs
// its initialisation at every start: gopacket's layers cost about 50 ms
// of CPU there (a 300-pod storm on the kernel backend spent most of its
// time starting plugins), etcd's client with gRPC and protobuf (linked
// through the controller's store before its etcd backend had a package
// of its own, controller/store/etcdstore) most of the rest. Kept out are
// the libraries whose initialisation is heavy and which the plugin does
// not need.
func TestPluginLinksNoHeavyInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	heavy := []string{"github.com/google/gopacket", "go.etcd.io/etcd", "google.golang.org/grpc",
		"google.golang.org/protobuf", "github.com/gogo/protobuf", "github.com/golang/protobuf"}
	for _, p := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if p == h || strings.HasPrefix(p, h+"/") {
				t.Errorf("netbed-cni links %s: its initialisation runs at every CNI call", p)
			}
		}
	}
}
