/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragments (as Cilium does): a datagram's first fragment carries the ports, so it is balanced
 * (or reverse-translated) like any packet, and the addresses it was rewritten to are remembered
 * under (sender, receiver, IP id, protocol); each following fragment, which carries no ports,
 * gets the same addresses. Each translated datagram also gets a fresh IP id (one counter): the
 * receiver reassembles by (source, destination, id, protocol), and after SNAT many clients' ids
 * meet at one (SNAT address, backend). Two datagrams arriving under one key at once (clients
 * behind one NAT, or a spoofed first fragment) make it ambiguous: both datagrams' following
 * fragments are dropped rather than guessed. The L4 checksum, in the first fragment, covers the
 * whole datagram: its incremental update there is right for the reassembled one. A following fragment whose
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

/* Sets the IP id of the packet (with the header checksum). */
static __always_inline void set_ip_id(struct iphdr *ip, __be16 id)
{
	ip->check = csum_apply(ip->check, csum_delta16(ip->id, id));
	ip->id = id;
}

/* After a first fragment was rewritten: a fresh id for its datagram, and its following fragments
 * get the same addresses and id. */
static __always_inline void remember_fragments(struct packet *pkt, __u64 now)
{
	struct sluice_fragment_key key = {};
	struct sluice_fragment_value value = {}, *existing;
	__u32 zero = 0, *next;

	if (!pkt->first_fragment)
		return;
	next = bpf_map_lookup_elem(&sluice_fragment_ids_v5, &zero);
	if (!next)
		return;
	key.saddr = pkt->tuple.saddr;
	key.daddr = pkt->tuple.daddr;
	key.id = pkt->ip->id;
	key.protocol = pkt->tuple.protocol;
	value.saddr = pkt->ip->saddr;
	value.daddr = pkt->ip->daddr;
	value.id = bpf_htons((__u16)__sync_fetch_and_add(next, 1));
	value.seen_ns = now;
	set_ip_id(pkt->ip, value.id);
	if (bpf_map_update_elem(&sluice_fragments_v5, &key, &value, BPF_NOEXIST) == 0)
		return;
	existing = bpf_map_lookup_elem(&sluice_fragments_v5, &key);
	if (existing && now - existing->seen_ns <= SLUICE_FRAGMENT_TIMEOUT_NS)
		existing->ambiguous = 1; /* another datagram under this key still in flight */
	else
		bpf_map_update_elem(&sluice_fragments_v5, &key, &value, BPF_ANY);
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
	value = bpf_map_lookup_elem(&sluice_fragments_v5, &key);
	if (!value || now - value->seen_ns > SLUICE_FRAGMENT_TIMEOUT_NS)
		return -1;
	if (value->ambiguous)
		return drop(SLUICE_DROP_FRAGMENT);
	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (ip->ttl <= 1)
		return drop(SLUICE_DROP_TTL_EXCEEDED);
	ip->check = csum_apply(ip->check, csum_delta32(ip->saddr, value->saddr) + csum_delta32(ip->daddr, value->daddr));
	ip->saddr = value->saddr;
	ip->daddr = value->daddr;
	set_ip_id(ip, value->id);
	count(SLUICE_CTR_FRAGMENT_FOLLOWED);
	return forward(ctx, pkt);
}

#endif /* SLUICE_FRAGMENTS_H */
