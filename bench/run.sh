#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmark suite, as root: per-packet cost, control plane, Maglev build (and the parts
# listed in bench/README.md), then bench/RESULTS.md, bench/results/*.json and bench/results.svg.
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

scripts/bootstrap.sh
tools=(iptables nftables)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
dotnet build Appliance.sln -c Release -nologo -v quiet

bench=(dotnet "$PWD/bench/Sluice.Bench/bin/Release/net10.0/sluice-bench.dll")
"${bench[@]}" packet-cost --out "$out" "${quick[@]}"
"${bench[@]}" control-plane --out "$out" "${quick[@]}"
"${bench[@]}" maglev --out "$out" "${quick[@]}"
"${bench[@]}" report --out "$out"
if [ ${#quick[@]} -gt 0 ]; then
  echo "bench: quick run complete (results discarded: $out)"
  grep -c "|" "$scratch/RESULTS.md" >/dev/null
fi
