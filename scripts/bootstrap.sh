#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything Sluice needs to build, run its demo and run its tests on a
# fresh Debian 12 machine that has only the .NET SDK. Idempotent; needs root.
#   scripts/bootstrap.sh [EXTRA-PACKAGE...]   (bench/run.sh adds the tools it compares with)
set -euo pipefail

packages=(
  clang llvm libbpf-dev libbpf1 bpftool linux-libc-dev   # building and inspecting the XDP program
  iproute2 ethtool procps util-linux                      # namespaces, veths, sysctl, nsenter
  python3 curl                                            # the demo's servers and client
  systemd                                                 # systemd-analyze verifies the unit
  "$@"
)

if [ "$(id -u)" != 0 ]; then
  echo "bootstrap: run as root (it installs packages and mounts bpffs)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool checks the metrics exposition. Debian ships it only inside the prometheus
# server package, whose install would start a server: take the binary alone.
if ! command -v promtool >/dev/null; then
  echo "bootstrap: installing promtool (from Debian's prometheus package, server not installed)"
  work=$(mktemp -d)
  chown _apt "$work" 2>/dev/null || true   # apt downloads as _apt
  (cd "$work" && { apt-get download -qq prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq prometheus >/dev/null; }; } \
    && dpkg-deb -x prometheus_*.deb root)
  install -m 0755 "$work/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$work"
fi

# The datapath pins its maps on bpffs.
if ! mount | grep -q "on /sys/fs/bpf type bpf"; then
  mount -t bpf bpf /sys/fs/bpf
fi

command -v dotnet >/dev/null || { echo "bootstrap: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
echo "bootstrap: ready (clang $(clang -dumpversion), libbpf $(dpkg-query -W -f='${Version}' libbpf1), dotnet $(dotnet --version))"
