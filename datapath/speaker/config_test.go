package speaker

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestValidateTimers: hold 0 (NoHold) or whole seconds from 3 s, a
// keepalive below the hold time, each problem naming the node and field.
func TestValidateTimers(t *testing.T) {
	base := Config{Node: "leaf1", ASN: 65000, RouterID: netip.MustParseAddr("10.0.0.1"), GRPC: "/x.sock"}
	cases := []struct {
		timers Timers
		want   string // "" valid
	}{
		{Timers{}, ""},
		{Timers{Hold: 3 * time.Second, Keepalive: time.Second}, ""},
		{Timers{Hold: NoHold}, ""},
		{Timers{Keepalive: 8 * time.Second}, ""},
		{Timers{Hold: 2 * time.Second}, "node leaf1: timers.hold: 2s: a hold time is 0 or whole seconds"},
		{Timers{Hold: 3500 * time.Millisecond}, "node leaf1: timers.hold: 3.5s"},
		{Timers{Hold: 70000 * time.Second}, "node leaf1: timers.hold: 19h26m40s"},
		{Timers{Hold: -2}, "node leaf1: timers.hold: -2ns is negative"},
		{Timers{Hold: 3 * time.Second, Keepalive: 3 * time.Second}, "node leaf1: timers.keepalive: 3s is not below the hold time 3s"},
		{Timers{Keepalive: 9 * time.Second}, "node leaf1: timers.keepalive: 9s is not below the hold time 9s"},
		{Timers{Hold: NoHold, Keepalive: time.Second}, "node leaf1: timers.keepalive: 1s: with no hold timer"},
	}
	for _, c := range cases {
		cfg := base
		cfg.Timers = c.timers
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.timers, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrConfig)):
			t.Errorf("%+v: error %v, want %q", c.timers, err, c.want)
		}
	}
	cfg := base
	cfg.Timers = Timers{Hold: NoHold}
	if p := cfg.apiPeer(Peer{}); p.Timers.Config.HoldTime != 65535 || p.Timers.Config.KeepaliveInterval != 21845 {
		t.Errorf("NoHold configures GoBGP with hold %d, keepalive %d; want 65535, 21845", p.Timers.Config.HoldTime, p.Timers.Config.KeepaliveInterval)
	}
}
