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

/* Which interface the packet came in on as the kernel sees it: a tagged frame belongs to the
 * VLAN sub-interface with its id, or to nothing of ours. Returns 0, else the counter of the pass. */
static __always_inline int resolve_input(struct xdp_md *ctx, struct packet *pkt)
{
	const struct sluice_vlan *sub;

	pkt->ingress_ifindex = ctx->ingress_ifindex;
	pkt->input.ifindex = pkt->ingress_ifindex;
	if (!pkt->input.vlan_id)
		return 0;
	sub = bpf_map_lookup_elem(&sluice_vlans_v5, &pkt->input);
	if (!sub)
		return SLUICE_CTR_PASS_UNKNOWN_VLAN; /* not a segment we are on: not ours to balance */
	pkt->input.ifindex = sub->ifindex;
	return 0;
}

/* resolve_next_hop's answer when the packet is longer than the egress MTU (in next_hop->max_len). */
#define SLUICE_FIB_TOO_BIG -2

/* Ask the FIB where the rewritten packet goes, as if it came in on its input interface. Returns -1
 * with *next_hop filled when we forward it ourselves, SLUICE_FIB_TOO_BIG with the MTU in
 * next_hop->max_len, else the verdict (pass to the kernel, or a counted drop). An egress VLAN
 * sub-interface becomes its parent plus the tag (XDP cannot send through a VLAN device). */
static __always_inline int resolve_next_hop(struct xdp_md *ctx, struct packet *pkt,
					    struct sluice_next_hop *next_hop)
{
	struct iphdr *ip = pkt->ip;
	struct bpf_fib_lookup fib = {};
	const struct sluice_vlan *parent;
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
	fib.ifindex = pkt->input.ifindex;

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

	/* The egress as the VLAN map's key ({ifindex, 0}), in place: a VLAN sub-interface becomes its parent and tag. */
	next_hop->egress.ifindex = fib.ifindex;
	next_hop->egress.vlan_id = 0;
	next_hop->egress.pad = 0;
	parent = bpf_map_lookup_elem(&sluice_vlans_v5, &next_hop->egress);
	if (parent)
		next_hop->egress = *parent;
	if (next_hop->egress.ifindex != pkt->ingress_ifindex &&
	    !bpf_map_lookup_elem(&sluice_tx_ports_v5, &next_hop->egress.ifindex)) {
		count(SLUICE_CTR_PASS_EGRESS_NOT_ATTACHED);
		return XDP_PASS;
	}
	__builtin_memcpy(next_hop->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(next_hop->smac, fib.smac, ETH_ALEN);
	return -1;
}

/* Gives the frame the egress 802.1Q tag (0: none): rewrites the id (keeping priority), pushes or
 * pops a tag. The caller writes both MACs next, so they need not be kept; every pointer into the
 * packet is stale afterwards. Returns the Ethernet header, or 0 if the frame could not change. */
static __always_inline struct ethhdr *set_vlan_tag(struct xdp_md *ctx, __u16 vlan_id)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan = (void *)(eth + 1);

	if ((void *)(vlan + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q)) {
		if (vlan_id) {
			vlan->tci = (vlan->tci & bpf_htons(0xf000)) | bpf_htons(vlan_id);
			return eth;
		}
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct vlan_hdr)))
			return 0;
	} else {
		if (!vlan_id)
			return eth;
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct vlan_hdr)))
			return 0;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	vlan = (void *)(eth + 1);
	if ((void *)(vlan + 1) > data_end)
		return 0;
	if (vlan_id) {
		eth->h_proto = bpf_htons(ETH_P_8021Q);
		vlan->tci = bpf_htons(vlan_id);
		vlan->encapsulated_proto = bpf_htons(ETH_P_IP);
	} else {
		eth->h_proto = bpf_htons(ETH_P_IP);
	}
	return eth;
}

/*
 * The frame's way out to a resolved next hop: its egress tag and MACs, then the devmap. A global
 * function: the verifier checks the tag's push and pop once, not on every caller's path. Returns
 * XDP_REDIRECT or XDP_DROP only; every packet pointer of the caller is stale afterwards.
 */
__attribute__((noinline)) int sluice_transmit(struct xdp_md *ctx, const struct sluice_next_hop *next_hop)
{
	struct ethhdr *eth;
	__u32 ifindex;

	if (!next_hop)
		return XDP_DROP;
	ifindex = next_hop->egress.ifindex;
	eth = set_vlan_tag(ctx, next_hop->egress.vlan_id);
	if (!eth)
		return drop(SLUICE_DROP_VLAN_TAG);
	__builtin_memcpy(eth->h_dest, next_hop->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, next_hop->smac, ETH_ALEN);
	/* Back out of the ingress interface through the devmap too, not XDP_TX: on a veth, XDP_TX
	 * frames are lost unless the peer runs an XDP program, a redirect needs only NAPI there. */
	count(ifindex == ctx->ingress_ifindex ? SLUICE_CTR_TRANSMITTED : SLUICE_CTR_REDIRECTED);
	/* MACs are rewritten: never to the kernel. */
	return bpf_redirect_map(&sluice_tx_ports_v5, ifindex, XDP_DROP) == XDP_REDIRECT ? XDP_REDIRECT : XDP_DROP;
}

/* Send the packet to a resolved next hop: TTL here, then tag, MACs and out. */
static __always_inline int transmit(struct xdp_md *ctx, struct packet *pkt,
				    const struct sluice_next_hop *next_hop)
{
	decrement_ttl(pkt->ip);
	/* Only these two verdicts, so no caller's path reads the stale packet pointers after. */
	return sluice_transmit(ctx, next_hop) == XDP_REDIRECT ? XDP_REDIRECT : XDP_DROP;
}

static __always_inline int too_big(struct xdp_md *ctx, struct packet *pkt, __u16 mtu);

/* A next hop for a packet with no per-backend cache (replies, fragments, ICMP): the FIB's answer
 * in this CPU's scratch entry, not on the 512-byte stack. -1 with it filled, SLUICE_FIB_TOO_BIG,
 * or a verdict (resolve_next_hop). */
static __always_inline int resolve_scratch_hop(struct xdp_md *ctx, struct packet *pkt, struct sluice_next_hop **next_hop)
{
	__u32 zero = 0;

	*next_hop = bpf_map_lookup_elem(&sluice_scratch_hop_v5, &zero);
	if (!*next_hop)
		return XDP_PASS; /* never: a one-entry array */
	return resolve_next_hop(ctx, pkt, *next_hop);
}

/* Forwards ICMP the datapath sends or translates: never answered with ICMP when too big
 * (and never calls too_big, which sends ICMP through here: no recursion to inline). */
static __always_inline int forward_icmp(struct xdp_md *ctx, struct packet *pkt)
{
	struct sluice_next_hop *next_hop;
	int verdict = resolve_scratch_hop(ctx, pkt, &next_hop);

	if (verdict == SLUICE_FIB_TOO_BIG)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	return verdict >= 0 ? verdict : transmit(ctx, pkt, next_hop);
}

static __always_inline int forward(struct xdp_md *ctx, struct packet *pkt)
{
	struct sluice_next_hop *next_hop;
	int verdict = resolve_scratch_hop(ctx, pkt, &next_hop);

	if (verdict == SLUICE_FIB_TOO_BIG)
		return too_big(ctx, pkt, next_hop->max_len);
	return verdict >= 0 ? verdict : transmit(ctx, pkt, next_hop);
}

#endif /* SLUICE_FORWARD_H */
