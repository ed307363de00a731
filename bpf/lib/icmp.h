/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP the datapath answers itself: echo requests to a VIP (as Katran does) and "fragmentation
 * needed" for what it cannot forward whole (RFC 1191, RFC 1812 5.2.7.1), both rate-limited per
 * CPU (RFC 1812 4.3.2.8). Time Exceeded is the kernel's to send (balancer.h passes it TTL <= 1).
 * ICMP errors about connections are translated in icmp_error.h.
 */
#ifndef SLUICE_ICMP_H
#define SLUICE_ICMP_H

#include "counters.h"
#include "csum.h"
#include "forward.h"
#include "packet.h"
#include "rewrite.h"

#define ICMP_ECHO_REPLY_TYPE 0
#define ICMP_ECHO_REQUEST_TYPE 8
#define SLUICE_ICMP_TTL 64

#define ICMP_BUCKET_ECHO 0
#define ICMP_BUCKET_ERRORS 1

/* Takes a token from this CPU's bucket (refilled at SLUICE_ICMP_PER_SECOND, up to SLUICE_ICMP_BURST). */
static __always_inline int icmp_token(__u32 which, __u64 now)
{
	struct sluice_icmp_bucket *bucket = bpf_map_lookup_elem(&sluice_icmp_bucket_v5, &which);
	__u64 elapsed, refill;

	if (!bucket)
		return 0;
	elapsed = now - bucket->refilled_ns;
	if (elapsed > 1000000000ULL)
		elapsed = 1000000000ULL; /* a full bucket anyway; and no overflow below */
	refill = elapsed * SLUICE_ICMP_PER_SECOND / 1000000000ULL;
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

	if (!ip_checksum_valid(ctx, pkt))
		return drop(SLUICE_DROP_IP_CHECKSUM);
	if (!icmp_token(ICMP_BUCKET_ECHO, bpf_ktime_get_coarse_ns()))
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
	return forward_icmp(ctx, pkt);
}

#define ICMP_DEST_UNREACH_TYPE 3
#define ICMP_FRAG_NEEDED_CODE 4
#define IP_DF 0x4000

/* The one's-complement sum of @words 32-bit words at @start, all within the packet (else 0 words). */
static __always_inline __u64 sum_words(const void *start, const void *data_end, __u32 words)
{
	const __u32 *word = start;
	__u64 sum = 0;
	__u32 i;

	for (i = 0; i < 19; i++) {
		if (i >= words || (const void *)(word + i + 1) > data_end)
			break;
		sum += word[i];
	}
	return sum;
}

/*
 * The packet (already rewritten for its next hop) is too big for the egress MTU and has DF set:
 * turned in place into "fragmentation needed" to its sender, from the address it was sent to,
 * quoting its header as sent and the first 8 bytes after it, with the MTU, and routed back.
 */
static __always_inline int frag_needed_to_sender(struct xdp_md *ctx, struct packet *pkt, __u16 mtu)
{
	__be32 sender = pkt->tuple.saddr, receiver = pkt->tuple.daddr;
	__u32 l2;
	__u32 header = (pkt->ip->ihl & 0x0f) * 4;
	__u32 quoted = header + 8, total;
	struct iphdr *outer;
	struct icmphdr *icmp;
	void *data, *data_end;
	long length;
	__u64 sum;

	if (!icmp_token(ICMP_BUCKET_ERRORS, bpf_ktime_get_coarse_ns()))
		return drop(SLUICE_DROP_ICMP_RATE_LIMITED);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > data_end)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	l2 = ((struct ethhdr *)data)->h_proto == bpf_htons(ETH_P_8021Q) ? ETH_HLEN + 4 : ETH_HLEN;
	/* The quoted header as its sender sent it. */
	rewrite_tuple(pkt, pkt->tuple.saddr, pkt->tuple.daddr, pkt->tuple.sport, pkt->tuple.dport);
	if (l2 != ETH_HLEN && l2 != ETH_HLEN + 4)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct iphdr) + sizeof(struct icmphdr))))
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 28 + ETH_HLEN + 4 > data_end)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	if (l2 == ETH_HLEN)
		__builtin_memcpy(data, data + 28, ETH_HLEN);
	else
		__builtin_memcpy(data, data + 28, ETH_HLEN + 4);
	total = sizeof(struct iphdr) + sizeof(struct icmphdr) + quoted;
	length = (long)data_end - (long)data;
	asm volatile("" : "+r"(length)); /* a scalar: clang would fold the pointers into 32-bit arithmetic */
	if (bpf_xdp_adjust_tail(ctx, (int)((long)(l2 + total) - length)))
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2 == ETH_HLEN) {
		outer = data + ETH_HLEN;
	} else {
		outer = data + ETH_HLEN + 4;
	}
	icmp = (void *)(outer + 1);
	if ((void *)(icmp + 1) > data_end)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED);

	icmp->type = ICMP_DEST_UNREACH_TYPE;
	icmp->code = ICMP_FRAG_NEEDED_CODE;
	icmp->checksum = 0;
	icmp->rest = bpf_htonl(mtu);
	sum = sum_words(icmp, data_end, total / 4 - 5);
	icmp->checksum = (__u16)~csum_fold64(sum);

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(total);
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = SLUICE_ICMP_TTL + 1; /* forward() decrements it */
	outer->protocol = IPPROTO_ICMP;
	outer->check = 0;
	outer->saddr = receiver;
	outer->daddr = sender;
	outer->check = (__u16)~csum_fold64(sum_words(outer, data_end, 5));

	pkt->ip = outer;
	pkt->data_end = data_end;
	pkt->icmp = icmp; /* and l4_ports */
	pkt->tuple.protocol = IPPROTO_ICMP;
	count(SLUICE_CTR_FRAG_NEEDED_SENT);
	return forward_icmp(ctx, pkt);
}

/* A rewritten packet longer than its egress MTU allows. */
static __always_inline int too_big(struct xdp_md *ctx, struct packet *pkt, __u16 mtu)
{
	if (pkt->tuple.protocol != IPPROTO_TCP && pkt->tuple.protocol != IPPROTO_UDP)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED); /* our own ICMP: never answered with ICMP */
	if (!(pkt->ip->frag_off & bpf_htons(IP_DF))) {
		/* The kernel may fragment it (XDP cannot): handed over rewritten, MACs and TTL untouched. */
		count(SLUICE_CTR_PASS_TO_FRAGMENT);
		return XDP_PASS;
	}
	if (!pkt->l4_check)
		return drop(SLUICE_DROP_FRAGMENTATION_NEEDED); /* a following fragment with DF: malformed */
	return frag_needed_to_sender(ctx, pkt, mtu);
}

#endif /* SLUICE_ICMP_H */
