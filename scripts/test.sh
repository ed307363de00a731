#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test: unit, datapath (BPF_PROG_TEST_RUN) and end-to-end (network
# namespaces). As root; under CI=true a missing privilege fails instead of skipping.
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

# One closing line over every test assembly.
awk '/(Passed|Failed)! +- +Failed:/ {
       gsub(",", ""); for (i = 1; i <= NF; i++) {
         if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
