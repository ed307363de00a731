#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test: unit, datapath (BPF_PROG_TEST_RUN), API and end-to-end (network
# namespaces), then the benchmark suite's quick mode. As root; under CI=true a missing
# privilege fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
dotnet build Appliance.sln -c Release -nologo -v quiet

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test Appliance.sln -c Release --no-build -nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The benchmark suite in its quick mode: proves every part still runs; asserts nothing
# about speed, and its figures are discarded.
if [ "$status" = 0 ]; then
  set +e
  bench/run.sh --quick >"$log.bench" 2>&1
  bench_status=$?
  set -e
  tail -n 3 "$log.bench"
  if [ "$bench_status" != 0 ]; then
    cat "$log.bench"
    echo "bench: quick run FAILED"
    status=$bench_status
  fi
  rm -f "$log.bench"
fi

# One closing line over every test assembly.
awk '/(Passed|Failed)! +- +Failed:/ {
       gsub(",", ""); for (i = 1; i <= NF; i++) {
         if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
