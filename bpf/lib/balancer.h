/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The two paths of a load-balanced packet:
 *   client -> VIP:port     flow lookup (or Maglev + NAT setup), DNAT (+SNAT)
 *   backend -> client/SNAT reverse NAT back to VIP:port
 * The established path only reads maps; writes happen once per new flow.
 */
#ifndef SLUICE_BALANCER_H
#define SLUICE_BALANCER_H

#include "counters.h"
#include "forward.h"
#include "maglev.h"
#include "rewrite.h"
#include "snat.h"

static __always_inline struct sluice_backend *backend_by_id(__u32 id)
{
	struct sluice_backend *backend = bpf_map_lookup_elem(&sluice_backends_v2, &id);

	if (!backend || !(backend->flags & SLUICE_BACKEND_F_PRESENT))
		return 0;
	return backend;
}

/* Choose a backend for a new flow and record its NAT; the caller records the
 * flow itself once its next hop is known. */
static __always_inline enum sluice_drop_reason
create_flow(struct packet *pkt, const struct sluice_service *service,
	    struct sluice_flow *flow, struct sluice_backend **backend_out, __u64 now)
{
	const struct sluice_tuple *client = &pkt->tuple;
	__u32 hash = flow_hash(client, service->flags);
	__s64 picked = maglev_pick(service->id, hash);
	struct sluice_backend *backend;
	struct sluice_nat reverse = {};
	struct sluice_tuple reply = {};
	enum sluice_drop_reason reason;

	if (picked < 0)
		return SLUICE_DROP_NO_BACKEND;
	backend = backend_by_id((__u32)picked);
	if (!backend)
		return SLUICE_DROP_NO_BACKEND;

	flow->backend_id = (__u32)picked;
	flow->service_id = service->id;
	flow->created_ns = now;
	flow->last_seen_ns = now;
	reverse.saddr = client->daddr;
	reverse.daddr = client->saddr;
	reverse.sport = client->dport;
	reverse.dport = client->sport;
	reverse.service_id = service->id;
	reverse.backend_id = flow->backend_id;
	reverse.created_ns = flow->created_ns;

	if (service->mode == SLUICE_MODE_FULLNAT) {
		reason = snat_allocate(client, backend, hash, pkt->tcp_seq, flow, &reverse, now);
		if (reason != SLUICE_DROP_NONE)
			return reason;
	} else {
		/* dnat: the reply comes from the backend straight to the client. */
		reply.saddr = backend->address;
		reply.daddr = client->saddr;
		reply.sport = backend->port;
		reply.dport = client->sport;
		reply.protocol = client->protocol;
		if (bpf_map_update_elem(&sluice_nat_v2, &reply, &reverse, BPF_ANY) != 0)
			return SLUICE_DROP_FLOW_INSERT_FAILED;
	}
	*backend_out = backend;
	return SLUICE_DROP_NONE;
}

/* Liveness for drain counts and the flows API: a rate-limited last-seen store and
 * a closing mark on FIN/RST. Both are plain stores into the value, no map update. */
/* The coarse clock (CLOCK_MONOTONIC_COARSE) is plenty for 1 s intervals and
 * far cheaper than bpf_ktime_get_ns. */
static __always_inline void nat_closing(struct sluice_nat *nat, __u64 now)
{
	if (nat && !(nat->flags & SLUICE_NAT_F_CLOSING)) {
		nat->closed_ns = now;
		nat->flags |= SLUICE_NAT_F_CLOSING;
	}
}

/* Returns 1 when this packet closes the flow (its first FIN or RST). */
static __always_inline int flow_touch(struct sluice_flow *flow, const struct packet *pkt, __u64 now)
{
	if (now - flow->last_seen_ns > SLUICE_FLOW_TOUCH_NS)
		flow->last_seen_ns = now;
	if ((pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) && !(flow->flags & SLUICE_FLOW_F_CLOSING)) {
		flow->flags |= SLUICE_FLOW_F_CLOSING;
		return 1;
	}
	return 0;
}

/* The client closed: mark the flow's reverse-NAT entry too (rare: one lookup per flow). */
static __always_inline void close_reverse(const struct sluice_flow *flow, const struct sluice_backend *backend,
					  const struct sluice_tuple *client, __u64 now)
{
	struct sluice_tuple reply = {
		.saddr = backend->address,
		.daddr = flow->snat_port ? flow->snat_address : client->saddr,
		.sport = backend->port,
		.dport = flow->snat_port ? flow->snat_port : client->sport,
		.protocol = client->protocol,
	};

	nat_closing(bpf_map_lookup_elem(&sluice_nat_v2, &reply), now);
}

/* Forward to a backend through its cached next hop, asking the FIB again once
 * the cache is older than SLUICE_NEXT_HOP_TTL_NS. Only successful lookups are
 * cached, so a missing neighbour or route is retried on every packet. The
 * cache assumes destination-based routing (the usual case for backends). */
static __always_inline int forward_to_backend(struct xdp_md *ctx, struct packet *pkt,
					      struct sluice_backend *backend, __u64 now)
{
	struct sluice_next_hop next_hop = {};
	__u16 len = bpf_ntohs(pkt->ip->tot_len);
	int fresh = backend->next_hop.ifindex && now - backend->next_hop_ns < SLUICE_NEXT_HOP_TTL_NS &&
		    backend->next_hop.ingress_ifindex == ctx->ingress_ifindex;
	int verdict;

	if (fresh && len <= backend->next_hop.max_len)
		return transmit(ctx, pkt, &backend->next_hop);
	verdict = resolve_next_hop(ctx, pkt, &next_hop);
	if (verdict >= 0)
		return verdict;
	next_hop.ingress_ifindex = ctx->ingress_ifindex;
	next_hop.max_len = len;
	if (fresh && backend->next_hop.ifindex == next_hop.ifindex && backend->next_hop.max_len > len)
		next_hop.max_len = backend->next_hop.max_len;
	else
		backend->next_hop_ns = now;
	backend->next_hop = next_hop;
	return transmit(ctx, pkt, &next_hop);
}

/* A bare SYN on a closing flow is a new connection reusing the client port. */
static __always_inline int reopens_closed_flow(const struct sluice_flow *flow, const struct packet *pkt)
{
	return (flow->flags & SLUICE_FLOW_F_CLOSING) &&
	       (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
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
	int is_new = 0;

	if (pkt->ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);

	existing = bpf_map_lookup_elem(&sluice_flows_v2, &pkt->tuple);
	if (existing && reopens_closed_flow(existing, pkt)) {
		existing = 0;
		count(SLUICE_CTR_FLOW_REOPENED);
	}
	if (existing) {
		backend = backend_by_id(existing->backend_id);
		if (backend) {
			if (flow_touch(existing, pkt, now))
				close_reverse(existing, backend, &pkt->tuple, now);
			flow = existing;
			count(SLUICE_CTR_FLOW_HIT);
		} else {
			count(SLUICE_CTR_FLOW_REHASHED);
		}
	}
	if (!backend) {
		reason = create_flow(pkt, service, &created, &backend, now);
		if (reason != SLUICE_DROP_NONE)
			return drop(reason);
		if (bpf_map_update_elem(&sluice_flows_v2, &pkt->tuple, &created, BPF_ANY) != 0)
			return drop(SLUICE_DROP_FLOW_INSERT_FAILED);
		flow = &created;
		is_new = 1;
		count(SLUICE_CTR_FLOW_NEW);
	}

	count_traffic(&sluice_service_stats_v2, service->id, pkt->frame_len, is_new, 0);
	count_traffic(&sluice_backend_stats_v2, flow->backend_id, pkt->frame_len, is_new, 0);
	if (service->mode == SLUICE_MODE_FULLNAT)
		rewrite_tuple(pkt, flow->snat_address, backend->address, flow->snat_port, backend->port);
	else
		rewrite_tuple(pkt, pkt->tuple.saddr, backend->address, pkt->tuple.sport, backend->port);

	return forward_to_backend(ctx, pkt, backend, now);
}

/* A FIN or RST from the backend closes its NAT entry and the client's flow (rare:
 * an extra lookup) — unless that flow has since been reopened on another SNAT port. */
static __always_inline void mark_closing(struct sluice_nat *nat, const struct sluice_tuple *reply, __u64 now)
{
	struct sluice_tuple client = {
		.saddr = nat->daddr,
		.daddr = nat->saddr,
		.sport = nat->dport,
		.dport = nat->sport,
		.protocol = reply->protocol,
	};
	struct sluice_flow *flow = bpf_map_lookup_elem(&sluice_flows_v2, &client);

	nat_closing(nat, now);
	if (flow && !(flow->flags & SLUICE_FLOW_F_CLOSING) && (!flow->snat_port || flow->snat_port == reply->dport))
		flow->flags |= SLUICE_FLOW_F_CLOSING;
}

static __always_inline int reply_to_client(struct xdp_md *ctx, struct packet *pkt,
					   struct sluice_nat *nat)
{
	if (pkt->ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);
	count(SLUICE_CTR_REPLY_NAT);
	if (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		mark_closing(nat, &pkt->tuple, bpf_ktime_get_coarse_ns());
	count_traffic(&sluice_service_stats_v2, nat->service_id, pkt->frame_len, 0, 1);
	count_traffic(&sluice_backend_stats_v2, nat->backend_id, pkt->frame_len, 0, 1);
	rewrite_tuple(pkt, nat->saddr, nat->daddr, nat->sport, nat->dport);
	return forward(ctx, pkt);
}

#endif /* SLUICE_BALANCER_H */
