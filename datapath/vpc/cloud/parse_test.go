package cloud_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// TestMaxPodsTable: the shipped instance types give the AWS VPC CNI's
// max-pods figures (misc/eni-max-pods.txt of aws/amazon-vpc-cni-k8s,
// which the CNI computes from the EC2 API with the same formula): a typo
// in an ENI or address count shows here.
func TestMaxPodsTable(t *testing.T) {
	want := map[string]int{
		"t3.nano": 4, "t3.micro": 4, "t3.small": 11, "t3.medium": 17, "t3.large": 35, "t3.xlarge": 58, "t3.2xlarge": 58,
		"m4.large": 20, "m5.large": 29, "m5.xlarge": 58, "m5.2xlarge": 58, "m5.4xlarge": 234, "m5.8xlarge": 234,
		"m5.12xlarge": 234, "m5.16xlarge": 737, "m5.24xlarge": 737,
		"c5.large": 29, "c5.xlarge": 58, "c5.2xlarge": 58, "c5.4xlarge": 234, "c5.9xlarge": 234, "c5.18xlarge": 737,
		"r5.large": 29, "r5.xlarge": 58, "m6i.large": 29, "m6i.xlarge": 58, "m6i.32xlarge": 737,
	}
	l := cloud.DefaultLimits()
	if len(l.InstanceTypes) != len(want) {
		t.Errorf("%d instance types, the test knows %d", len(l.InstanceTypes), len(want))
	}
	for _, it := range l.InstanceTypes {
		if got := it.MaxPods(); got != want[it.Name] {
			t.Errorf("%s: max pods %d (%d ENIs x (%d - 1) + 2), eni-max-pods.txt says %d", it.Name, got, it.ENIs, it.IPv4PerENI, want[it.Name])
		}
	}
	if got := (cloud.InstanceType{ENIs: 3, IPv4PerENI: 10}).MaxPods(); got != 29 {
		t.Errorf("3 x (10 - 1) + 2 = %d", got)
	}
}

func TestDefaultLimits(t *testing.T) {
	l := cloud.DefaultLimits()
	for _, a := range cloud.Actions {
		act, ok := l.Actions[a]
		if !ok || act.Bucket.Capacity <= 0 || act.Bucket.Refill <= 0 || act.Latency <= 0 {
			t.Errorf("%s: %+v", a, act)
		}
	}
	if b := l.Actions["AttachNetworkInterface"].Bucket; b != (cloud.Bucket{Capacity: 50, Refill: 5}) {
		t.Errorf("AttachNetworkInterface (mutating) bucket %+v, want 50 at 5/s", b)
	}
	if b := l.Actions["AssignPrivateIpAddresses"].Bucket; b != (cloud.Bucket{Capacity: 100, Refill: 5}) {
		t.Errorf("AssignPrivateIpAddresses (uncategorized) bucket %+v, want 100 at 5/s", b)
	}
	if l.ElasticIPs != 5 || len(l.Sources) == 0 {
		t.Errorf("elastic IPs %d, %d sources", l.ElasticIPs, len(l.Sources))
	}
}

// TestLimitsErrors: a bad file names file:line: field.
func TestLimitsErrors(t *testing.T) {
	good, err := os.ReadFile("limits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) string {
		i := strings.Index(string(good), s)
		if i < 0 {
			t.Fatalf("limits.yaml has no %q", s)
		}
		return "bad.yaml:" + strconv.Itoa(strings.Count(string(good[:i]), "\n")+1) + ": "
	}
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"unknown top field", "elastic_ips: 5", "elastic_ipz: 5", lineOf("elastic_ips: 5") + "elastic_ipz: unknown field"},
		{"bad count", "{name: m5.large, enis: 3,", "{name: m5.large, enis: three,", lineOf("{name: m5.large, enis: 3,") + "instance_types[8].enis: \"three\" is not a whole number"},
		{"zero addresses", "{name: t3.nano, enis: 2, ipv4_per_eni: 2}", "{name: t3.nano, enis: 2, ipv4_per_eni: 0}", lineOf("{name: t3.nano") + "instance_types[0].ipv4_per_eni"},
		{"duplicate type", "{name: t3.micro,", "{name: t3.nano,", lineOf("{name: t3.micro,") + "instance_types[1].name: t3.nano is given twice"},
		{"unknown class", "CreateSubnet: {class: mutating", "CreateSubnet: {class: mutatin", lineOf("CreateSubnet: {class: mutating") + "actions.CreateSubnet.class: \"mutatin\" is not one of the classes"},
		{"bad latency", "DescribeAddresses: {class: non-mutating, latency: 100ms}", "DescribeAddresses: {class: non-mutating, latency: fast}", lineOf("DescribeAddresses: {class: non-mutating, latency: 100ms}") + "actions.DescribeAddresses.latency: \"fast\" is not a duration"},
		{"class and own bucket", "CreateSubnet: {class: mutating,", "CreateSubnet: {class: mutating, capacity: 3,", lineOf("CreateSubnet: {class: mutating") + "actions.CreateSubnet: give a class or the action's own capacity and refill, not both"},
		{"missing action", "  DescribeAddresses: {class: non-mutating, latency: 100ms}\n", "", "bad.yaml:" + strconv.Itoa(strings.Count(string(good[:strings.Index(string(good), "\nactions:")+1]), "\n")+2) + ": actions: no entry for DescribeAddresses"},
		{"unknown action", "DescribeAddresses:", "DescribeAddress:", lineOf("DescribeAddresses:") + "actions.DescribeAddress: not an action"},
		{"negative refill", "mutating: {capacity: 50, refill: 5}", "mutating: {capacity: 50, refill: -5}", lineOf("  mutating: {capacity: 50") + "classes.mutating.refill"},
		{"bad pool", "public_pool: 198.51.100.0/24", "public_pool: 198.51.100.0/33", lineOf("public_pool:") + "public_pool: \"198.51.100.0/33\" is not an IPv4 prefix"},
		{"tab", "elastic_ips: 5\n", "elastic_ips: 5\nclasses:\n\tmutating: {}\n", "bad.yaml:" + strconv.Itoa(strings.Count(string(good[:strings.Index(string(good), "elastic_ips: 5")]), "\n")+3) + ": mutating: this line is indented with a tab"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := strings.Replace(string(good), c.from, c.to, 1)
			if data == string(good) {
				t.Fatalf("%q not in limits.yaml", c.from)
			}
			_, err := cloud.ParseLimits("bad.yaml", []byte(data))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, cloud.ErrInvalidLimits) {
				t.Fatalf("err = %v\nwant it to say %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "bad.yaml:") {
				t.Errorf("%v does not start with the file", err)
			}
		})
	}
}

func TestLoadLimits(t *testing.T) {
	if l, err := cloud.LoadLimits(""); err != nil || len(l.InstanceTypes) == 0 {
		t.Fatalf("default: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.yaml")
	data, _ := os.ReadFile("limits.yaml")
	data = []byte(strings.Replace(string(data), "elastic_ips: 5", "elastic_ips: 50", 1))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := cloud.LoadLimits(path)
	if err != nil || l.ElasticIPs != 50 {
		t.Fatalf("override: %v, %d", err, l.ElasticIPs)
	}
	if _, err := cloud.LoadLimits(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.LoadLimits(path); err == nil || !strings.Contains(err.Error(), path+": the file holds no YAML") {
		t.Errorf("empty file: %v", err)
	}
}

func FuzzParseLimits(f *testing.F) {
	good, err := os.ReadFile("limits.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("classes: {a: {capacity: 1, refill: 1}}\nactions: {CreateSubnet: {class: a}}\n"))
	f.Add([]byte("instance_types: [{name: x, enis: 1, ipv4_per_eni: 1}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := cloud.ParseLimits("f.yaml", data)
		if err != nil {
			if !errors.Is(err, cloud.ErrInvalidLimits) || !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error %v does not name the file or wrap ErrInvalidLimits", err)
			}
			return
		}
		for _, it := range l.InstanceTypes {
			if it.ENIs < 1 || it.IPv4PerENI < 1 || it.Name == "" {
				t.Fatalf("accepted %+v", it)
			}
		}
		for _, a := range cloud.Actions {
			if _, ok := l.Actions[a]; !ok {
				t.Fatalf("accepted a file without %s", a)
			}
		}
	})
}
