/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragments (as Cilium does): a datagram's first fragment carries the ports, so it is balanced
 * (or reverse-translated) like any packet, and the addresses it was rewritten to are remembered
 * under (sender, receiver, IP id, protocol); each following fragment, which carries no ports,
 * gets the same addresses. The L4 checksum, in the first fragment, covers the whole datagram:
 * its incremental update there is right for the reassembled one. A following fragment whose
 * first was not seen (reordered ahead of it, or its entry gone) is dropped and counted when it is
 * addressed to a VIP; otherwise passed (it is not known to be ours).
 */
#ifndef SLUICE_FRAGMENTS_H
#define SLUICE_FRAGMENTS_H

#include "counters.h"
#include "csum.h"
#include "forward.h"
#include "packet.h"

#define SLUICE_FRAGMENT_TIMEOUT_NS 5000000000ULL

/* After a first fragment was rewritten: its datagram's following fragments get the same addresses. */
static __always_inline void remember_fragments(const struct packet *pkt, __u64 now)
{
	struct sluice_fragment_key key = {};
	struct sluice_fragment_value value = {};

	if (!pkt->first_fragment)
		return;
	key.saddr = pkt->tuple.saddr;
	key.daddr = pkt->tuple.daddr;
	key.id = pkt->ip->id;
	key.protocol = pkt->tuple.protocol;
	value.saddr = pkt->ip->saddr;
	value.daddr = pkt->ip->daddr;
	value.seen_ns = now;
	bpf_map_update_elem(&sluice_fragments_v4, &key, &value, BPF_ANY);
}

/* A following fragment: rewritten and forwarded like its first, or -1 if its first was not seen. */
static __always_inline int follow_fragment(struct xdp_md *ctx, struct packet *pkt)
{
	struct sluice_fragment_key key = {};
	struct sluice_fragment_value *value;
	struct iphdr *ip = pkt->ip;
	__u64 now = bpf_ktime_get_coarse_ns();

	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.id = ip->id;
	key.protocol = ip->protocol;
	value = bpf_map_lookup_elem(&sluice_fragments_v4, &key);
	if (!value || now - value->seen_ns > SLUICE_FRAGMENT_TIMEOUT_NS)
		return -1;
	if (!ip_checksum_valid(pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);
	ip->check = csum_apply(ip->check, csum_delta32(ip->saddr, value->saddr) + csum_delta32(ip->daddr, value->daddr));
	ip->saddr = value->saddr;
	ip->daddr = value->daddr;
	count(SLUICE_CTR_FRAGMENT_FOLLOWED);
	return forward(ctx, pkt);
}

#endif /* SLUICE_FRAGMENTS_H */
