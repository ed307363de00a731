// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sluice's XDP program: L4 load balancing (fullnat/dnat) with Maglev.
 * The per-packet path is lib/process.h.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/process.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	return sluice_process(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
