/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bob Jenkins' lookup3 final mix as in the kernel's <linux/jhash.h>.
 * The control plane has a bit-exact copy (FlowHash.cs) so it can predict
 * which backend the datapath picks; change both or neither.
 */
#ifndef SLUICE_JHASH_H
#define SLUICE_JHASH_H

#include <linux/types.h>

#define SLUICE_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_nwords(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	return jhash_nwords(a, b, c, initval + SLUICE_JHASH_INITVAL + (3 << 2));
}

static __always_inline __u32 jhash_2words(__u32 a, __u32 b, __u32 initval)
{
	return jhash_nwords(a, b, 0, initval + SLUICE_JHASH_INITVAL + (2 << 2));
}

static __always_inline __u32 jhash_1word(__u32 a, __u32 initval)
{
	return jhash_nwords(a, 0, 0, initval + SLUICE_JHASH_INITVAL + (1 << 2));
}

#endif /* SLUICE_JHASH_H */
