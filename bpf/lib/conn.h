/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A connection's state (docs/connection-state.md). fullnat: two halves, the forward half
 * in sluice_flows_v4, written by client packets, and the reverse half in a slot of
 * sluice_snat_v4, written by backend packets. Each direction refreshes only its own half on the hot path;
 * the rare transitions (a FIN, a RST, the handshake proven) are written into both,
 * atomically, so either half knows the whole state. The forward half's created_ns is its
 * slot's owner: it tells a connection from a later one on the same key. dnat: one entry in flows, which
 * both directions write (its replies find it through sluice_reply_vips_v4).
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include "counters.h"
#include "maglev.h"
#include "packet.h"
#include "snat.h"

#define SLUICE_CONN_F_BOTH_FINS (SLUICE_CONN_F_CLIENT_FIN | SLUICE_CONN_F_BACKEND_FIN)

/* Closed: both directions finished, or reset, or replaced by a newer connection.
 * Half-closed is still open. */
static __always_inline int conn_is_closed(__u32 flags)
{
	return (flags & (SLUICE_CONN_F_RESET | SLUICE_CONN_F_REPLACED)) ||
	       (flags & SLUICE_CONN_F_BOTH_FINS) == SLUICE_CONN_F_BOTH_FINS;
}

/* The key of a forward half's reverse half. @reply must be zeroed by the caller. */
static __always_inline void reply_key_of(const struct sluice_flow *flow, const struct sluice_tuple *client,
					 struct sluice_tuple *reply)
{
	reply->saddr = flow->backend_address;
	reply->sport = flow->backend_port;
	if (flow->mode == SLUICE_MODE_FULLNAT) {
		reply->daddr = flow->snat_address;
		reply->dport = flow->snat_port;
	} else {
		reply->daddr = client->saddr;
		reply->dport = client->sport;
	}
	reply->protocol = client->protocol;
}

/* The key of a reverse half's forward half. @client must be zeroed by the caller. */
static __always_inline void client_key_of(const struct sluice_snat_slot *nat, __u8 protocol, struct sluice_tuple *client)
{
	client->saddr = nat->daddr;
	client->daddr = nat->saddr;
	client->sport = nat->dport;
	client->dport = nat->sport;
	client->protocol = protocol;
}

/* The other half of the same fullnat connection, or NULL (dnat, deleted, or its key now
 * names a later one). Same connection: the same creation time and the same client tuple. */
static __always_inline struct sluice_snat_slot *reverse_half(const struct sluice_flow *flow, const struct sluice_tuple *client)
{
	struct sluice_tuple reply = {};
	struct sluice_snat_slot *nat;
	__u64 owner;

	if (flow->mode != SLUICE_MODE_FULLNAT)
		return 0;
	reply_key_of(flow, client, &reply);
	nat = snat_reverse_half(&reply, &owner);
	if (!nat || owner != flow->created_ns || nat->daddr != client->saddr || nat->dport != client->sport ||
	    nat->saddr != client->daddr || nat->sport != client->dport)
		return 0;
	return nat;
}

static __always_inline struct sluice_flow *forward_half(const struct sluice_snat_slot *nat, __u64 owner,
							 const struct sluice_tuple *nat_reply)
{
	__u8 protocol = nat_reply->protocol;
	struct sluice_tuple client = {}, named = {};
	struct sluice_flow *flow;

	client_key_of(nat, protocol, &client);
	flow = bpf_map_lookup_elem(&sluice_flows_v4, &client);
	if (!flow || flow->created_ns != owner)
		return 0;
	/* The forward half must name this very reverse half (a newer connection of the same
	 * client, opened in the same coarse tick, has another SNAT port). */
	reply_key_of(flow, &client, &named);
	if (named.saddr != nat_reply->saddr || named.daddr != nat_reply->daddr || named.sport != nat_reply->sport ||
	    named.dport != nat_reply->dport)
		return 0;
	return flow;
}

/* The handshake budget: opened-by-datapath minus swept-by-control-plane. */
static __always_inline __s64 *handshake_counter(__u32 which)
{
	return bpf_map_lookup_elem(&sluice_handshakes_v4, &which);
}

static __always_inline int handshake_budget_left(void)
{
	__s64 *opened = handshake_counter(SLUICE_HANDSHAKES_DATAPATH);
	__s64 *swept = handshake_counter(SLUICE_HANDSHAKES_SWEPT);

	return opened && swept && *opened - *swept < (__s64)load_config.handshake_limit;
}

static __always_inline void handshake_add(__s64 delta)
{
	__s64 *opened = handshake_counter(SLUICE_HANDSHAKES_DATAPATH);

	if (opened)
		__sync_fetch_and_add(opened, delta);
}

/* A full preallocated hash map takes about a microsecond to refuse an insert (it looks
 * for a free element everywhere first). While the tables are full, a CPU refuses new
 * connections before trying, and tries again once per SLUICE_TABLE_FULL_BACKOFF_NS. */
#define SLUICE_TABLE_FULL_BACKOFF_NS 1000000ULL

static __always_inline __u64 *table_full_since(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sluice_table_full_v4, &zero);
}

static __always_inline int tables_recently_full(__u64 now)
{
	__u64 *since = table_full_since();

	return since && *since && now - *since < SLUICE_TABLE_FULL_BACKOFF_NS;
}

static __always_inline void tables_full(__u64 now)
{
	__u64 *since = table_full_since();

	if (since)
		*since = now;
}

/* Sets @bits in a half's flags; returns the flags before (atomically, when it writes). */
static __always_inline __u32 conn_set_flags(__u32 *flags, __u32 bits)
{
	__u32 seen = *flags;

	if ((seen & bits) == bits)
		return seen;
	return __sync_fetch_and_or(flags, bits);
}

/* Records a FIN or RST on one half; stamps closed_ns when it closes that half. */
static __always_inline void conn_mark(__u32 *flags, __u64 *closed_ns, __u32 bits, __u64 now)
{
	__u32 before = conn_set_flags(flags, bits);

	if (!conn_is_closed(before) && conn_is_closed(before | bits))
		*closed_ns = now;
}

/* A packet's FIN and RST as connection flags for the side that sent it. */
static __always_inline __u32 close_bits(const struct packet *pkt, __u32 fin_bit)
{
	__u32 bits = 0;

	if (pkt->tcp_flags & TCP_FLAG_FIN)
		bits |= fin_bit;
	if (pkt->tcp_flags & TCP_FLAG_RST)
		bits |= SLUICE_CONN_F_RESET;
	return bits;
}

/* The TCP handshake is proven: it leaves the handshake budget once, whichever CPU
 * proves it first. @nat: the reverse half, NULL for dnat. */
static __always_inline void conn_establish(struct sluice_flow *flow, struct sluice_snat_slot *nat)
{
	__u32 before = conn_set_flags(&flow->flags, SLUICE_CONN_F_ESTABLISHED);

	/* A replaced connection left the budget when it was replaced. */
	if (!(before & (SLUICE_CONN_F_ESTABLISHED | SLUICE_CONN_F_REPLACED))) {
		handshake_add(-1);
		count(SLUICE_CTR_HANDSHAKE_PROVEN);
	}
	if (nat)
		conn_set_flags(&nat->flags, SLUICE_CONN_F_ESTABLISHED);
}

/* Whether a client's ACK proves the handshake: it acknowledges exactly the backend's
 * SYN-ACK, recorded (with REPLIED) in @reply_flags / @isn. */
static __always_inline int conn_ack_proves(const struct packet *pkt, __u32 reply_flags, __be32 isn)
{
	return (reply_flags & SLUICE_CONN_F_REPLIED) && bpf_ntohl(pkt->tcp_ack_seq) == bpf_ntohl(isn) + 1;
}

/*
 * A client packet on its connection: refresh, and on the rare packets that change the
 * state, update both halves. The handshake is proven only by the client's ACK of the
 * backend's SYN-ACK: an off-path spoofer cannot know the backend's sequence number, and
 * a backend's own packets prove nothing (it answers a spoofed RST with a challenge ACK).
 */
static __always_inline void conn_on_client_packet(struct sluice_flow *flow, const struct packet *pkt, __u64 now)
{
	struct sluice_snat_slot *nat;
	__u32 bits;
	int proving;

	if (now - flow->last_seen_ns > SLUICE_FLOW_TOUCH_NS)
		flow->last_seen_ns = now;
	if (pkt->tuple.protocol != IPPROTO_TCP)
		return;
	bits = close_bits(pkt, SLUICE_CONN_F_CLIENT_FIN);
	proving = !(flow->flags & SLUICE_CONN_F_ESTABLISHED) &&
		  (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK)) == TCP_FLAG_ACK;
	if (!bits && !proving)
		return;
	if (flow->mode != SLUICE_MODE_FULLNAT) {
		/* dnat: one entry holds both directions. */
		if (proving && conn_ack_proves(pkt, flow->flags, flow->backend_isn))
			conn_establish(flow, 0);
		if (bits)
			conn_mark(&flow->flags, &flow->closed_ns, bits, now);
		return;
	}
	nat = reverse_half(flow, &pkt->tuple);
	/* Test the pointer itself below, not a flag clang derives from it: the verifier cannot
	 * tell that such a flag and the pointer agree. */
	asm volatile("" : "+r"(nat));
	if (proving && nat && conn_ack_proves(pkt, nat->flags, nat->backend_isn))
		conn_establish(flow, nat);
	if (bits) {
		conn_mark(&flow->flags, &flow->closed_ns, bits, now);
		if (nat)
			conn_mark(&nat->flags, &nat->last_seen_ns, bits, now);
	}
}

/*
 * A backend packet on the record of the backend's direction (a fullnat reverse half, or a
 * dnat connection's one entry): refresh, record its SYN-ACK. Returns its FIN/RST as flags.
 */
static __always_inline __u32 conn_backend_side(__u32 *flags, __be32 *isn, __u64 *seen, const struct packet *pkt, __u64 now)
{
	/* Before the handshake is proven only the client keeps a TCP connection alive: a
	 * backend retransmitting its SYN-ACK to a spoofed source must not. */
	if (now - *seen > SLUICE_FLOW_TOUCH_NS && (pkt->tuple.protocol != IPPROTO_TCP || (*flags & SLUICE_CONN_F_ESTABLISHED)))
		*seen = now;
	/* TCP: only the SYN-ACK counts as the answer (and gives the ISN the client's ACK is
	 * checked against); UDP: any datagram back. */
	if (!(*flags & SLUICE_CONN_F_REPLIED)) {
		if (pkt->tuple.protocol != IPPROTO_TCP) {
			conn_set_flags(flags, SLUICE_CONN_F_REPLIED);
		} else if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK)) {
			*isn = pkt->tcp_seq;
			conn_set_flags(flags, SLUICE_CONN_F_REPLIED);
		}
	}
	if (pkt->tuple.protocol != IPPROTO_TCP)
		return 0;
	return close_bits(pkt, SLUICE_CONN_F_BACKEND_FIN);
}

/* A backend packet on a fullnat connection: its reverse half, and a FIN or RST in both halves. */
static __always_inline void conn_on_reply(struct sluice_snat_slot *nat, __u64 owner, const struct packet *pkt, __u64 now)
{
	struct sluice_flow *flow;
	__u32 bits = conn_backend_side(&nat->flags, &nat->backend_isn, &nat->last_seen_ns, pkt, now);

	if (!bits)
		return;
	flow = forward_half(nat, owner, &pkt->tuple);
	/* A slot has no closed_ns of its own: its last_seen_ns marks the close. */
	conn_mark(&nat->flags, &nat->last_seen_ns, bits, now);
	if (flow)
		conn_mark(&flow->flags, &flow->closed_ns, bits, now);
}

/* A backend packet on a dnat connection: its one entry. */
static __always_inline void conn_on_dnat_reply(struct sluice_flow *flow, const struct packet *pkt, __u64 now)
{
	__u32 bits = conn_backend_side(&flow->flags, &flow->backend_isn, &flow->reply_seen_ns, pkt, now);

	if (bits)
		conn_mark(&flow->flags, &flow->closed_ns, bits, now);
}

#endif /* SLUICE_CONN_H */
