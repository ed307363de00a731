/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rewrite a packet's addresses and ports, updating IPv4 and TCP/UDP checksums. */
#ifndef SLUICE_REWRITE_H
#define SLUICE_REWRITE_H

#include "counters.h"
#include "csum.h"
#include "packet.h"

/* The longest segment whose partial checksum XDP finishes (a 9216-byte jumbo frame's). */
#define SLUICE_CSUM_MAX_BYTES 9216
#define SLUICE_CSUM_CHUNK 512 /* bpf_csum_diff's most at once */

/*
 * One's-complement sum (unfolded, below 2^63) of the @len bytes at @offset in the packet; -1 if
 * they are not all in it or exceed SLUICE_CSUM_MAX_BYTES. 512-byte chunks through bpf_csum_diff,
 * then 32-bit words, then the last 0-3 bytes (an odd last byte padded with zero, RFC 1071). A
 * global function: the verifier checks its loops once, not once per caller's path.
 */
__attribute__((noinline)) long sluice_segment_sum(struct xdp_md *ctx, __u32 offset, __u32 len)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *cursor = (void *)(long)ctx->data;
	__u64 sum = 0;
	long chunk;
	__u32 i;

	/* Small bounds, so the verifier can prove every access (an L4 header starts within 78 bytes). */
	if (len > SLUICE_CSUM_MAX_BYTES || offset > 255)
		return -1;
	cursor += offset;
	for (i = 0; i < SLUICE_CSUM_MAX_BYTES / SLUICE_CSUM_CHUNK; i++) {
		if (len < SLUICE_CSUM_CHUNK || (void *)(cursor + SLUICE_CSUM_CHUNK) > data_end)
			break;
		chunk = bpf_csum_diff(0, 0, (__be32 *)cursor, SLUICE_CSUM_CHUNK, 0);
		if (chunk < 0)
			return -1;
		sum += (__u32)chunk;
		cursor += SLUICE_CSUM_CHUNK;
		len -= SLUICE_CSUM_CHUNK;
	}
	for (i = 0; i < SLUICE_CSUM_CHUNK / 4; i++) {
		if (len < 4 || (void *)(cursor + 4) > data_end)
			break;
		sum += *(__u32 *)cursor;
		cursor += 4;
		len -= 4;
	}
	if (len >= 2 && (void *)(cursor + 2) <= data_end) {
		sum += *(__u16 *)cursor;
		cursor += 2;
		len -= 2;
	}
	if (len == 1 && (void *)(cursor + 1) <= data_end) {
		sum += *cursor; /* the high byte of a zero-padded word, in memory order */
		len = 0;
	}
	return len == 0 ? (long)(sum & 0x7fffffffffffffffULL) : -1;
}

/*
 * A partial checksum (see csum_pseudo_header) finished as the NIC would have, before it is
 * rewritten: an RFC 1624 update of a pseudo-header sum is wrong, and the frame leaves through
 * XDP with no note that its checksum is yet to be done. Returns 0, or -1 if the segment is too
 * long to finish here. Costs a sum over the segment, only for such packets.
 */
static __always_inline int finish_partial_checksum(struct xdp_md *ctx, struct packet *pkt)
{
	struct iphdr *ip = pkt->ip;
	__u32 header_len = (ip->ihl & 0x0f) * 4;
	__u16 l4_len = bpf_ntohs(ip->tot_len) - header_len;
	__u16 check = *pkt->l4_check;
	long sum;

	/* A fragment's length is not the datagram's, and fragments never carry partial checksums. */
	if (pkt->first_fragment || check != csum_pseudo_header(ip->saddr, ip->daddr, ip->protocol, l4_len))
		return 0;
	sum = sluice_segment_sum(ctx, (__u32)((void *)pkt->l4_ports - (void *)(long)ctx->data), l4_len);
	if (sum < 0)
		return -1;
	check = (__u16)~csum_fold64((__u64)sum);
	if (ip->protocol == IPPROTO_UDP && check == 0)
		check = 0xffff;
	*pkt->l4_check = check;
	count(SLUICE_CTR_PARTIAL_CHECKSUM_FINISHED);
	return 0;
}

static __always_inline void rewrite_tuple(struct packet *pkt, __be32 saddr, __be32 daddr,
					  __be16 sport, __be16 dport)
{
	struct iphdr *ip = pkt->ip;
	__u64 address_delta = csum_delta32(ip->saddr, saddr) + csum_delta32(ip->daddr, daddr);
	__u16 l4_check = *pkt->l4_check;

	ip->check = csum_apply(ip->check, address_delta);

	/* A UDP checksum of zero means "none": leave it so. A computed zero
	 * is sent as 0xffff (RFC 768). */
	if (pkt->tuple.protocol == IPPROTO_TCP || l4_check != 0) {
		__u64 l4_delta = address_delta +
				 csum_delta16(pkt->l4_ports[0], sport) +
				 csum_delta16(pkt->l4_ports[1], dport);

		l4_check = csum_apply(l4_check, l4_delta);
		if (pkt->tuple.protocol == IPPROTO_UDP && l4_check == 0)
			l4_check = 0xffff;
		*pkt->l4_check = l4_check;
	}
	ip->saddr = saddr;
	ip->daddr = daddr;
	pkt->l4_ports[0] = sport;
	pkt->l4_ports[1] = dport;
}

#endif /* SLUICE_REWRITE_H */
