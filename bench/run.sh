#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmark suite, as root: per-packet cost, control plane, Maglev build, connections
# (see bench/README.md), then bench/RESULTS.md, bench/results/*.json and bench/results.svg.
#
#   sudo bench/run.sh            the full run (tens of minutes); writes into bench/
#   sudo bench/run.sh --quick    every part briefly, to prove the suite works; writes to a
#                                temporary directory and asserts nothing about speed
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
out=bench/results
if [ "${1:-}" = "--quick" ]; then
  quick=(--quick)
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  out=$scratch/results
fi

# What the comparisons need, besides what every part of Sluice needs.
scripts/bootstrap.sh iptables nftables apache2-utils haproxy conntrack
dotnet build Appliance.sln -c Release -nologo -v quiet

# Each part runs as a child whose PID names its namespaces (sl-*-PID-*): if the run is
# interrupted, the trap removes exactly those.
part_pid=
interrupted() {
  [ -n "$part_pid" ] && kill "$part_pid" 2>/dev/null && wait "$part_pid" 2>/dev/null
  for ns in $(ip netns list | awk '{print $1}' | grep -- "-$part_pid-" || true); do ip netns del "$ns"; done
  exit 130
}
trap interrupted INT TERM
part() {
  "$@" &
  part_pid=$!
  wait "$part_pid"
}
bench=(dotnet "$PWD/bench/Sluice.Bench/bin/Release/net10.0/sluice-bench.dll")
part "${bench[@]}" packet-cost --out "$out" "${quick[@]}"
part "${bench[@]}" packet-rate --out "$out" "${quick[@]}"
part "${bench[@]}" control-plane --out "$out" "${quick[@]}"
part "${bench[@]}" maglev --out "$out" "${quick[@]}"
part "${bench[@]}" sweep --out "$out" "${quick[@]}"
part bench/connections.sh "$out" "${quick[@]}"
"${bench[@]}" report --out "$out"
if [ ${#quick[@]} -gt 0 ]; then
  echo "bench: quick run complete (results discarded: $out)"
  grep -c "|" "$scratch/RESULTS.md" >/dev/null
fi
