/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rewrite a packet's addresses and ports, updating IPv4 and TCP/UDP checksums. */
#ifndef SLUICE_REWRITE_H
#define SLUICE_REWRITE_H

#include "csum.h"
#include "packet.h"

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
