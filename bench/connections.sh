#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Part 3: TCP connections per second and request latency with ab (HTTP/1.0: one connection
# per request) from a client namespace, through an LB namespace, to an HAProxy answering
# HTTP in a backend namespace: direct (kernel forwarding, no balancer), Sluice (XDP, both
# modes), iptables DNAT, nftables DNAT, HAProxy in TCP mode. Writes OUT/connections.json.
#   bench/connections.sh OUT [--quick]      (as root; called by bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
requests=20000
rounds=3
[ "${2:-}" = "--quick" ] && { requests=300; rounds=1; }

id=$$
client=sl-cb-$id-client
lb=sl-cb-$id-lb
backend=sl-cb-$id-be
pin=/sys/fs/bpf/sluice-cb-$id
work=$(mktemp -d)
pids=()
vip=198.18.100.10
be=198.18.11.2
dp=(dotnet "$PWD/appliance/Sluice.Datapath.Tool/bin/Release/net10.0/sluice-dp.dll")

cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  [ -d "$pin" ] && nsenter --net=/run/netns/$lb "${dp[@]}" remove --pin "$pin" --interfaces lbc,lbb >/dev/null 2>&1
  for ns in "$client" "$lb" "$backend"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$client"; ip netns add "$lb"; ip netns add "$backend"
ip -n "$lb" link add lbc type veth peer name c0 netns "$client"
ip -n "$lb" link add lbb type veth peer name b0 netns "$backend"
ip -n "$lb" addr add 198.19.10.1/24 dev lbc
ip -n "$lb" addr add 198.18.11.1/24 dev lbb
ip -n "$client" addr add 198.19.10.2/24 dev c0
ip -n "$backend" addr add $be/24 dev b0
for ns in "$client" "$lb" "$backend"; do ip -n "$ns" link set lo up; done
ip -n "$lb" link set lbc up; ip -n "$lb" link set lbb up
ip -n "$client" link set c0 up; ip -n "$backend" link set b0 up
ip -n "$client" route add 198.18.0.0/15 via 198.19.10.1
ip -n "$backend" route add 198.19.10.0/24 via 198.18.11.1
ip -n "$backend" route add 198.18.200.0/24 via 198.18.11.1
ip netns exec "$lb" sysctl -qw net.ipv4.ip_forward=1
# Endpoints send complete checksums (tx offload off), so every contender does the same work
# (with it on, Sluice finishes the partial checksums it sees and the kernel paths skip them);
# GRO gives the receiving veths the NAPI that XDP redirects need.
ip netns exec "$client" ethtool -K c0 tx off gro on >/dev/null
ip netns exec "$backend" ethtool -K b0 tx off gro on >/dev/null

cat >"$work/backend.cfg" <<CFG
global
  maxconn 16384
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend web
  bind $be:8080
  http-request return status 200 content-type text/plain string "ok"
CFG
ip netns exec "$backend" haproxy -f "$work/backend.cfg" -db >"$work/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$client" bash -c "exec 3<>/dev/tcp/$be/8080" 2>/dev/null && break; sleep 0.1; done

results=$work/results.txt
: >"$results"
measure() { # name url: ab rounds, the median round's figures
  local name=$1 url=$2
  for r in $(seq $rounds); do
    ip netns exec "$client" ab -q -n $requests -c 32 -s 5 -r -e "$work/pct.csv" "$url" >"$work/ab.txt" 2>&1 || { cat "$work/ab.txt"; return 1; }
    local rps p50 p99 failed
    rps=$(awk '/Requests per second/ {print $4}' "$work/ab.txt")
    p50=$(awk -F, '$1 == "50" {print $2}' "$work/pct.csv")   # -e: percentiles in fractional ms
    p99=$(awk -F, '$1 == "99" {print $2}' "$work/pct.csv")
    failed=$(awk '/Failed requests/ {print $3}' "$work/ab.txt")
    echo "$name|$rps|$p50|$p99|$failed" >>"$results"
  done
  echo "connections: $name: $(grep "^$name|" "$results" | tail -1 | cut -d'|' -f2) req/s"
}

measure "direct (kernel forwarding, no balancer)" "http://$be:8080/"

cat >"$work/services.json" <<JSON
{ "snatAddresses": ["198.18.200.1"], "services": {
  "full": { "vip": "$vip", "port": 80, "protocol": "tcp", "mode": "fullnat", "backends": [ { "address": "$be", "port": 8080 } ] },
  "dn":   { "vip": "$vip", "port": 81, "protocol": "tcp", "mode": "dnat",    "backends": [ { "address": "$be", "port": 8080 } ] } } }
JSON
nsenter --net=/run/netns/$lb "${dp[@]}" load --pin "$pin" --interfaces lbc,lbb --services "$work/services.json" >/dev/null
# The sweeper frees closed connections' SNAT ports, as sluiced would (default timeouts).
"${dp[@]}" sweep --pin "$pin" >"$work/sweep.log" 2>&1 &
sweeper=$!
pids+=($sweeper)
measure "Sluice fullnat (XDP)" "http://$vip:80/"
measure "Sluice dnat (XDP)" "http://$vip:81/"
kill "$sweeper"; wait "$sweeper" 2>/dev/null || true
nsenter --net=/run/netns/$lb "${dp[@]}" remove --pin "$pin" --interfaces lbc,lbb >/dev/null

ip netns exec "$lb" iptables -t nat -A PREROUTING -d $vip -p tcp --dport 80 -j DNAT --to-destination $be:8080
measure "iptables DNAT" "http://$vip:80/"
ip netns exec "$lb" iptables -t nat -F PREROUTING

ip netns exec "$lb" nft -f - <<NFT
table ip bench { chain prerouting { type nat hook prerouting priority dstnat; policy accept; ip daddr $vip tcp dport 80 dnat to $be:8080; }; }
NFT
measure "nftables DNAT" "http://$vip:80/"
ip netns exec "$lb" nft delete table ip bench

ip -n "$lb" addr add $vip/32 dev lo
cat >"$work/lb.cfg" <<CFG
global
  maxconn 16384
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend vip
  bind $vip:80
  default_backend backends
backend backends
  server b1 $be:8080
CFG
ip netns exec "$lb" haproxy -f "$work/lb.cfg" -db >"$work/lb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$client" bash -c "exec 3<>/dev/tcp/$vip/80" 2>/dev/null && break; sleep 0.1; done
measure "HAProxy TCP mode" "http://$vip:80/"

python3 - "$results" "$out" "$requests" "$rounds" "${2:-}" <<'PY'
import json, sys, statistics, datetime, os
path, out, requests, rounds, quick = sys.argv[1:]
rows = {}
for line in open(path):
    name, rps, p50, p99, failed = line.strip().split("|")
    rows.setdefault(name, []).append((float(rps), float(p50), float(p99), int(failed)))
measurements = []
for name, runs in rows.items():
    runs.sort()
    rps, p50, p99, failed = runs[len(runs) // 2]
    note = f"{sum(r[3] for r in runs)} failed requests" if any(r[3] for r in runs) else None
    measurements.append({"part": "connections", "case": name, "variant": "connections/s", "value": rps, "unit": "/s", "note": note})
    measurements.append({"part": "connections", "case": name, "variant": "latency p50", "value": p50 * 1000, "unit": "µs"})
    measurements.append({"part": "connections", "case": name, "variant": "latency p99", "value": p99 * 1000, "unit": "µs"})
os.makedirs(out, exist_ok=True)
json.dump({"part": "connections", "started": datetime.datetime.now(datetime.timezone.utc).isoformat(), "quick": quick == "--quick",
           "measurements": measurements,
           "notes": [f"ab -n {requests} -c 32, HTTP/1.0 (a new TCP connection per request), median of {rounds} round(s); "
                     "backend: HAProxy answering HTTP; client, LB and backend share the machine's 2 cores"]},
          open(os.path.join(out, "connections.json"), "w"), indent=2)
PY
