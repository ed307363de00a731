/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about a connection's packets (destination unreachable, "fragmentation needed"
 * among them, and time exceeded), translated like the packets they quote so they reach the
 * endpoint that sent the quoted packet: path MTU discovery works through the load balancer.
 *   - to a VIP, from the client's side, quoting VIP:port -> client (a reply we sent): to the
 *     backend, quoting the reply as the backend sent it (fullnat: from the SNAT address);
 *   - to an SNAT address (fullnat), quoting SNAT -> backend (a packet we forwarded): to the
 *     client, from the VIP, quoting client -> VIP:port;
 *   - to a client (dnat), quoting client -> backend: from the VIP, quoting client -> VIP:port,
 *     so the backend's address never reaches the client.
 * Outer and inner addresses, ports, the inner IP checksum, the quoted UDP/TCP checksum when
 * quoted, and the ICMP checksum over all of it are updated incrementally.
 */
#ifndef SLUICE_ICMP_ERROR_H
#define SLUICE_ICMP_ERROR_H

#include "balancer.h"
#include "icmp.h"

#define ICMP_TIME_EXCEEDED_TYPE 11
#define SLUICE_MIN_PATH_MTU 552 /* RFC 1191: 576 at most, 552 as Linux's min_pmtu */

/* The packet an ICMP error quotes. */
struct quoted {
	struct iphdr *ip;
	__be16 *ports;           /* its first four L4 bytes */
	__sum16 *l4_check;       /* its TCP/UDP checksum if quoted, else NULL */
	struct sluice_tuple tuple;
};

static __always_inline int parse_quoted(const struct packet *pkt, struct quoted *q)
{
	struct iphdr *inner = (void *)(pkt->icmp + 1);
	void *data_end = pkt->data_end;
	/* Only what the ICMP message holds: not Ethernet padding or a trailer after it. */
	long message = bpf_ntohs(pkt->ip->tot_len);
	__u32 header;

	if (pkt->icmp->type != ICMP_DEST_UNREACH_TYPE && pkt->icmp->type != ICMP_TIME_EXCEEDED_TYPE)
		return -1;
	if (pkt->first_fragment)
		return -1; /* errors are never fragmented: not one of ours */
	if ((void *)(inner + 1) > data_end || inner->version != 4 || inner->ihl < 5)
		return -1;
	/* Only a first fragment (or a whole packet) quotes ports. */
	if (inner->frag_off & bpf_htons(IP_OFFSET))
		return -1;
	if (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP)
		return -1;
	header = (inner->ihl & 0x0f) * 4;
	q->ip = inner;
	q->ports = (void *)inner + header;
	if ((void *)q->ports + 8 > data_end || ((void *)q->ports + 8) - (void *)pkt->ip > message)
		return -1;
	if (inner->protocol == IPPROTO_UDP)
		q->l4_check = (void *)q->ports + 6;
	else if ((void *)q->ports + 18 <= data_end && ((void *)q->ports + 18) - (void *)pkt->ip <= message)
		q->l4_check = (void *)q->ports + 16;
	else
		q->l4_check = 0;
	q->tuple.saddr = inner->saddr;
	q->tuple.daddr = inner->daddr;
	q->tuple.sport = q->ports[0];
	q->tuple.dport = q->ports[1];
	q->tuple.protocol = inner->protocol;
	/* An error goes to the source of the packet it quotes: anything else is forged. */
	if (inner->saddr != pkt->ip->daddr)
		return -1;
	/* A "fragmentation needed" below the IPv4 minimum reassembly size only lowers everyone's MTU
	 * (in fullnat every client's: the backend sees one SNAT address). */
	if (pkt->icmp->type == ICMP_DEST_UNREACH_TYPE && pkt->icmp->code == ICMP_FRAG_NEEDED_CODE &&
	    bpf_ntohl(pkt->icmp->rest) < SLUICE_MIN_PATH_MTU)
		return -1;
	return 0;
}

/* The reverse of a tuple: what the other end sends. */
static __always_inline void reverse_tuple(const struct sluice_tuple *t, struct sluice_tuple *r)
{
	r->saddr = t->daddr;
	r->daddr = t->saddr;
	r->sport = t->dport;
	r->dport = t->sport;
	r->protocol = t->protocol;
}

/* Rewrites the outer addresses and the quoted packet's, with every checksum that covers them. */
static __always_inline void rewrite_icmp_error(struct packet *pkt, struct quoted *q, __be32 outer_src, __be32 outer_dst,
					       __be32 inner_src, __be16 inner_sport, __be32 inner_dst, __be16 inner_dport)
{
	struct iphdr *ip = pkt->ip, *inner = q->ip;
	__u64 inner_addresses = csum_delta32(inner->saddr, inner_src) + csum_delta32(inner->daddr, inner_dst);
	__u64 ports = csum_delta16(q->ports[0], inner_sport) + csum_delta16(q->ports[1], inner_dport);
	__u64 icmp_delta = inner_addresses + ports;
	__u16 old_check = inner->check, new_check = csum_apply(old_check, inner_addresses);

	icmp_delta += csum_delta16(old_check, new_check);
	inner->check = new_check;
	if (q->l4_check && (inner->protocol == IPPROTO_TCP || *q->l4_check != 0)) {
		old_check = *q->l4_check;
		new_check = csum_apply(old_check, inner_addresses + ports);
		if (inner->protocol == IPPROTO_UDP && new_check == 0)
			new_check = 0xffff;
		icmp_delta += csum_delta16(old_check, new_check);
		*q->l4_check = new_check;
	}
	inner->saddr = inner_src;
	inner->daddr = inner_dst;
	q->ports[0] = inner_sport;
	q->ports[1] = inner_dport;
	pkt->icmp->checksum = csum_apply(pkt->icmp->checksum, icmp_delta);
	ip->check = csum_apply(ip->check, csum_delta32(ip->saddr, outer_src) + csum_delta32(ip->daddr, outer_dst));
	ip->saddr = outer_src;
	ip->daddr = outer_dst;
}

/* To a VIP, quoting a reply we sent (VIP:port -> client): to the connection's backend. */
static __always_inline int icmp_error_to_backend(struct xdp_md *ctx, struct packet *pkt, struct quoted *q)
{
	struct sluice_tuple client = {};
	struct sluice_flow *flow, bound = {};
	__u32 seen;

	reverse_tuple(&q->tuple, &client);
	flow = bpf_map_lookup_elem(&sluice_flows_v5, &client);
	if (!flow)
		return drop(SLUICE_DROP_NO_CONNECTION);
	seen = flow_word_read(flow);
	if (!flow_read_binding(flow, seen, &bound))
		return drop(SLUICE_DROP_NO_CONNECTION);
	if (bound.mode == SLUICE_MODE_FULLNAT)
		rewrite_icmp_error(pkt, q, bound.snat_address, bound.backend_address,
				   bound.backend_address, bound.backend_port, bound.snat_address, bound.snat_port);
	else
		rewrite_icmp_error(pkt, q, pkt->ip->saddr, bound.backend_address,
				   bound.backend_address, bound.backend_port, q->tuple.daddr, q->tuple.dport);
	count(SLUICE_CTR_ICMP_TO_BACKEND);
	return forward_icmp(ctx, pkt);
}

/* To an SNAT address, quoting a packet we forwarded (SNAT -> backend): to the connection's client. */
static __always_inline int icmp_error_to_fullnat_client(struct xdp_md *ctx, struct packet *pkt, struct quoted *q)
{
	struct sluice_tuple reply = {};
	struct sluice_snat_slot *slot;
	__be32 vip, client;
	__be16 vip_port, client_port;
	__u64 owner;

	reverse_tuple(&q->tuple, &reply);
	slot = snat_reverse_half(&reply, &owner);
	if (!slot)
		return -1;
	vip = slot->saddr;
	client = slot->daddr;
	vip_port = slot->sport;
	client_port = slot->dport;
	asm volatile("" ::: "memory");
	if (slot->owner != owner)
		return drop(SLUICE_DROP_NO_CONNECTION);
	rewrite_icmp_error(pkt, q, vip, client, client, client_port, vip, vip_port);
	count(SLUICE_CTR_ICMP_TO_CLIENT);
	return forward_icmp(ctx, pkt);
}

/* Passing through to a dnat client, quoting client -> backend: from the VIP, quoting client -> VIP:port. */
static __always_inline int icmp_error_to_dnat_client(struct xdp_md *ctx, struct packet *pkt, struct quoted *q)
{
	struct sluice_tuple reply = {}, client = {};
	struct sluice_flow *flow;
	__u32 seen = 0;

	reverse_tuple(&q->tuple, &reply);
	flow = dnat_connection_of_reply(&reply, &client, &seen);
	if (!flow)
		return -1;
	if (!word_usable(seen))
		return drop(SLUICE_DROP_NO_CONNECTION);
	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	rewrite_icmp_error(pkt, q, client.daddr, pkt->ip->daddr, q->tuple.saddr, q->tuple.sport, client.daddr, client.dport);
	count(SLUICE_CTR_ICMP_TO_CLIENT);
	return forward_icmp(ctx, pkt);
}

/*
 * An ICMP error about one of our connections, translated and forwarded; -1 if it is about none
 * (then it is handled as any ICMP packet: a VIP's dropped, others passed to the kernel).
 */
static __always_inline int translate_icmp_error(struct xdp_md *ctx, struct packet *pkt)
{
	struct quoted q = {};

	if (parse_quoted(pkt, &q))
		return -1;
	if (!icmp_token(ICMP_BUCKET_ERRORS, bpf_ktime_get_coarse_ns()))
		return drop(SLUICE_DROP_ICMP_RATE_LIMITED);
	if (bpf_map_lookup_elem(&sluice_vips_v5, &pkt->ip->daddr)) {
		if (!ip_checksum_valid(ctx, pkt))
			return drop(SLUICE_DROP_IP_CHECKSUM);
		if (pkt->ip->ttl <= 1)
			return drop(SLUICE_DROP_TTL_EXCEEDED);
		return icmp_error_to_backend(ctx, pkt, &q);
	}
	if (is_snat_address(pkt->ip->daddr)) {
		if (!ip_checksum_valid(ctx, pkt))
			return drop(SLUICE_DROP_IP_CHECKSUM);
		if (pkt->ip->ttl <= 1)
			return drop(SLUICE_DROP_TTL_EXCEEDED);
		return icmp_error_to_fullnat_client(ctx, pkt, &q);
	}
	if (pkt->ip->ttl <= 1)
		return -1;
	return icmp_error_to_dnat_client(ctx, pkt, &q);
}

#endif /* SLUICE_ICMP_ERROR_H */
