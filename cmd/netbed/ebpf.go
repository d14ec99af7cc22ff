package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/datapath/ebpf"
)

func init() {
	register(func() *cobra.Command {
		var (
			sizes   string
			lookups int
			seed    uint64
			asJSON  bool
		)
		c := &cobra.Command{
			Use:   "policy-bench [flags]",
			Short: "gen 3 policy lookup: O(1) BPF policy map vs O(n) iptables-style chain",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runPolicyBench(sizes, lookups, seed, asJSON, c.OutOrStdout())
			},
		}
		c.Flags().StringVar(&sizes, "rules", "10,100,1000,10000", "comma-separated rule counts")
		c.Flags().IntVar(&lookups, "lookups", 200000, "lookups per rule count and structure")
		c.Flags().Uint64Var(&seed, "seed", 1, "seed of the random rules and queries")
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		return c
	})
}

// policyBenchRow is one rule count's measurement.
type policyBenchRow struct {
	Rules         int     `json:"rules"`
	MapNsLookup   float64 `json:"map_ns_per_lookup"`
	ChainNsLookup float64 `json:"chain_ns_per_lookup"`
	ChainOverMap  float64 `json:"chain_over_map"`
}

func runPolicyBench(sizesF string, lookupsF int, seedF uint64, asJSONF bool, stdout io.Writer) error {
	sizes, lookups, seed, asJSON := &sizesF, &lookupsF, &seedF, &asJSONF
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1_000_000 {
			return usageErr("--rules: %q is not a rule count between 1 and 1000000", s)
		}
		ns = append(ns, n)
	}
	if *lookups < 64 {
		return usageErr("--lookups must be at least 64 (got %d)", *lookups)
	}
	var rows []policyBenchRow
	for _, n := range ns {
		rows = append(rows, measurePolicy(n, *lookups, *seed))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rules\tmap ns/lookup\tchain ns/lookup\tchain/map\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.2f\t\n", r.Rules, r.MapNsLookup, r.ChainNsLookup, r.ChainOverMap)
	}
	return tw.Flush()
}

// measurePolicy installs n random exact rules in a policy map and a chain
// and times the same queries on both, in alternating batches so that a
// busy machine slows both alike. Queries hit installed rules (uniform over
// chain positions) and miss 1 in 8.
func measurePolicy(n, lookups int, seed uint64) policyBenchRow {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	seen := map[ebpf.PolicyKey]bool{}
	var rules []ebpf.PolicyRule
	for len(rules) < n {
		proto := ebpf.ProtoTCP
		if r.IntN(2) == 0 {
			proto = ebpf.ProtoUDP
		}
		k := ebpf.NewPolicyKey(ebpf.FirstPodIdentity+ebpf.Identity(r.IntN(1024)), ebpf.FirstPodIdentity+ebpf.Identity(r.IntN(1024)), proto, uint16(1+r.IntN(65535)))
		if !seen[k] {
			seen[k] = true
			rules = append(rules, ebpf.PolicyRule{Key: k, Action: ebpf.PolicyAllow, Name: ebpf.RuleName(k)})
		}
	}
	m := ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy"})
	if _, err := ebpf.Install(m, ebpf.CompiledPolicy{Rules: rules}); err != nil {
		panic(err) // an unbounded map cannot be full
	}
	chain := ebpf.NewChain(rules)
	type query struct {
		src, dst ebpf.Identity
		proto    ebpf.Proto
		port     uint16
	}
	qs := make([]query, 4096)
	for i := range qs {
		k := rules[r.IntN(len(rules))].Key
		q := query{ebpf.Identity(k.SrcIdentity), ebpf.Identity(k.DstIdentity), ebpf.Proto(k.Proto), uint16(k.DPort[0])<<8 | uint16(k.DPort[1])}
		if i%8 == 7 {
			q.src = ebpf.FirstPodIdentity + 2048 // no rule has it
		}
		qs[i] = q
	}
	const batch = 64
	var tMap, tChain time.Duration
	done := 0
	for base := 0; done < lookups; base += batch {
		start := time.Now()
		for j := range batch {
			q := &qs[(base+j)&4095]
			ebpf.PolicyLookup(m, q.src, q.dst, q.proto, q.port)
		}
		mid := time.Now()
		for j := range batch {
			q := &qs[(base+j)&4095]
			chain.Match(q.src, q.dst, q.proto, q.port)
		}
		tMap += mid.Sub(start)
		tChain += time.Since(mid)
		done += batch
	}
	return policyBenchRow{Rules: n, MapNsLookup: float64(tMap.Nanoseconds()) / float64(done),
		ChainNsLookup: float64(tChain.Nanoseconds()) / float64(done), ChainOverMap: float64(tChain) / float64(tMap)}
}
