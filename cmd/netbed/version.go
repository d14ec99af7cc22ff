package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set by the Makefile from `git describe`
// (-ldflags "-X main.version=..."); a plain `go build` leaves it empty and
// the module version from the build info is shown.
var version string

func init() {
	register(func() *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "print netbed's version, commit and Go version (also: netbed --version)",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				_, err := fmt.Fprintf(c.OutOrStdout(), "netbed %s\n", versionString())
				return err
			},
		}
	})
}

// versionString is the -ldflags version (or the module's), then the commit
// and Go version from the build info: "v0.3.0-12-gabc1234 (commit abc1234
// 2026-12-06T10:00:00Z, modified; go1.26.8 linux/amd64)".
func versionString() string {
	v := version
	var details []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		set := map[string]string{}
		for _, s := range bi.Settings {
			set[s.Key] = s.Value
		}
		if rev := set["vcs.revision"]; rev != "" {
			c := "commit " + rev[:min(len(rev), 12)]
			if t := set["vcs.time"]; t != "" {
				c += " " + t
			}
			if set["vcs.modified"] == "true" {
				c += ", modified"
			}
			details = append(details, c)
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	details = append(details, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return v + " (" + strings.Join(details, "; ") + ")"
}
