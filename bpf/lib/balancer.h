/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The two paths of a load-balanced packet:
 *   client -> VIP:port     its connection (or a new one: Maglev, SNAT claim), DNAT (+SNAT)
 *   backend -> client/SNAT the connection's reverse half, back to VIP:port
 * Established packets only read maps (and store a timestamp once a second); a new
 * connection writes its two halves; nothing is ever evicted to make room.
 */
#ifndef SLUICE_BALANCER_H
#define SLUICE_BALANCER_H

#include "conn.h"
#include "counters.h"
#include "forward.h"
#include "fragments.h"
#include "maglev.h"
#include "rewrite.h"
#include "snat.h"

static __always_inline struct sluice_backend *backend_by_id(__u32 id)
{
	struct sluice_backend *backend = bpf_map_lookup_elem(&sluice_backends_v5, &id);

	if (!backend || !(backend->flags & SLUICE_BACKEND_F_PRESENT))
		return 0;
	return backend;
}

/* The backend of an existing connection, if it is still the one the connection chose,
 * in the same service and mode: ids are reused, services change. NULL: stale. */
static __always_inline struct sluice_backend *
connection_backend(const struct sluice_flow *flow, const struct sluice_service *service)
{
	struct sluice_backend *backend;

	if (flow->service_id != service->id || flow->mode != service->mode)
		return 0;
	backend = backend_by_id(flow->backend_id);
	if (!backend || backend->service_id != flow->service_id || backend->address != flow->backend_address ||
	    backend->port != flow->backend_port)
		return 0;
	return backend;
}

static __always_inline int is_bare_syn(const struct packet *pkt)
{
	return (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST | TCP_FLAG_FIN)) == TCP_FLAG_SYN;
}

static __always_inline struct sluice_reply_vips *reply_vips_of(__be32 address, __be16 port, __u8 protocol)
{
	struct sluice_endpoint endpoint = {};

	endpoint.address = address;
	endpoint.port = port;
	endpoint.protocol = protocol;
	return bpf_map_lookup_elem(&sluice_reply_vips_v5, &endpoint);
}

/* The dnat connection @client (its key) if it exists and chose the backend @reply comes from,
 * in any state (dead or being replaced too), with its word in *@seen. */
static __always_inline struct sluice_flow *dnat_flow_from(const struct sluice_tuple *client, const struct sluice_tuple *reply,
							   __u32 *seen)
{
	struct sluice_flow *flow = bpf_map_lookup_elem(&sluice_flows_v5, client);

	if (!flow)
		return 0;
	*seen = flow_word_read(flow);
	asm volatile("" ::: "memory");
	if (flow->mode == SLUICE_MODE_DNAT && flow->backend_address == reply->saddr && flow->backend_port == reply->sport)
		return flow;
	return 0;
}

/*
 * dnat replies (backend -> client) name no VIP. A backend that serves one dnat service: its
 * VIP (reply_vips). One that serves several: the connection's slot under the reply tuple, claimed
 * when it opened, names the VIP; connections opened while it served one are found by trying each
 * VIP. Returns the connection with its key in @client and its word in *@seen (possibly dead or
 * being replaced: the caller drops its replies rather than let them out untranslated), or NULL.
 */
static __always_inline struct sluice_flow *dnat_connection_of_reply(const struct sluice_tuple *reply,
								  struct sluice_tuple *client, __u32 *seen)
{
	struct sluice_reply_vips *vips = reply_vips_of(reply->saddr, reply->sport, reply->protocol);
	struct sluice_tuple candidate = {};
	struct sluice_snat_slot *slot;
	struct sluice_flow *flow, *found = 0;
	__u32 i, candidate_seen = 0;
	__u64 owner;

	if (!vips || vips->count == 0)
		return 0;
	client->saddr = reply->daddr;
	client->sport = reply->dport;
	client->protocol = reply->protocol;
	if (vips->count > 1) {
		slot = snat_reverse_half(reply, &owner);
		if (slot) {
			client->daddr = slot->saddr;
			client->dport = slot->sport;
			flow = dnat_flow_from(client, reply, seen);
			if (flow && flow->created_ns == owner)
				return flow;
		}
	}
	/* A usable match first: a dead one of another VIP must not shadow it (connections opened
	 * while the backend served one service have no slot, so two may exist). */
	for (i = 0; i < SLUICE_MAX_REPLY_VIPS; i++) {
		if (i >= vips->count)
			break;
		candidate.saddr = client->saddr;
		candidate.sport = client->sport;
		candidate.protocol = client->protocol;
		candidate.daddr = vips->vips[i].vip;
		candidate.dport = vips->vips[i].port;
		flow = dnat_flow_from(&candidate, reply, &candidate_seen);
		if (!flow)
			continue;
		if (!found || (!word_usable(*seen) && word_usable(candidate_seen))) {
			found = flow;
			*seen = candidate_seen;
			client->daddr = candidate.daddr;
			client->dport = candidate.dport;
		}
		if (word_usable(candidate_seen))
			break;
	}
	return found;
}

/* Another dnat connection of this client port to another VIP on the same backend, in any state
 * (a closed or expired one still takes its late segments' replies until deleted): replies
 * could not tell them apart. */
static __always_inline int dnat_replies_ambiguous(const struct sluice_tuple *client, const struct sluice_flow *flow,
						  const struct sluice_reply_vips *vips)
{
	struct sluice_tuple other = {}, reply = {};
	__u32 i, seen;

	other = *client;
	reply.saddr = flow->backend_address;
	reply.sport = flow->backend_port;
	for (i = 0; i < SLUICE_MAX_REPLY_VIPS; i++) {
		if (i >= vips->count)
			break;
		if (vips->vips[i].vip == client->daddr && vips->vips[i].port == client->dport)
			continue;
		other.daddr = vips->vips[i].vip;
		other.dport = vips->vips[i].port;
		if (dnat_flow_from(&other, &reply, &seen))
			return 1;
	}
	return 0;
}

/*
 * A new dnat connection to a backend that serves several dnat services claims the slot of its
 * reply tuple (backend -> client): exclusive on every CPU, it names the VIP for the replies.
 * Refused while another connection of this client port to another VIP on the backend exists.
 */
static __always_inline enum sluice_drop_reason dnat_claim(const struct sluice_tuple *client, const struct sluice_flow *flow,
							   __u64 now, struct sluice_snat_slot **claimed)
{
	struct sluice_reply_vips *vips = reply_vips_of(flow->backend_address, flow->backend_port, client->protocol);
	struct sluice_tuple reply = {};

	if (!vips || vips->count <= 1)
		return SLUICE_DROP_NONE;
	if (dnat_replies_ambiguous(client, flow, vips))
		return SLUICE_DROP_FLOW_INSERT_FAILED;
	reply_key_of(flow, client, &reply);
	*claimed = snat_claim_slot(&reply, client, flow, now);
	return *claimed ? SLUICE_DROP_NONE : SLUICE_DROP_FLOW_INSERT_FAILED;
}

/*
 * Puts @flow in the place of the connection this CPU marked REPLACED (its word was @replaced):
 * the same element, so no CPU still holding it ever writes into freed memory. No other CPU
 * writes the word while REPLACED is set; the fields go first, the word (no flags, the next
 * generation) last, and readers check the word around their copy (flow_read_binding).
 */
static __always_inline void flow_replace(struct sluice_flow *element, __u32 replaced, const struct sluice_flow *flow)
{
	__builtin_memcpy(element, flow, __builtin_offsetof(struct sluice_flow, flags));
	element->backend_isn = 0;
	element->created_ns = flow->created_ns;
	element->last_seen_ns = flow->last_seen_ns;
	element->closed_ns = 0;
	element->reply_seen_ns = 0;
	asm volatile("" ::: "memory");
	*(volatile __u32 *)flow_word(element) = (word_generation(replaced) + 1) << SLUICE_FLOW_GENERATION_SHIFT;
}

/*
 * Open a connection: Maglev picks the backend; for fullnat the reverse half is inserted
 * under a claimed SNAT port; then the forward half (a dnat connection's one entry). @replacing is the closed
 * or stale forward half this connection takes the place of (its word as it was when this
 * CPU marked it REPLACED), else NULL. On success *flow holds the connection's binding as
 * recorded (possibly another CPU's, if it opened the same one first).
 */
static __always_inline enum sluice_drop_reason
open_connection(struct packet *pkt, const struct sluice_service *service, struct sluice_flow *replacing,
		__u32 replaced, struct sluice_flow *flow, struct sluice_backend **backend_out, __u64 now)
{
	const struct sluice_tuple *client = &pkt->tuple;
	int is_tcp = client->protocol == IPPROTO_TCP;
	int is_fullnat = service->mode == SLUICE_MODE_FULLNAT;
	__s64 picked;
	struct sluice_flow *winner;
	struct sluice_backend *backend;
	struct sluice_snat_slot *claimed = 0;
	enum sluice_drop_reason reason;
	__u32 seen;
	long rc;

	if (tables_recently_full(now))
		return SLUICE_DROP_CONNECTION_TABLE_FULL;
	picked = maglev_pick(service->id, flow_hash(client, service->flags));
	if (picked < 0)
		return SLUICE_DROP_NO_BACKEND;
	backend = backend_by_id((__u32)picked);
	if (!backend)
		return SLUICE_DROP_NO_BACKEND;
	if (is_tcp && !handshake_budget_left())
		return SLUICE_DROP_HANDSHAKE_LIMIT;

	flow->backend_address = backend->address;
	flow->backend_port = backend->port;
	flow->mode = service->mode;
	flow->backend_id = (__u32)picked;
	flow->service_id = service->id;
	flow->created_ns = now;
	flow->last_seen_ns = now;
	if (is_fullnat) {
		reason = snat_claim(client, flow, pkt->tcp_seq, now, &claimed);
		if (reason != SLUICE_DROP_NONE)
			return reason;
	} else {
		reason = dnat_claim(client, flow, now, &claimed);
		if (reason != SLUICE_DROP_NONE)
			return reason;
	}
	if (replacing) {
		/* A fullnat connection's old reverse half stays until the sweeper frees it: the
		 * backend may still send the old connection's last segments. An unproven old
		 * handshake leaves the budget once replaced. */
		flow_replace(replacing, replaced, flow);
		if (is_tcp && !(replaced & SLUICE_CONN_F_ESTABLISHED))
			handshake_add(-1);
		count(SLUICE_CTR_FLOW_REPLACED);
	} else if ((rc = bpf_map_update_elem(&sluice_flows_v5, client, flow, BPF_NOEXIST)) != 0) {
		/* Another CPU opened this connection first (or the table is full): give back
		 * what we claimed and use the winner's. */
		if (claimed)
			snat_release(claimed, now);
		if (rc == -E2BIG)
			return SLUICE_DROP_CONNECTION_TABLE_FULL;
		winner = bpf_map_lookup_elem(&sluice_flows_v5, client);
		if (!winner)
			return SLUICE_DROP_FLOW_INSERT_FAILED;
		seen = flow_word_read(winner);
		if (seen & SLUICE_CONN_F_DEAD)
			return SLUICE_DROP_CONNECTION_EXPIRING;
		if (!flow_read_binding(winner, seen, flow))
			return SLUICE_DROP_FLOW_INSERT_FAILED;
		backend = connection_backend(flow, service);
		if (!backend)
			return SLUICE_DROP_STALE_CONNECTION;
		count(SLUICE_CTR_FLOW_RACE_ADOPTED);
		*backend_out = backend;
		return SLUICE_DROP_NONE;
	}
	if (is_tcp)
		handshake_add(1);
	*backend_out = backend;
	return SLUICE_DROP_NONE;
}

/* Forward to a backend through this CPU's cached next hop for it, asking the FIB again once the
 * cache is older than SLUICE_NEXT_HOP_TTL_NS, the packet came in elsewhere (another interface or
 * VLAN), or it is longer than any the FIB accepted. Only successful lookups are cached, so a
 * missing neighbour or route is retried on every packet. The cache assumes destination-based
 * routing (the usual case for backends). */
static __always_inline int forward_to_backend(struct xdp_md *ctx, struct packet *pkt, __u32 backend_id,
					      struct sluice_backend *backend, __u64 now)
{
	struct sluice_next_hop *cached = bpf_map_lookup_elem(&sluice_next_hops_v5, &backend_id);
	__u16 len = bpf_ntohs(pkt->ip->tot_len);
	__u64 egress;
	int verdict;

	if (!cached)
		return forward(ctx, pkt); /* sized like backends: never */
	if (cached->egress.ifindex && now - cached->resolved_ns < SLUICE_NEXT_HOP_TTL_NS &&
	    cached->input_ifindex == pkt->input.ifindex && len <= cached->max_len)
		return transmit(ctx, pkt, cached);
	/* This CPU's own entry: resolved in place (a failed lookup leaves none). */
	verdict = resolve_next_hop(ctx, pkt, cached);
	if (verdict != -1) {
		cached->egress.ifindex = 0;
		return verdict == SLUICE_FIB_TOO_BIG ? too_big(ctx, pkt, cached->max_len) : verdict;
	}
	cached->resolved_ns = now;
	cached->input_ifindex = pkt->input.ifindex;
	cached->max_len = len;
	/* Shared by every CPU for the reply check: one aligned 64-bit store, only when it changes. */
	egress = ((__u64)cached->egress.vlan_id << 32) | cached->egress.ifindex;
	if (*(volatile __u64 *)&backend->egress != egress)
		*(volatile __u64 *)&backend->egress = egress;
	return transmit(ctx, pkt, cached);
}

static __always_inline int balance_to_backend(struct xdp_md *ctx, struct packet *pkt,
					      const struct sluice_service *service)
{
	struct sluice_backend *backend = 0;
	struct sluice_flow *existing;
	struct sluice_flow created = {};
	const struct sluice_flow *flow;
	enum sluice_drop_reason reason;
	__u64 now = bpf_ktime_get_coarse_ns();
	int is_tcp = pkt->tuple.protocol == IPPROTO_TCP;
	__u32 seen = 0;
	int is_new = 0;

	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	/* The kernel forwards it as far as it can, and answers Time Exceeded (RFC 1812 5.3.1). */
	if (pkt->ip->ttl <= 1) {
		count(SLUICE_CTR_PASS_TTL_EXCEEDED);
		return XDP_PASS;
	}
	if (finish_partial_checksum(ctx, pkt))
		return drop(SLUICE_DROP_PARTIAL_CHECKSUM);

	existing = bpf_map_lookup_elem(&sluice_flows_v5, &pkt->tuple);
	if (existing) {
		seen = flow_word_read(existing);
		/* Expired: gone for every packet; its key is free again once the sweeper deletes it. */
		if (seen & SLUICE_CONN_F_DEAD)
			return drop(is_tcp && !is_bare_syn(pkt) ? SLUICE_DROP_NO_CONNECTION : SLUICE_DROP_CONNECTION_EXPIRING);
		/* Another CPU is putting a newer connection in its place: this packet waits for a retransmit. */
		if (!flow_read_binding(existing, seen, &created))
			return drop(SLUICE_DROP_FLOW_INSERT_FAILED);
		backend = connection_backend(&created, service);
		/* A bare SYN on a closed connection is a new one reusing the client port. */
		if (backend && !(is_tcp && is_bare_syn(pkt) && conn_is_closed(word_flags(seen)))) {
			/* Rewrite from the copy: a newer connection may take this element while we hold it. */
			conn_on_client_packet(existing, seen, &created, pkt, now);
			flow = &created;
			count(SLUICE_CTR_FLOW_HIT);
			goto forward;
		}
		if (!backend)
			count(SLUICE_CTR_FLOW_REHASHED);
		backend = 0;
		__builtin_memset(&created, 0, sizeof(created));
	}
	/* Only a SYN opens a TCP connection: a stray ACK, FIN or RST (a scan, a flood, a
	 * connection whose state is gone) never takes a SNAT port. */
	if (is_tcp && !is_bare_syn(pkt))
		return drop(existing ? SLUICE_DROP_STALE_CONNECTION : SLUICE_DROP_NO_CONNECTION);
	/* One CPU replaces a connection: the first to mark it, if it is still the connection read.
	 * Another CPU replacing the same key at once drops its packet (the client retransmits). */
	if (existing && __sync_val_compare_and_swap(flow_word(existing), seen, seen | SLUICE_CONN_F_REPLACED) != seen)
		return drop(SLUICE_DROP_FLOW_INSERT_FAILED);
	reason = open_connection(pkt, service, existing, seen, &created, &backend, now);
	if (reason != SLUICE_DROP_NONE && existing) {
		/* Not replaced after all: give the word back as it was (no one else writes it while
		 * REPLACED is set; a compare-and-swap all the same, never a blind store). */
		__sync_val_compare_and_swap(flow_word(existing), seen | SLUICE_CONN_F_REPLACED, seen);
	}
	if (reason == SLUICE_DROP_CONNECTION_TABLE_FULL)
		tables_full(now);
	if (reason != SLUICE_DROP_NONE)
		return drop(reason);
	flow = &created;
	is_new = 1;
	count(SLUICE_CTR_FLOW_NEW);

forward:
	count_traffic(&sluice_service_stats_v5, service->id, pkt->frame_len, is_new, 0);
	count_traffic(&sluice_backend_stats_v5, flow->backend_id, pkt->frame_len, is_new, 0);
	if (flow->mode == SLUICE_MODE_FULLNAT)
		rewrite_tuple(pkt, flow->snat_address, flow->backend_address, flow->snat_port, flow->backend_port);
	else
		rewrite_tuple(pkt, pkt->tuple.saddr, flow->backend_address, pkt->tuple.sport, flow->backend_port);
	remember_fragments(pkt, now);

	return forward_to_backend(ctx, pkt, flow->backend_id, backend, now);
}

/* Whether a reply came in where its backend is: the interface and VLAN its packets leave by
 * (recorded by the forward path, which always precedes replies). A reply from anywhere else is a
 * spoof of the backend's address (RFC 3704-style). Unknown yet, or the backend gone: accepted. */
static __always_inline int reply_ingress_ok(struct xdp_md *ctx, const struct packet *pkt, __u32 backend_id)
{
	struct sluice_backend *backend = bpf_map_lookup_elem(&sluice_backends_v5, &backend_id);
	__u64 egress;

	if (!backend)
		return 1;
	egress = *(volatile __u64 *)&backend->egress;
	return !egress || egress == (((__u64)pkt->input.vlan_id << 32) | pkt->ingress_ifindex);
}

/* A dnat reply: back to the client from the VIP:port it connected to. */
static __always_inline int dnat_reply_to_client(struct xdp_md *ctx, struct packet *pkt, struct sluice_flow *flow,
						__u32 seen, const struct sluice_tuple *client)
{
	/* Its connection expired, or another is being put in its place: never out untranslated. */
	if (!word_usable(seen))
		return drop(SLUICE_DROP_NO_CONNECTION);
	if (!reply_ingress_ok(ctx, pkt, flow->backend_id))
		return drop(SLUICE_DROP_REPLY_INGRESS);
	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (pkt->ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);
	if (finish_partial_checksum(ctx, pkt))
		return drop(SLUICE_DROP_PARTIAL_CHECKSUM);
	count(SLUICE_CTR_REPLY_NAT);
	conn_on_dnat_reply(flow, seen, pkt, bpf_ktime_get_coarse_ns());
	count_traffic(&sluice_service_stats_v5, flow->service_id, pkt->frame_len, 0, 1);
	count_traffic(&sluice_backend_stats_v5, flow->backend_id, pkt->frame_len, 0, 1);
	rewrite_tuple(pkt, client->daddr, client->saddr, client->dport, client->sport);
	remember_fragments(pkt, bpf_ktime_get_coarse_ns());
	return forward(ctx, pkt);
}

/* A fullnat reply: back to the client from the VIP:port, as its reverse half records. */
static __always_inline int reply_to_client(struct xdp_md *ctx, struct packet *pkt,
					   struct sluice_snat_slot *nat, __u64 owner)
{
	__be32 vip = nat->saddr, client = nat->daddr;
	__be16 vip_port = nat->sport, client_port = nat->dport;
	__u32 service_id = nat->service_id, backend_id = nat->backend_id;

	/* The slot is still the connection whose key matched: it was not freed and claimed anew
	 * while the fields were copied. */
	asm volatile("" ::: "memory");
	if (nat->owner != owner)
		return drop(SLUICE_DROP_NO_CONNECTION);
	if (!reply_ingress_ok(ctx, pkt, backend_id))
		return drop(SLUICE_DROP_REPLY_INGRESS);
	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (pkt->ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);
	if (finish_partial_checksum(ctx, pkt))
		return drop(SLUICE_DROP_PARTIAL_CHECKSUM);
	count(SLUICE_CTR_REPLY_NAT);
	conn_on_reply(nat, owner, pkt, bpf_ktime_get_coarse_ns());
	count_traffic(&sluice_service_stats_v5, service_id, pkt->frame_len, 0, 1);
	count_traffic(&sluice_backend_stats_v5, backend_id, pkt->frame_len, 0, 1);
	rewrite_tuple(pkt, vip, client, vip_port, client_port);
	remember_fragments(pkt, bpf_ktime_get_coarse_ns());
	return forward(ctx, pkt);
}

#endif /* SLUICE_BALANCER_H */
