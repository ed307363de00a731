#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo appliance: a client, the Sluice load balancer and three backends, each in
# a network namespace of its own (198.18.0.0/15 only). sluiced runs in the LB namespace
# with a demo config; sluicectl adds a service through the REST API, shows status, drains
# a backend; real HTTP and UDP flow through a VIP, also while sluiced is stopped.
# Removes everything it made, even on failure.
#
#   client 198.19.10.2 --- 198.19.10.1 [ LB: XDP ] 198.18.1N.1 --- 198.18.1N.2 backend N
#   VIP 198.18.100.10: tcp/80 fullnat (SNAT 198.18.200.1), udp/5353 dnat
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
echo "== building"
dotnet build Appliance.sln -c Release -nologo -v quiet
daemon=(dotnet "$PWD/appliance/Sluice.Daemon/bin/Release/net10.0/sluiced.dll")
ctl=(dotnet "$PWD/appliance/Sluice.Cli/bin/Release/net10.0/sluicectl.dll")

id=$$
client=sl-demo-client-$id
lb=sl-demo-lb-$id
pin=/sys/fs/bpf/sluice-demo-$id
backends=()
server_pids=()
logdir=$(mktemp -d)
config=$logdir/sluice.yaml
sluiced_pid=

cleanup() {
  set +e
  echo "== cleaning up"
  [ -n "$sluiced_pid" ] && { kill -TERM "$sluiced_pid"; wait "$sluiced_pid"; }
  [ -d "$pin" ] && sluicectl datapath remove >/dev/null
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for ns in "$client" "$lb" "${backends[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$logdir"
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# sluiced and sluicectl run in the LB namespace (nsenter keeps bpffs visible).
sluiced() { "${daemon[@]}" "$@"; }
sluicectl() { nsenter --net=/run/netns/$lb "${ctl[@]}" --config "$config" "$@"; }

echo "== namespaces"
ip netns add "$client"
ip netns add "$lb"
in_ns "$lb" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip -n "$lb" link add lbc type veth peer name c0 netns "$client"
ip -n "$lb" addr add 198.19.10.1/24 dev lbc
ip -n "$lb" link set lbc up
ip -n "$lb" link set lo up
ip -n "$client" addr add 198.19.10.2/24 dev c0
ip -n "$client" link set c0 up
ip -n "$client" link set lo up
ip -n "$client" route add 198.18.100.0/24 via 198.19.10.1
# Tx checksum offload stays at the veth default (on): the datapath finishes the partial
# checksums it sees. GRO gives the receiving veth the NAPI that XDP redirects need.
in_ns "$client" ethtool -K c0 gro on >/dev/null

for n in 1 2 3; do
  ns=sl-demo-be$n-$id
  backends+=("$ns")
  ip netns add "$ns"
  ip -n "$lb" link add lbb$n type veth peer name b0 netns "$ns"
  ip -n "$lb" addr add 198.18.1$n.1/24 dev lbb$n
  ip -n "$lb" link set lbb$n up
  ip -n "$ns" addr add 198.18.1$n.2/24 dev b0
  ip -n "$ns" link set b0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add 198.18.200.0/24 via 198.18.1$n.1   # fullnat replies to the SNAT address
  ip -n "$ns" route add 198.19.10.0/24 via 198.18.1$n.1    # dnat replies straight to the client
  in_ns "$ns" ethtool -K b0 gro on >/dev/null
  # `ip netns exec` execs python3, so $! is the server itself (a function would be a subshell).
  ip netns exec "$ns" python3 scripts/demo/backend.py "backend-$n" 198.18.1$n.2 >"$logdir/backend-$n.log" 2>&1 &
  server_pids+=($!)
done

for n in 1 2 3; do  # bounded readiness poll, no blind sleep
  for _ in $(seq 50); do
    in_ns "$client" true && in_ns sl-demo-be$n-$id bash -c "exec 3<>/dev/tcp/198.18.1$n.2/8080" 2>/dev/null && break
    sleep 0.1
  done
done

echo "== starting sluiced in the LB namespace"
sed -e "s#@DIR@#$logdir#g" -e "s#@PIN@#$pin#g" scripts/demo/sluice.yaml.in >"$config"
sluiced --config "$config" --check-config
# nsenter execs sluiced itself, so $! is its PID; `ip netns exec` would hide bpffs.
nsenter --net=/run/netns/$lb "${daemon[@]}" --config "$config" >"$logdir/sluiced.log" 2>&1 &
sluiced_pid=$!
for _ in $(seq 300); do  # bounded: up to 30 s for build-free start, attach and programming
  in_ns "$lb" curl -sf --max-time 1 http://127.0.0.1:9080/readyz >/dev/null && break
  kill -0 "$sluiced_pid" 2>/dev/null || { cat "$logdir/sluiced.log"; exit 1; }
  sleep 0.1
done
in_ns "$lb" curl -sf --max-time 1 http://127.0.0.1:9080/readyz >/dev/null || { echo "sluiced did not become ready"; cat "$logdir/sluiced.log"; exit 1; }

echo "== sluicectl service apply -f scripts/demo/web-service.yaml (through the REST API)"
sluicectl service apply -f scripts/demo/web-service.yaml
sluicectl service list

echo "== 60 HTTP requests to http://198.18.100.10/ (fullnat)"
http_round() {
  for i in $(seq 60); do
    in_ns "$client" curl -s --max-time 2 http://198.18.100.10/ || echo "request $i failed"
  done | sort | uniq -c
}
http_round

echo "== 60 UDP datagrams to 198.18.100.10:5353 (dnat)"
in_ns "$client" python3 scripts/demo/udp-client.py 198.18.100.10 5353 60 | sort | uniq -c

echo "== sluicectl status"
sluicectl status

echo "== metrics (Prometheus, 127.0.0.1:9091 in the LB namespace), a few series"
in_ns "$lb" curl -s --max-time 2 http://127.0.0.1:9091/metrics | grep -E '^sluice_(service_packets_total|backend_up|flow_table_entries|snat_ports_in_use)' | head -12

echo "== a long-lived connection, as sluicectl flows shows it"
in_ns "$client" python3 -c 'import socket,time; s=socket.create_connection(("198.18.100.10",80)); time.sleep(3)' &
hold_pid=$!
for _ in $(seq 30); do sluicectl flows --service web | grep -q " open" && break; sleep 0.1; done
sluicectl flows --service web --limit 5
wait "$hold_pid" || true

echo "== backend-3's web server stops: its health check marks it down, traffic avoids it"
kill "${server_pids[2]}"; wait "${server_pids[2]}" 2>/dev/null || true
for _ in $(seq 50); do sluicectl service get web | grep -q "198.18.13.2:8080.*down" && break; sleep 0.1; done
sluicectl service get web
http_round

echo "== sluicectl backend drain web 198.18.11.2:8080: no new connections; removed once its flows end"
sluicectl backend drain web 198.18.11.2:8080
http_round
sluicectl events --limit 8

echo "== SIGTERM to sluiced: the datapath keeps forwarding while the control plane is down"
kill -TERM "$sluiced_pid"
wait "$sluiced_pid" || true
sluiced_pid=
http_round

echo "== sluicectl datapath remove: detaches and unpins, on purpose"
sluicectl datapath remove

echo "== checksum errors seen by the receivers (must be 0)"
checksum_errors() {  # InCsumErrors of Tcp and Udp in /proc/net/snmp, inside namespace $1
  in_ns "$1" awk '$1 == "Tcp:" || $1 == "Udp:" { if (!(($1) in head)) { for (i = 1; i <= NF; i++) head[$1, i] = $i; head[$1] = 1; next }
    for (i = 1; i <= NF; i++) if (head[$1, i] == "InCsumErrors") printf "%s %s  ", tolower($1), $i }' /proc/net/snmp
}
for ns in "$client" "${backends[@]}"; do
  printf "   %-26s %s\n" "$ns" "$(checksum_errors "$ns")"
done
