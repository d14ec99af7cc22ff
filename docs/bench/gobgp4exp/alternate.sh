#!/bin/sh
# alternate.sh [ROUNDS]: builds the experiment with GoBGP v3 and v4 and
# runs them in turn, reflector then session, one process at a time, so
# that both see the same machine load; one line per run, each with the
# load average at its start. Root is not needed (loopback 127.0.1.x).
# With PROFILE_DIR set, each run writes a CPU profile there.
set -e
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/gobgp3" . && go build -tags v4 -o "$bin/gobgp4" .
for r in $(seq "${1:-3}"); do
	for mode in reflector session; do
		for v in 3 4; do
			prof=
			if [ -n "$PROFILE_DIR" ]; then prof="-cpuprofile $PROFILE_DIR/v$v-$mode-$r.pprof"; fi
			echo "round=$r $(date -u +%H:%M:%S) $("$bin/gobgp$v" -mode $mode $prof)"
		done
	done
done
