/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the XDP program and the control plane: every map key and
 * value, the load-time configuration, counter indices and drop reasons.
 *
 * This header is the source of truth. The C# mirrors live in
 * appliance/Sluice.Datapath/Abi/ and a test compiles their offsets and sizes
 * against this file (tests/Sluice.Tests.Unit/Abi). Enums are append-only:
 * a value, once shipped, is never renumbered, because pinned counter maps
 * outlive program upgrades.
 *
 * Byte order: fields typed __be16/__be32 are in network order, everything
 * else is host order.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <linux/types.h>

/* Bumped when a map layout changes; it is part of every pinned map's name. */
#define SLUICE_ABI_VERSION 5

/* Upper bound on SNAT addresses a fullnat service may use (power of two). */
#define SLUICE_MAX_SNAT_ADDRESSES 16

/* Upper bound on ports probed for one new fullnat flow; keeps the verifier
 * and the worst-case new-flow cost bounded. */
#define SLUICE_MAX_SNAT_PROBES 32

/* Probe strides offered to new flows (a power of two); every one is coprime with
 * the SNAT port range, so a flow's probes visit distinct ports. */
#define SLUICE_SNAT_STRIDES 64

/* Size of the per-CPU counter and drop-reason arrays; room to grow without
 * changing the pinned map's size. */
#define SLUICE_COUNTER_SLOTS 32
#define SLUICE_DROP_SLOTS 32

enum sluice_mode {
	SLUICE_MODE_FULLNAT = 0, /* DNAT to the backend, SNAT to an appliance address */
	SLUICE_MODE_DNAT = 1,    /* DNAT only; backends route replies via us */
};

enum sluice_service_flags {
	/* Hash only the client address into the Maglev table (client affinity). */
	SLUICE_SERVICE_F_SOURCE_AFFINITY = 1 << 0,
};

enum sluice_backend_flags {
	/* The slot holds a backend; a cleared slot sends its flows back to Maglev. */
	SLUICE_BACKEND_F_PRESENT = 1 << 0,
};

/* services: {VIP, port, protocol} -> service. */
struct sluice_service_key {
	__be32 vip;
	__be16 port;
	__u8 protocol; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;      /* always zero */
};

struct sluice_service {
	__u32 id;    /* index into maglev, service counters */
	__u8 mode;   /* enum sluice_mode */
	__u8 flags;  /* enum sluice_service_flags */
	__u16 pad;
};

/* A VLAN sub-interface of an attached interface, listed both ways by the control plane:
 * {parent ifindex, VLAN id} -> {sub-interface ifindex, 0} for ingress, and
 * {sub-interface ifindex, 0} -> {parent ifindex, VLAN id} for egress. Real VLAN ids are
 * 1-4094, so the two kinds of key never collide. Key and value alike. */
struct sluice_vlan {
	__u32 ifindex;
	__u16 vlan_id;
	__u16 pad; /* always zero */
};

/* Where bpf_fib_lookup last sent a backend's packets, cached per CPU (no torn reads, no shared
 * cache line) for one input interface — a VLAN sub-interface counts as its own — and reused only
 * for packets no longer than a length the FIB has accepted (its MTU check). ifindex 0: none. */
struct sluice_next_hop {
	__u64 resolved_ns;         /* coarse clock at the FIB lookup */
	struct sluice_vlan egress; /* where XDP sends it: the FIB's egress, or that VLAN's parent and tag (0: untagged) */
	__u32 input_ifindex;       /* the FIB's input: the ingress interface or its VLAN sub-interface */
	__u8 dmac[6];
	__u8 smac[6];
	__u16 max_len;             /* largest IPv4 total length the FIB accepted */
	__u16 pad;
	__u32 pad2;
};

/* How long a next hop is reused before the FIB is asked again: the bound on how late a route,
 * MTU or neighbour change takes effect. The FIB costs about as much as the rest of the
 * established path together. */
#define SLUICE_NEXT_HOP_TTL_NS 1000000000ULL

/* backends: backend id -> backend. */
struct sluice_backend {
	__be32 address;
	__be16 port;
	__u8 flags;       /* enum sluice_backend_flags */
	__u8 pad;
	__u32 service_id; /* owner; lets a restarted control plane rebuild its ids */
	__u32 pad2;
	/* Written by the datapath only (the control plane writes zeros): the port the backend's
	 * packets last left by, ((__u64)vlan_id << 32) | ifindex, one word so a reader never sees
	 * half of a change; replies are accepted only from there. 0: not known yet. */
	__u64 egress;
};


/* A packet's 5-tuple as seen on the wire; key of flows and nat. */
struct sluice_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad[3]; /* always zero */
};

/*
 * Connection state (docs/connection-state.md). A fullnat connection is two entries created
 * together: the forward entry (flows, keyed by the client's tuple) and the reverse entry
 * (a slot of snat, named by the reply tuple: the SNAT port claim). A dnat connection is its
 * forward entry alone. Nothing evicts: only the control plane's sweeper deletes expired
 * connections, forward entry first, so a port is never free while either direction is.
 * A forward entry is never freed under a CPU that may still hold it (a preallocated hash
 * reuses a freed element at once): the datapath replaces a connection in place, and the
 * sweeper first marks one DEAD (the reaper program), then deletes it after an RCU grace period.
 */
enum sluice_conn_flags {
	SLUICE_CONN_F_ESTABLISHED = 1 << 0, /* TCP: handshake proven */
	SLUICE_CONN_F_CLIENT_FIN = 1 << 1,
	SLUICE_CONN_F_BACKEND_FIN = 1 << 2,
	SLUICE_CONN_F_RESET = 1 << 3,
	SLUICE_CONN_F_REPLIED = 1 << 4,     /* the backend has answered (TCP: its SYN-ACK) */
	SLUICE_CONN_F_REPLACED = 1 << 5,    /* flows: a CPU is putting a newer connection in its place */
	SLUICE_CONN_F_DEAD = 1 << 6,        /* flows: expired by the sweeper; inert until deleted */
};

/* A forward half's flags (low half) and generation (high half) as one 32-bit word, changed
 * only by compare-and-swap or by the one CPU holding REPLACED. A write conditioned on the
 * word a CPU read never lands in a newer connection put in the same element since. */
#define SLUICE_FLOW_FLAGS_MASK 0xffffU
#define SLUICE_FLOW_GENERATION_SHIFT 16

/* ICMP the datapath sends itself (echo replies): at most this many a second per CPU, in bursts of
 * up to SLUICE_ICMP_BURST (RFC 1812 4.3.2.8). */
#define SLUICE_ICMP_PER_SECOND 1000
#define SLUICE_ICMP_BURST 50

/* How often a packet refreshes its entry's last_seen_ns: at most one store per
 * entry per interval, so liveness costs no write on most packets. */
#define SLUICE_FLOW_TOUCH_NS 1000000000ULL

/* flows: client -> VIP tuple -> the connection, as the forward path needs it. The fields
 * before flags are its binding, written once at creation; the forward path copies them as
 * one block (balancer.h), so keep them first. A dnat connection is this entry alone (its
 * replies find it through reply_vips); a fullnat one also has a reverse half in snat. */
struct sluice_flow {
	__be32 backend_address; /* the backend chosen, as it was: its id may be reused */
	__be16 backend_port;
	__u8 mode;              /* enum sluice_mode when the connection was opened */
	__u8 pad;
	__u32 backend_id;
	__u32 service_id;
	__be32 snat_address;    /* fullnat only, else zero */
	__be16 snat_port;       /* fullnat only, else zero */
	__u16 pad2;
	__u16 flags;            /* enum sluice_conn_flags; with generation, one word (SLUICE_FLOW_FLAGS_MASK) */
	__u16 generation;       /* + 1 each time a connection is put in this element's place */
	__be32 backend_isn;     /* dnat, TCP: the backend's SYN-ACK sequence (fullnat: in its slot);
				 * set with REPLIED in one 64-bit compare-and-swap of word and ISN */
	__u64 created_ns;       /* bpf_ktime_get_coarse_ns(); the connection's identity */
	__u64 last_seen_ns;     /* a client packet, within SLUICE_FLOW_TOUCH_NS */
	__u64 closed_ns;        /* when both FINs or a RST were first seen here, else 0 */
	__u64 reply_seen_ns;    /* dnat: a backend packet, within SLUICE_FLOW_TOUCH_NS (fullnat: in its slot) */
};

/*
 * snat: reverse halves in an array of slots, one cache line each: every fullnat connection's
 * (its key is the SNAT port claim), and a dnat connection's when its backend serves several
 * dnat services (its key, backend -> client, then tells the VIP). A reply tuple lives in one
 * of the two slots of the pair its hash names (snat_pair_index). Claiming: compare-and-swap of
 * owner from 0 to WRITING, no claim of the same tuple in the other slot, fields, then owner =
 * the connection's created_ns (published last). Freeing by the control plane is two-phase, so a
 * CPU still holding the slot never writes into a newer connection's: owner created_ns ->
 * RETIRED (dead to readers, its tuple still taken in both slots of the pair), then RETIRED -> 0 a
 * sweep later (after the round trip of a packet forwarded just before). The map is
 * mmapable for that. Sized at least twice the connections it holds, so a claim seldom finds
 * its pair taken by other tuples. The ordering relies on x86-64 (loads kept in order; locked
 * instructions are full barriers): the loader refuses other architectures.
 */
#define SLUICE_SLOT_WRITING 0xffffffffffffffffULL /* owner while a claimant fills the slot */
#define SLUICE_SLOT_RETIRED 0xfffffffffffffffeULL /* owner between the two phases of a free */
#define SLUICE_SNAT_SLOT_SEED 0x5a175107U        /* the jhash seed of slot indices */

struct sluice_snat_slot {
	__u64 owner;            /* 0: free; SLUICE_SLOT_WRITING or _RETIRED; else the connection's created_ns */
	struct sluice_tuple key; /* the reply tuple: backend -> SNAT address:port (dnat: -> client) */
	__be32 saddr;           /* the VIP */
	__be32 daddr;           /* the client */
	__be16 sport;           /* the VIP's port */
	__be16 dport;           /* the client's port */
	__u32 flags;            /* enum sluice_conn_flags; updated atomically */
	__u32 service_id;
	__u32 backend_id;
	__be32 backend_isn;     /* TCP: the sequence number of the backend's SYN-ACK */
	__u32 pad;
	__u64 last_seen_ns;     /* a backend packet, within SLUICE_FLOW_TOUCH_NS; or when it closed */
};

/*
 * The reaper (SEC("syscall") sluice_reap, run by the sweeper with BPF_PROG_TEST_RUN): marks
 * one forward half DEAD if it is still exactly as the sweeper saw it, atomically against the
 * datapath. Its return value is an enum sluice_reap_result.
 */
struct sluice_reap_request {
	struct sluice_tuple key; /* the client's tuple */
	__u64 created_ns;        /* the forward half as the sweeper saw it ... */
	__u64 last_seen_ns;
	__u64 reply_seen_ns;
	__u32 word;              /* ... flags and generation (SLUICE_FLOW_FLAGS_MASK) */
	__u32 pad;
};

enum sluice_reap_result {
	SLUICE_REAP_MARKED = 0,  /* now DEAD: the connection is gone for the datapath */
	SLUICE_REAP_GONE = 1,    /* no such entry, or already DEAD */
	SLUICE_REAP_CHANGED = 2, /* a packet came, or another connection took the element */
	SLUICE_REAP_BUSY = 3,    /* a CPU is replacing it right now */
};

/* dnat VIPs listed per backend in reply_vips (a backend may serve more: see there). */
#define SLUICE_MAX_REPLY_VIPS 8

/* reply_vips key: a backend as its replies show it. */
struct sluice_endpoint {
	__be32 address;
	__be16 port;
	__u8 protocol;
	__u8 pad; /* always zero */
};

/* reply_vips value: how many dnat services the backend serves, and the VIP:ports of the first
 * SLUICE_MAX_REPLY_VIPS. A dnat reply (backend -> client) names no VIP: with one service it is
 * the connection client -> that VIP; with several, each connection holds a slot in snat under
 * its reply tuple that names its VIP (the list only finds connections opened while the backend
 * served one). Written by the control plane only. */
struct sluice_reply_vips {
	__u32 count;  /* dnat services served; vips[] lists the first SLUICE_MAX_REPLY_VIPS */
	__u32 pad;
	struct {
		__be32 vip;
		__be16 port;
		__u16 pad;
	} vips[SLUICE_MAX_REPLY_VIPS];
};

/* handshakes: two counters whose difference is the number of TCP connections still
 * in their handshake (SYN seen, not yet proven). The datapath adds and subtracts
 * atomically in one; the control plane's sweeper only ever raises the other (its
 * deletions), so neither writer can lose the other's updates. */
enum sluice_handshake_counter {
	SLUICE_HANDSHAKES_DATAPATH = 0,   /* opened minus proven minus deleted by the datapath */
	SLUICE_HANDSHAKES_SWEPT = 1,      /* deleted unproven by the control plane */
	SLUICE_HANDSHAKES_MAX,
};

/* config (one entry): runtime settings the control plane may change. */
struct sluice_config {
	__u32 snat_address_count;
	__be32 snat_addresses[SLUICE_MAX_SNAT_ADDRESSES];
};

/* Load-time knobs, written into .rodata before the program is loaded. */
struct sluice_load_config {
	__u32 flow_hash_seed; /* same seed on every appliance sharing a VIP */
	__u16 snat_port_min;  /* inclusive range of SNAT source ports */
	__u16 snat_port_max;
	__u32 snat_probes;    /* 1..SLUICE_MAX_SNAT_PROBES */
	__u32 handshake_limit; /* TCP connections in their handshake at once (flood budget) */
	__u32 snat_slot_mask;  /* slots in snat - 1 (a power of two) */
	__u32 pad;
	__u16 snat_strides[SLUICE_SNAT_STRIDES]; /* each coprime with the port range */
};

/* Per service and per backend, summed over CPUs by the control plane. */
struct sluice_traffic_counters {
	__u64 packets;       /* client -> backend */
	__u64 bytes;         /* frame bytes, client -> backend */
	__u64 new_flows;
	__u64 reply_packets; /* backend -> client (reverse NAT) */
	__u64 reply_bytes;
};

/* Global counters: index into the per-CPU counters array. Append only. */
enum sluice_counter {
	SLUICE_CTR_RECEIVED = 0,                     /* every frame seen */
	SLUICE_CTR_PASS_NOT_IPV4 = 1,          /* ARP, IPv6, QinQ, runt frames */
	SLUICE_CTR_PASS_UNPARSED_IPV4 = 2,     /* shorter than an IPv4 header */
	SLUICE_CTR_PASS_NOT_SERVICE = 3,       /* IPv4, not ours: untouched */
	SLUICE_CTR_PASS_NO_NEIGHBOUR = 4,      /* rewritten, kernel resolves next hop */
	SLUICE_CTR_PASS_FIB_LOCAL = 5,         /* rewritten, kernel delivers (local/LWT) */
	SLUICE_CTR_PASS_EGRESS_NOT_ATTACHED = 6, /* rewritten, egress not in tx_ports */
	SLUICE_CTR_TRANSMITTED = 7,
	SLUICE_CTR_REDIRECTED = 8,
	SLUICE_CTR_DROPPED = 9,
	SLUICE_CTR_FLOW_HIT = 10,
	SLUICE_CTR_FLOW_NEW = 11,
	SLUICE_CTR_FLOW_REHASHED = 12,         /* flow's backend was removed */
	SLUICE_CTR_REPLY_NAT = 13,             /* reply rewritten back to VIP */
	SLUICE_CTR_SNAT_PROBE_COLLISION = 14,  /* a probed SNAT port was taken */
	SLUICE_CTR_FLOW_REOPENED = 15,         /* bare SYN on a closing flow: balanced anew */
	SLUICE_CTR_SNAT_PORT_REUSED = 16,      /* retired (ABI v2: hold-based port reuse) */
	SLUICE_CTR_HANDSHAKE_PROVEN = 17,      /* a TCP connection's handshake completed */
	SLUICE_CTR_FLOW_REPLACED = 18,         /* a SYN (or UDP) on a closed or stale connection opened a new one */
	SLUICE_CTR_FLOW_RACE_ADOPTED = 19,     /* two CPUs opened one flow: the loser took the winner's */
	SLUICE_CTR_PARTIAL_CHECKSUM_FINISHED = 20, /* a partial (tx-offload) TCP/UDP checksum completed before a rewrite */
	SLUICE_CTR_PASS_TTL_EXCEEDED = 21,     /* to a VIP with TTL <= 1: the kernel answers Time Exceeded */
	SLUICE_CTR_ECHO_REPLIED = 22,          /* an ICMP echo request to a VIP answered */
	SLUICE_CTR_ICMP_TO_BACKEND = 23,       /* an ICMP error about a connection's reply, translated to its backend */
	SLUICE_CTR_ICMP_TO_CLIENT = 24,        /* an ICMP error about a connection's forwarded packet, translated to its client */
	SLUICE_CTR_FRAG_NEEDED_SENT = 25,      /* too big for the egress, DF set: "fragmentation needed" sent to the sender */
	SLUICE_CTR_PASS_TO_FRAGMENT = 26,      /* too big for the egress, DF clear: rewritten, handed to the kernel to fragment */
	SLUICE_CTR_FRAGMENT_FOLLOWED = 27,     /* a following fragment translated like its datagram's first */
	SLUICE_CTR_PASS_UNKNOWN_VLAN = 28,     /* tagged with a VLAN no sub-interface of ours has: untouched */
	SLUICE_CTR_MAX,
};

/* Drop reasons: index into the per-CPU drops array. Append only. */
enum sluice_drop_reason {
	SLUICE_DROP_NONE = 0,
	SLUICE_DROP_NO_SERVICE = 1,          /* VIP, but no service on port/protocol */
	SLUICE_DROP_UNSUPPORTED_PROTOCOL = 2, /* VIP, neither TCP nor UDP */
	SLUICE_DROP_IP_HEADER_INVALID = 3,   /* version != 4 or IHL < 5 */
	SLUICE_DROP_IP_LENGTH_INVALID = 4,   /* total length beyond frame or below header */
	SLUICE_DROP_L4_TRUNCATED = 5,        /* TCP/UDP header cut short */
	SLUICE_DROP_FRAGMENT = 6,            /* a following fragment whose first was not seen (or an ICMP fragment) */
	SLUICE_DROP_TTL_EXCEEDED = 7,
	SLUICE_DROP_NO_BACKEND = 8,          /* empty Maglev table */
	SLUICE_DROP_NO_SNAT_ADDRESS = 9,     /* fullnat with no SNAT address configured */
	SLUICE_DROP_SNAT_EXHAUSTED = 10,     /* every probed SNAT port taken */
	SLUICE_DROP_FLOW_INSERT_FAILED = 11, /* a map update failed otherwise */
	SLUICE_DROP_NO_ROUTE = 12,           /* FIB: blackhole, unreachable, prohibit */
	SLUICE_DROP_FORWARDING_DISABLED = 13,
	SLUICE_DROP_FRAGMENTATION_NEEDED = 14,        /* rewritten packet exceeds egress MTU */
	SLUICE_DROP_NO_CONNECTION = 15,      /* TCP, not a SYN, and no connection: never opens one */
	SLUICE_DROP_HANDSHAKE_LIMIT = 16,    /* too many connections in their handshake (SYN flood) */
	SLUICE_DROP_CONNECTION_TABLE_FULL = 17, /* flows or nat full: refused, nothing evicted */
	SLUICE_DROP_STALE_CONNECTION = 18,   /* TCP, not a SYN, on a connection whose backend or service changed */
	SLUICE_DROP_CONNECTION_EXPIRING = 19, /* its key is an expired connection's, not yet deleted (a grace period) */
	SLUICE_DROP_PARTIAL_CHECKSUM = 20,   /* a partial checksum on a segment too long to finish (> 9216 bytes) */
	SLUICE_DROP_IP_CHECKSUM = 21,        /* IPv4 header checksum wrong (RFC 1812 5.2.2) */
	SLUICE_DROP_ICMP_RATE_LIMITED = 22,  /* an ICMP answer beyond SLUICE_ICMP_PER_SECOND on this CPU */
	SLUICE_DROP_REPLY_INGRESS = 23,      /* a reply from an interface its backend is not behind (spoofed) */
	SLUICE_DROP_VLAN_TAG = 24,           /* the egress 802.1Q tag could not be pushed or popped (no headroom) */
	SLUICE_DROP_MAX,
};

#endif /* SLUICE_ABI_H */
