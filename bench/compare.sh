#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Side by side with an earlier datapath, in one run on one machine, as root:
#
#   sudo bench/compare.sh REV      e.g. the commit before a datapath change
#   COMPARE_SERVICES="1" ...       service counts of the per-packet cost (default "1 100000";
#                                  a datapath before 46f8c90's bench programs 100,000 one by one:
#                                  an RCU grace period each, minutes on a small VM)
#
# Builds REV's benchmark tool (its own XDP program and library) in a temporary git
# worktree, then runs the per-packet cost (1 and 100,000 services) and the packet rate of
# REV and of this tree alternately, twice each, and writes bench/results/comparison.json;
# `bench/run.sh` (or `sluice-bench report`) puts it in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/compare.sh REV}
label=$(git rev-parse --short "$rev")

scripts/bootstrap.sh iptables nftables apache2-utils haproxy conntrack
dotnet build Appliance.sln -c Release -nologo -v quiet

work=$(mktemp -d)
cleanup() {
  git worktree remove --force "$work/base" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git worktree add --detach "$work/base" "$rev" >/dev/null
dotnet build "$work/base/bench/Sluice.Bench" -c Release -nologo -v quiet

base=(dotnet "$work/base/bench/Sluice.Bench/bin/Release/net10.0/sluice-bench.dll")
current=(dotnet "$PWD/bench/Sluice.Bench/bin/Release/net10.0/sluice-bench.dll")
for round in 1 2; do
  for side in base current; do
    if [ "$side" = base ]; then tool=("${base[@]}"); else tool=("${current[@]}"); fi
    for services in ${COMPARE_SERVICES:-1 100000}; do
      # Both sides with ABI v2's connection tables (262,144 entries): its cold runs open a
      # million connections into full, evicting LRU tables; ours 249,036 (95%), never evicting.
      BENCH_FLOWS=262144 SLUICE_BENCH_COLD_REPEAT=249036 SLUICE_BENCH_SERVICES=$services \
        "${tool[@]}" packet-cost --out "$work/$side-$round-$services"
    done
    "${tool[@]}" packet-rate --out "$work/$side-$round-rate"
  done
done
"${current[@]}" compare --out bench/results "$label" "$work"/base-* -- "$work"/current-*
echo "compare: bench/results/comparison.json (against $label)"
