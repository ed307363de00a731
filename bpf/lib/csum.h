/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
 * Words are summed as loaded from the packet; the one's-complement sum is
 * byte-order independent, so no swapping is needed. 32-bit words are summed
 * into a 64-bit accumulator and folded once at the end.
 */
#ifndef SLUICE_CSUM_H
#define SLUICE_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Delta for replacing 32-bit word @from with @to. */
static __always_inline __u64 csum_delta32(__u32 from, __u32 to)
{
	return (__u64)(__u32)~from + to;
}

/* Delta for replacing 16-bit word @from with @to. */
static __always_inline __u64 csum_delta16(__u16 from, __u16 to)
{
	return (__u64)(__u16)~from + to;
}

static __always_inline __u16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Apply an accumulated @delta to checksum field value @check. */
static __always_inline __u16 csum_apply(__u16 check, __u64 delta)
{
	return (__u16)~csum_fold64((__u64)(__u16)~check + delta);
}

/*
 * The folded IPv4 pseudo-header sum, not complemented: what a TCP/UDP checksum field holds when
 * the packet left a local socket with tx checksum offload on (CHECKSUM_PARTIAL: veth peers,
 * containers), waiting for the NIC to add the segment and complement it. XDP is not told; the
 * field's value gives it away (a complete checksum equal to it by chance is finished to itself).
 */
static __always_inline __u16 csum_pseudo_header(__be32 saddr, __be32 daddr, __u8 protocol, __u16 l4_len)
{
	return csum_fold64((__u64)saddr + daddr + bpf_htons((__u16)protocol) + bpf_htons(l4_len));
}

#endif /* SLUICE_CSUM_H */
