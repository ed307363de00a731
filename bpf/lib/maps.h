/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the datapath. Sizes here are defaults: the control plane
 * resizes them before load (bpf_map__set_max_entries) from its options.
 * The control plane pins each map under its pin directory by its name, so
 * a restarted daemon adopts them; the _v5 suffix is SLUICE_ABI_VERSION.
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sluice_abi.h"

/* {VIP, port, protocol} -> service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sluice_service_key);
	__type(value, struct sluice_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_services_v5 SEC(".maps");

/* VIP -> number of services on it; tells "VIP, wrong port" from "not ours". */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_vips_v5 SEC(".maps");

/* Template of a service's Maglev table: slot 0 holds the table size M,
 * slots 1..M backend ids. BPF_F_INNER_MAP lets every service have its own M,
 * so memory follows the service's backend count. */
struct sluice_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_INNER_MAP);
};

/* service id -> that service's Maglev table (swapped whole on change). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__array(values, struct sluice_maglev_table);
} sluice_maglev_v5 SEC(".maps");

/* backend id -> backend. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct sluice_backend);
} sluice_backends_v5 SEC(".maps");

/* backend id -> where its packets last left, per CPU (struct sluice_next_hop). Not pinned: a
 * new program asks the FIB afresh. Sized like backends by the control plane. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct sluice_next_hop);
} sluice_next_hops_v5 SEC(".maps");

/* A next hop for one packet, per CPU: for paths with no per-backend cache (replies, ICMP),
 * off the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_next_hop);
} sluice_scratch_hop_v5 SEC(".maps");

/* client->VIP tuple -> the connection's forward half (backend, SNAT binding, state).
 * A plain hash, not an LRU: a full table refuses new connections instead of
 * silently evicting a live one; the control plane's sweeper deletes expired ones. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__type(key, struct sluice_tuple);
	__type(value, struct sluice_flow);
} sluice_flows_v5 SEC(".maps");

/* Slots of reverse halves (struct sluice_snat_slot): fullnat connections', and dnat ones' whose
 * backend serves several dnat services. Mmapable: the control plane reads and frees them in place. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2097152);
	__type(key, __u32);
	__type(value, struct sluice_snat_slot);
	__uint(map_flags, BPF_F_MMAPABLE);
} sluice_snat_v5 SEC(".maps");

/* backend endpoint -> the VIPs of the dnat services it serves: how a dnat reply finds
 * its connection's one entry in flows (client -> VIP) without a reverse entry of its own. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct sluice_endpoint);
	__type(value, struct sluice_reply_vips);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_reply_vips_v5 SEC(".maps");

/* Connections in their TCP handshake, as two counters (enum sluice_handshake_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_HANDSHAKES_MAX);
	__type(key, __u32);
	__type(value, __s64);
} sluice_handshakes_v5 SEC(".maps");

/* Per CPU: when a connection table last refused this CPU an insert (coarse ns). Not
 * pinned: a hint that may start afresh with every load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sluice_table_full_v5 SEC(".maps");

/* A fragmented datagram (sender, receiver, IP id, protocol, as it arrived) -> the addresses its
 * first fragment was rewritten to: the following fragments, which carry no ports, follow it.
 * An LRU: an entry lives a few seconds at most (SLUICE_FRAGMENT_TIMEOUT_NS). Not pinned. */
struct sluice_fragment_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 protocol;
	__u8 pad;
};

struct sluice_fragment_value {
	__be32 saddr;
	__be32 daddr;
	__be16 id;       /* the datagram's new IP id: ids of many clients meet at one SNAT address */
	__u8 ambiguous;  /* two datagrams arrived under this key at once: their fragments are dropped */
	__u8 pad;
	__u32 pad2;
	__u64 seen_ns;
};

/* The next IP id for a datagram the datapath rewrites fragment by fragment. Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sluice_fragment_ids_v5 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sluice_fragment_key);
	__type(value, struct sluice_fragment_value);
} sluice_fragments_v5 SEC(".maps");

/* Per CPU: the token bucket of the ICMP the datapath answers itself. Not pinned. */
struct sluice_icmp_bucket {
	__u64 refilled_ns;
	__u64 tokens;
};

/* Two buckets per CPU: echo replies (0), and ICMP errors sent or translated (1), so a ping flood
 * never starves "fragmentation needed". */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sluice_icmp_bucket);
} sluice_icmp_bucket_v5 SEC(".maps");

/* Runtime settings (one entry). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_config);
} sluice_config_v5 SEC(".maps");

/* ifindex -> ifindex of every interface we may redirect to. Not pinned: the
 * kernel adds BPF_F_RDONLY_PROG to devmaps, which libbpf 1.1 then takes for an
 * incompatible pin; the loader refills it before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} sluice_tx_ports_v5 SEC(".maps");

/* The VLAN sub-interfaces of attached interfaces, both ways (struct sluice_vlan). Not pinned:
 * the control plane fills it before attaching and keeps it in step with the links. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sluice_vlan);
	__type(value, struct sluice_vlan);
} sluice_vlans_v5 SEC(".maps");

/* Global counters, indexed by enum sluice_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} sluice_counters_v5 SEC(".maps");

/* Drops, indexed by enum sluice_drop_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DROP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} sluice_drops_v5 SEC(".maps");

/* Traffic per service id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct sluice_traffic_counters);
} sluice_service_stats_v5 SEC(".maps");

/* Traffic per backend id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct sluice_traffic_counters);
} sluice_backend_stats_v5 SEC(".maps");

#endif /* SLUICE_MAPS_H */
