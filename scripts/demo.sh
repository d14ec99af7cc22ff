#!/usr/bin/env bash
# make demo: run the shipped comparison and write the report.
# As root with a kernel that allows namespaces, --backend auto picks netns;
# otherwise it falls back to the in-process sim backend and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/demo}
backend=${BACKEND:-auto}
echo "netbed demo: every shipped scenario, every generation it names (backend: $backend)"
./bin/netbed doctor || true
mkdir -p "$out"
./bin/netbed compare --backend "$backend" --out "$out" scenarios/library/*.yaml > "$out/summary.md" || status=$?
cat "$out/summary.md"
echo
echo "report: $out/report.md, $out/report.html (with plots), $out/report.json, $out/junit.xml"
exit "${status:-0}"
