/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding a rewritten packet: the kernel FIB picks the egress interface
 * and MACs. Whenever we hand the packet to the kernel instead, its MACs and
 * TTL are left untouched so the kernel forwards it as it would any other.
 */
#ifndef SLUICE_FORWARD_H
#define SLUICE_FORWARD_H

#include "counters.h"
#include "packet.h"

#define AF_INET 2

/* Decrement TTL with the incremental checksum update the kernel uses. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xffff));
	ip->ttl -= 1;
}

/* resolve_next_hop's answer when the packet is longer than the egress MTU (in next_hop->max_len). */
#define SLUICE_FIB_TOO_BIG -2

/* Ask the FIB where the rewritten packet goes. Returns -1 with *next_hop
 * filled when we forward it ourselves, SLUICE_FIB_TOO_BIG with the MTU in
 * next_hop->max_len, else the verdict (pass to the kernel, or a counted drop). */
static __always_inline int resolve_next_hop(struct xdp_md *ctx, struct packet *pkt,
					    struct sluice_next_hop *next_hop)
{
	struct iphdr *ip = pkt->ip;
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	if (pkt->l4_check && (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP)) {
		fib.sport = pkt->l4_ports[0];
		fib.dport = pkt->l4_ports[1];
	}
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		count(SLUICE_CTR_PASS_NO_NEIGHBOUR);
		return XDP_PASS;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return drop(SLUICE_DROP_NO_ROUTE);
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return drop(SLUICE_DROP_FORWARDING_DISABLED);
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		next_hop->max_len = fib.mtu_result;
		return SLUICE_FIB_TOO_BIG;
	default: /* not forwarded (local), needs LWT encapsulation */
		count(SLUICE_CTR_PASS_FIB_LOCAL);
		return XDP_PASS;
	}

	if (fib.ifindex != ctx->ingress_ifindex &&
	    !bpf_map_lookup_elem(&sluice_tx_ports_v4, &fib.ifindex)) {
		count(SLUICE_CTR_PASS_EGRESS_NOT_ATTACHED);
		return XDP_PASS;
	}
	next_hop->ifindex = fib.ifindex;
	__builtin_memcpy(next_hop->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(next_hop->smac, fib.smac, ETH_ALEN);
	return -1;
}

/* Send the packet to a resolved next hop: TTL, MACs, then out. */
static __always_inline int transmit(struct xdp_md *ctx, struct packet *pkt,
				    const struct sluice_next_hop *next_hop)
{
	decrement_ttl(pkt->ip);
	__builtin_memcpy(pkt->eth->h_dest, next_hop->dmac, ETH_ALEN);
	__builtin_memcpy(pkt->eth->h_source, next_hop->smac, ETH_ALEN);
	/* Back out of the ingress interface through the devmap too, not XDP_TX: on a veth, XDP_TX
	 * frames are lost unless the peer runs an XDP program, a redirect needs only NAPI there. */
	count(next_hop->ifindex == ctx->ingress_ifindex ? SLUICE_CTR_TRANSMITTED : SLUICE_CTR_REDIRECTED);
	return bpf_redirect_map(&sluice_tx_ports_v4, next_hop->ifindex, XDP_DROP); /* MACs are rewritten: never to the kernel */
}

static __always_inline int too_big(struct xdp_md *ctx, struct packet *pkt, __u16 mtu);

/* Forwards ICMP the datapath sends or translates: never answered with ICMP when too big. */
static __always_inline int forward_icmp(struct xdp_md *ctx, struct packet *pkt)
{
	struct sluice_next_hop next_hop = {};
	int verdict = resolve_next_hop(ctx, pkt, &next_hop);

	if (verdict == SLUICE_FIB_TOO_BIG)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	return verdict >= 0 ? verdict : transmit(ctx, pkt, &next_hop);
}

static __always_inline int forward(struct xdp_md *ctx, struct packet *pkt)
{
	struct sluice_next_hop next_hop = {};
	int verdict = resolve_next_hop(ctx, pkt, &next_hop);

	if (verdict == SLUICE_FIB_TOO_BIG)
		return too_big(ctx, pkt, next_hop.max_len);
	return verdict >= 0 ? verdict : transmit(ctx, pkt, &next_hop);
}

#endif /* SLUICE_FORWARD_H */
