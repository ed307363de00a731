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

#endif /* SLUICE_CSUM_H */
