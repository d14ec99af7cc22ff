package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/datapath/speaker"
)

func init() {
	register(func() *cobra.Command {
		var config string
		c := &cobra.Command{
			Use:    "speaker --config FILE",
			Short:  "run one switch's BGP speaker (started by the netns runtime inside the switch's namespace)",
			Hidden: true,
			Args:   noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if config == "" {
					return usageErr("want --config FILE")
				}
				return runSpeaker(config)
			},
		}
		c.Flags().StringVar(&config, "config", "", "the speaker's JSON configuration (written by the netns runtime)")
		return c
	})
}

// runSpeaker is the process the netns runtime starts in a leaf's or
// spine's namespace with control_plane: bgp: a GoBGP speaker configured
// by a JSON file (speaker.WriteConfig), serving GoBGP's gRPC API on the
// unix socket the file names, until SIGTERM or SIGINT.
func runSpeaker(config string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A speaker outlives no netbed: when the process that started it is
	// gone (killed without a chance to stop its speakers), it stops too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func(parent int) {
		for os.Getppid() == parent {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		cancel()
	}(os.Getppid())
	return speaker.RunFile(ctx, config)
}
