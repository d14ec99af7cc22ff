package bpf

import (
	"context"
	"testing"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

// TestKernelFabricEgress enforces egress policy on the source node, in
// the kernel: on TestKernelFabricTunnel's lab, db pods may send only UDP
// 7777 to web, and never UDP 7777 to cache (a deny entry). db-2 (host2)
// reaches web-1 (host1) on UDP 7777 and its ping is dropped on host2 by
// egress default deny; db-1's UDP to cache-1 on the same node is dropped
// by the deny entry; web-1's ping of db-2 gets its reply (conntrack on
// host2, recorded by the ingress check). Each egress verdict is a flow
// event on the source's node and lxc, DirEgress, with the model's rule.
func TestKernelFabricEgress(t *testing.T) {
	r := newRig(t, gen3.Tunnel, false)
	web := r.addPod("web-1", "host1", map[string]string{"app": "web"})
	cache := r.addPod("cache-1", "host1", map[string]string{"app": "cache"})
	db1 := r.addPod("db-1", "host1", map[string]string{"app": "db"})
	db2 := r.addPod("db-2", "host2", map[string]string{"app": "db"})
	cw, cc := web.listen(t, 7777), cache.listen(t, 7777)

	id := func(name string) gen3.Identity {
		ep, _, ok := r.model.Endpoint(name)
		if !ok {
			t.Fatalf("no endpoint %s in the model", name)
		}
		return ep.Identity
	}
	webID, cacheID, dbID := id("web-1"), id("cache-1"), id("db-1")
	allow := gen3.NewEgressKey(dbID, webID, gen3.ProtoUDP, 7777)
	deny := gen3.NewEgressKey(dbID, cacheID, gen3.ProtoUDP, 7777)
	if err := r.model.SetCompiledRules([]gen3.PolicyRule{
		{Key: allow, Action: gen3.PolicyAllow, From: "db-egress"},
		{Key: deny, Action: gen3.PolicyDeny, From: "db-no-cache"},
	}, nil, map[gen3.Identity]bool{dbID: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.fab.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	// event returns the last egress event of src -> dst for proto.
	event := func(src, dst *pod, proto gen3.Proto) FlowEvent {
		t.Helper()
		if err := r.fab.FlushFlows(context.Background()); err != nil {
			t.Fatal(err)
		}
		var e FlowEvent
		for _, x := range r.fab.Flows() {
			if x.Direction == DirEgress && x.Src == src.ip && x.Dst == dst.ip && x.Proto == proto {
				e = x
			}
		}
		return e
	}
	check := func(what string, e FlowEvent, src *pod, node, verdict, rule string, dstID gen3.Identity) {
		t.Helper()
		reason := datapath.ReasonNone
		if verdict == VerdictDropped {
			reason = datapath.ReasonPolicy
		}
		if e.Verdict != verdict || e.Reason != reason || e.Rule != rule || e.Node != node || e.Iface != src.port.HostIf ||
			e.SrcIdentity != dbID || e.DstIdentity != dstID || e.SrcName != src.name {
			t.Errorf("%s: egress flow event %v (reason %q), want %s by %s on %s %s, identities %d -> %d",
				what, e, e.Reason, verdict, rule, node, src.port.HostIf, dbID, dstID)
		}
	}

	if !udp(t, db2, web, cw, "db-2 to web-1", 5) {
		t.Error("db-2 -> web-1 UDP 7777 (egress allowed) never arrived")
	}
	check("allowed across nodes", event(db2, web, gen3.ProtoUDP), db2, "host2", VerdictForwarded, gen3.RuleName(allow), webID)

	if ping(t, db2, web, 1) {
		t.Error("db-2 pinged web-1: its egress allows only UDP 7777 to web")
	}
	check("default deny", event(db2, web, gen3.ProtoICMP), db2, "host2", VerdictDropped, gen3.EgressDefaultDenyRule(dbID, webID), webID)

	if udp(t, db1, cache, cc, "db-1 to cache-1", 1) {
		t.Error("db-1 -> cache-1 UDP 7777 arrived through an egress deny entry")
	}
	check("deny entry, same node", event(db1, cache, gen3.ProtoUDP), db1, "host1", VerdictDropped, gen3.RuleName(deny), cacheID)

	// The reply to a ping db-2 did not start leaves it by conntrack.
	if !ping(t, web, db2, 5) {
		t.Error("web-1 got no echo reply from db-2: the reply must pass db-2's egress policy by conntrack")
	}
	e := waitFlow(t, r.fab, "db-2's echo reply to web-1", func(e FlowEvent) bool {
		return e.Direction == DirEgress && e.Src == db2.ip && e.Dst == web.ip && e.Proto == gen3.ProtoICMP && e.Verdict == VerdictForwarded
	})
	check("reply", e, db2, "host2", VerdictForwarded, "ct:reply", webID)
}
