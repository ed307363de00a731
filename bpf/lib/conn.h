/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A connection's state (docs/connection-state.md). fullnat: two halves, the forward half
 * in sluice_flows_v5, written by client packets, and the reverse half in a slot of
 * sluice_snat_v5, written by backend packets. Each direction refreshes only its own half on the hot path;
 * the rare transitions (a FIN, a RST, the handshake proven) are written into both,
 * atomically, so either half knows the whole state. The forward half's created_ns is its
 * slot's owner: it tells a connection from a later one on the same key. dnat: one entry in flows, which
 * both directions write (its replies find it through sluice_reply_vips_v5).
 *
 * A forward half's element is never freed while a CPU may hold it: a newer connection on the same
 * key is put in its place (flow_replace), and the sweeper marks an expired one DEAD before it
 * deletes it after an RCU grace period. Its flags change only by compare-and-swap of the word they share
 * with the generation, conditioned on the word the CPU read when it found the entry: a FIN or a
 * proof meant for one connection never lands in the next.
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

static __always_inline __u32 *flow_word(struct sluice_flow *flow)
{
	return (__u32 *)&flow->flags;
}

static __always_inline __u32 flow_word_read(struct sluice_flow *flow)
{
	return *(volatile __u32 *)&flow->flags;
}

static __always_inline __u32 word_generation(__u32 word)
{
	return word >> SLUICE_FLOW_GENERATION_SHIFT;
}

static __always_inline __u32 word_flags(__u32 word)
{
	return word & SLUICE_FLOW_FLAGS_MASK;
}

/* A connection a CPU may use: not expired by the sweeper, not being replaced by another CPU. */
static __always_inline int word_usable(__u32 word)
{
	return !(word & (SLUICE_CONN_F_DEAD | SLUICE_CONN_F_REPLACED));
}

/* Copies the binding and created_ns of the connection read as @seen into @out; 0 if it was
 * dead or being replaced when read, or another connection was put in its place meanwhile (the
 * copy may be torn). A seqlock read: loads stay in order on x86-64, and flow_replace writes
 * the word last. */
static __always_inline int flow_read_binding(struct sluice_flow *flow, __u32 seen, struct sluice_flow *out)
{
	__u32 now;

	if (!word_usable(seen))
		return 0;
	asm volatile("" ::: "memory"); /* the copy after the read of @seen */
	__builtin_memcpy(out, flow, __builtin_offsetof(struct sluice_flow, last_seen_ns));
	asm volatile("" ::: "memory");
	now = flow_word_read(flow);
	return word_usable(now) && word_generation(now) == word_generation(seen);
}

/*
 * Sets @bits in a forward half's flags, on the connection read as @seen only: never on a newer
 * one put in the element since, never on one dead or being replaced. Returns 1 if this call
 * set them, with the flags before in *@before.
 */
static __always_inline int flow_set_flags(struct sluice_flow *flow, __u32 seen, __u32 bits, __u32 *before)
{
	__u32 current = seen, found;
	int i;

	for (i = 0; i < 8; i++) {
		if (word_generation(current) != word_generation(seen) || !word_usable(current) || (current & bits) == bits)
			return 0;
		found = __sync_val_compare_and_swap(flow_word(flow), current, current | bits);
		if (found == current) {
			*before = current;
			return 1;
		}
		current = found;
	}
	return 0;
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

/* The forward half of a reverse half, with its word in *@seen (read before its fields). */
static __always_inline struct sluice_flow *forward_half(const struct sluice_snat_slot *nat, __u64 owner,
							 const struct sluice_tuple *nat_reply, __u32 *seen)
{
	__u8 protocol = nat_reply->protocol;
	struct sluice_tuple client = {}, named = {};
	struct sluice_flow *flow;

	client_key_of(nat, protocol, &client);
	flow = bpf_map_lookup_elem(&sluice_flows_v5, &client);
	if (!flow)
		return 0;
	*seen = flow_word_read(flow);
	asm volatile("" ::: "memory");
	if (!word_usable(*seen) || flow->created_ns != owner)
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
	return bpf_map_lookup_elem(&sluice_handshakes_v5, &which);
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

	return bpf_map_lookup_elem(&sluice_table_full_v5, &zero);
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

/* Sets @bits in a reverse half's flags; returns the flags before (atomically, when it writes). */
static __always_inline __u32 conn_set_flags(__u32 *flags, __u32 bits)
{
	__u32 seen = *flags;

	if ((seen & bits) == bits)
		return seen;
	return __sync_fetch_and_or(flags, bits);
}

/* Records a FIN or RST on a reverse half; stamps *@closed_ns when it closes that half. */
static __always_inline void conn_mark(__u32 *flags, __u64 *closed_ns, __u32 bits, __u64 now)
{
	__u32 before = conn_set_flags(flags, bits);

	if (!conn_is_closed(before) && conn_is_closed(before | bits))
		*closed_ns = now;
}

/* Records a FIN or RST on the forward half's connection read as @seen. */
static __always_inline void flow_mark(struct sluice_flow *flow, __u32 seen, __u32 bits, __u64 now)
{
	__u32 before;

	if (flow_set_flags(flow, seen, bits, &before) && !conn_is_closed(before) && conn_is_closed(before | bits))
		flow->closed_ns = now;
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
 * proves it first (a connection replaced or expired meanwhile left it then). @nat: the
 * reverse half, NULL for dnat. */
static __always_inline void conn_establish(struct sluice_flow *flow, __u32 seen, struct sluice_snat_slot *nat)
{
	__u32 before;

	if (flow_set_flags(flow, seen, SLUICE_CONN_F_ESTABLISHED, &before) && !(before & SLUICE_CONN_F_ESTABLISHED)) {
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
 * A client packet on its connection (@flow, read as @seen; @bound: its binding as copied):
 * refresh, and on the rare packets that change the state, update both halves. The handshake
 * is proven only by the client's ACK of the backend's SYN-ACK: an off-path spoofer cannot know
 * the backend's sequence number, and a backend's own packets prove nothing (it answers a
 * spoofed RST with a challenge ACK).
 */
static __always_inline void conn_on_client_packet(struct sluice_flow *flow, __u32 seen, const struct sluice_flow *bound,
						  const struct packet *pkt, __u64 now)
{
	struct sluice_snat_slot *nat;
	__u32 bits;
	int proving;

	/* A store only: in a newer connection put in this element meanwhile it would merely keep
	 * that one a moment longer. */
	if (now - flow->last_seen_ns > SLUICE_FLOW_TOUCH_NS)
		flow->last_seen_ns = now;
	if (pkt->tuple.protocol != IPPROTO_TCP)
		return;
	bits = close_bits(pkt, SLUICE_CONN_F_CLIENT_FIN);
	proving = !(seen & SLUICE_CONN_F_ESTABLISHED) &&
		  (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK)) == TCP_FLAG_ACK;
	if (!bits && !proving)
		return;
	if (bound->mode != SLUICE_MODE_FULLNAT) {
		/* dnat: one entry holds both directions. */
		if (proving && conn_ack_proves(pkt, seen, flow->backend_isn))
			conn_establish(flow, seen, 0);
		if (bits)
			flow_mark(flow, seen, bits, now);
		return;
	}
	nat = reverse_half(bound, &pkt->tuple);
	/* Test the pointer itself below, not a flag clang derives from it: the verifier cannot
	 * tell that such a flag and the pointer agree. */
	asm volatile("" : "+r"(nat));
	if (proving && nat && conn_ack_proves(pkt, nat->flags, nat->backend_isn))
		conn_establish(flow, seen, nat);
	if (bits) {
		flow_mark(flow, seen, bits, now);
		if (nat)
			conn_mark(&nat->flags, &nat->last_seen_ns, bits, now);
	}
}

/*
 * A backend packet on the record of the backend's direction (a fullnat reverse half, or a
 * dnat connection's one entry), whose flags are @flags: refreshes *@seen_ns. Returns the flags
 * it sets: REPLIED if it is the first answer, its FIN/RST.
 */
static __always_inline __u32 conn_backend_side(__u32 flags, __u64 *seen_ns, const struct packet *pkt, __u64 now)
{
	int is_tcp = pkt->tuple.protocol == IPPROTO_TCP;
	__u32 bits = 0;

	/* Before the handshake is proven only the client keeps a TCP connection alive: a
	 * backend retransmitting its SYN-ACK to a spoofed source must not. */
	if (now - *seen_ns > SLUICE_FLOW_TOUCH_NS && (!is_tcp || (flags & SLUICE_CONN_F_ESTABLISHED)))
		*seen_ns = now;
	/* TCP: only the SYN-ACK counts as the answer (and gives the ISN the client's ACK is
	 * checked against); UDP: any datagram back. */
	if (!(flags & SLUICE_CONN_F_REPLIED) &&
	    (!is_tcp || (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK)))
		bits |= SLUICE_CONN_F_REPLIED;
	if (is_tcp)
		bits |= close_bits(pkt, SLUICE_CONN_F_BACKEND_FIN);
	return bits;
}

/* A backend packet on a fullnat connection: its reverse half, and a FIN or RST in both halves. */
static __always_inline void conn_on_reply(struct sluice_snat_slot *nat, __u64 owner, const struct packet *pkt, __u64 now)
{
	struct sluice_flow *flow;
	__u32 bits = conn_backend_side(nat->flags, &nat->last_seen_ns, pkt, now), seen = 0;

	if (bits & SLUICE_CONN_F_REPLIED) {
		nat->backend_isn = pkt->tcp_seq; /* before the flag that says it is there */
		conn_set_flags(&nat->flags, SLUICE_CONN_F_REPLIED);
		bits &= ~SLUICE_CONN_F_REPLIED;
	}
	if (!bits)
		return;
	flow = forward_half(nat, owner, &pkt->tuple, &seen);
	/* A slot has no closed_ns of its own: its last_seen_ns marks the close. */
	conn_mark(&nat->flags, &nat->last_seen_ns, bits, now);
	if (flow)
		flow_mark(flow, seen, bits, now);
}

/*
 * Records the backend's first answer (and its SYN-ACK's sequence @isn) on the dnat connection read
 * as @seen: the word and backend_isn are one aligned 64-bit value, swapped together, so the ISN
 * never lands in a newer connection put in the element since.
 */
static __always_inline void flow_set_replied(struct sluice_flow *flow, __u32 seen, __be32 isn)
{
	__u64 *both = (__u64 *)flow_word(flow);
	__u64 current, found;
	__u32 word;
	int i;

	current = *(volatile __u64 *)both;
	for (i = 0; i < 8; i++) {
		word = (__u32)current;
		if (word_generation(word) != word_generation(seen) || !word_usable(word) || (word & SLUICE_CONN_F_REPLIED))
			return;
		found = __sync_val_compare_and_swap(both, current, ((__u64)isn << 32) | (word | SLUICE_CONN_F_REPLIED));
		if (found == current)
			return;
		current = found;
	}
}

/* A backend packet on a dnat connection: its one entry, read as @seen. */
static __always_inline void conn_on_dnat_reply(struct sluice_flow *flow, __u32 seen, const struct packet *pkt, __u64 now)
{
	__u32 bits = conn_backend_side(seen, &flow->reply_seen_ns, pkt, now);

	if (bits & SLUICE_CONN_F_REPLIED)
		flow_set_replied(flow, seen, pkt->tcp_seq);
	bits &= ~SLUICE_CONN_F_REPLIED;
	if (bits)
		flow_mark(flow, seen, bits, now);
}

#endif /* SLUICE_CONN_H */
