package speaker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
)

// WriteConfig writes cfg as the JSON file RunFile reads.
func WriteConfig(path string, cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("speaker config for %s: %w", cfg.Node, err)
	}
	return os.WriteFile(path, b, 0o600)
}

// RunFile runs the speaker configured in the JSON file path in this
// process until ctx ends, then stops it: the body of `netbed speaker`,
// started inside a node's network namespace. Sessions to directly
// connected peers go down as soon as their link loses carrier (fast
// external failover), as a router's do, or, with Config.BFD, as soon as
// BFD finds the peer silent, instead of waiting for the hold timer; a
// session that ended otherwise is attempted again after the connect
// retry, not GoBGP's fixed 5 s idle hold (renewDropped).
func RunFile(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read speaker config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("speaker config %s: %w", path, err)
	}
	s, err := Serve(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Stop()
	errc := make(chan error, 3)
	go func() { errc <- s.watchCarrier(ctx) }()
	go func() { errc <- s.runBFD(ctx) }()
	go func() { errc <- s.renewDropped(ctx) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}
