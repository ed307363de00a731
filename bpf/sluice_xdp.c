// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sluice's XDP program: L4 load balancing (fullnat/dnat) with Maglev.
 * The per-packet path is lib/process.h; the sweeper's reaper, lib/reap.h.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/process.h"
#include "lib/reap.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	return sluice_process(ctx);
}

/* Run by the control plane's sweeper (lib/reap.h); never attached. */
SEC("syscall")
int sluice_reap(struct sluice_reap_request *request)
{
	return flow_reap(request);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
