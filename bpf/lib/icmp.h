/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP the datapath answers itself: echo requests to a VIP (as Katran does), rate-limited per
 * CPU (RFC 1812 4.3.2.8). Time Exceeded is the kernel's to send (balancer.h passes it TTL <= 1).
 */
#ifndef SLUICE_ICMP_H
#define SLUICE_ICMP_H

#include "counters.h"
#include "csum.h"
#include "forward.h"
#include "packet.h"

#define ICMP_ECHO_REPLY_TYPE 0
#define ICMP_ECHO_REQUEST_TYPE 8
#define SLUICE_ICMP_TTL 64

/* Takes a token from this CPU's bucket (refilled at SLUICE_ICMP_PER_SECOND, up to SLUICE_ICMP_BURST). */
static __always_inline int icmp_token(__u64 now)
{
	__u32 zero = 0;
	struct sluice_icmp_bucket *bucket = bpf_map_lookup_elem(&sluice_icmp_bucket_v4, &zero);
	__u64 refill;

	if (!bucket)
		return 0;
	refill = (now - bucket->refilled_ns) * SLUICE_ICMP_PER_SECOND / 1000000000ULL;
	if (refill > 0) {
		bucket->tokens = bucket->tokens + refill > SLUICE_ICMP_BURST ? SLUICE_ICMP_BURST : bucket->tokens + refill;
		bucket->refilled_ns = now;
	}
	if (bucket->tokens == 0)
		return 0;
	bucket->tokens -= 1;
	return 1;
}

/* An echo request to a VIP, turned into its reply in place and routed back to the sender. */
static __always_inline int echo_reply(struct xdp_md *ctx, struct packet *pkt)
{
	struct iphdr *ip = pkt->ip;
	struct icmphdr *icmp = pkt->icmp;
	__be32 sender = ip->saddr;
	__u16 old_word, new_word;

	if (!ip_checksum_valid(pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (!icmp_token(bpf_ktime_get_coarse_ns()))
		return drop(SLUICE_DROP_ICMP_RATE_LIMITED);
	/* Type 8 -> 0 in the ICMP checksum (the first 16-bit word: type, code). */
	old_word = *(__u16 *)icmp;
	icmp->type = ICMP_ECHO_REPLY_TYPE;
	new_word = *(__u16 *)icmp;
	icmp->checksum = csum_apply(icmp->checksum, csum_delta16(old_word, new_word));
	/* RFC 1624's update gives +0 when the rest sums to +0 (an all-zero reply); -0 is right
	 * then, and as right as +0 otherwise. */
	if (icmp->checksum == 0)
		icmp->checksum = 0xffff;
	/* A fresh TTL (the word of TTL and protocol); swapping the addresses leaves the sum as is.
	 * forward() decrements it like any packet it routes. */
	old_word = *(__u16 *)&ip->ttl;
	ip->ttl = SLUICE_ICMP_TTL + 1;
	new_word = *(__u16 *)&ip->ttl;
	ip->check = csum_apply(ip->check, csum_delta16(old_word, new_word));
	ip->saddr = ip->daddr;
	ip->daddr = sender;
	count(SLUICE_CTR_ECHO_REPLIED);
	return forward(ctx, pkt);
}

#endif /* SLUICE_ICMP_H */
