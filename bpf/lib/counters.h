/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counter updates: in place, never through a map update. */
#ifndef SLUICE_COUNTERS_H
#define SLUICE_COUNTERS_H

#include "maps.h"

static __always_inline void count(enum sluice_counter counter)
{
	__u32 key = counter;
	__u64 *value = bpf_map_lookup_elem(&sluice_counters_v5, &key);

	if (value)
		*value += 1;
}

/* Count the drop under its reason and return XDP_DROP. */
static __always_inline int drop(enum sluice_drop_reason reason)
{
	__u32 key = reason;
	__u64 *value = bpf_map_lookup_elem(&sluice_drops_v5, &key);

	if (value)
		*value += 1;
	count(SLUICE_CTR_DROPPED);
	return XDP_DROP;
}

static __always_inline void count_traffic(void *map, __u32 id, __u32 bytes,
					  int is_new_flow, int is_reply)
{
	struct sluice_traffic_counters *traffic = bpf_map_lookup_elem(map, &id);

	if (!traffic)
		return;
	if (is_reply) {
		traffic->reply_packets += 1;
		traffic->reply_bytes += bytes;
		return;
	}
	traffic->packets += 1;
	traffic->bytes += bytes;
	traffic->new_flows += is_new_flow;
}

#endif /* SLUICE_COUNTERS_H */
