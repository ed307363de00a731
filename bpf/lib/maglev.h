/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Choosing a backend for a new flow: flow hash -> the service's Maglev table. */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include "jhash.h"
#include "maps.h"

/* The load-time knobs; the control plane writes them into .rodata. */
const volatile struct sluice_load_config load_config = {
	.flow_hash_seed = 0,
	.snat_port_min = 1024,
	.snat_port_max = 65535,
	.snat_probes = SLUICE_MAX_SNAT_PROBES,
	.handshake_limit = 262144,
	.snat_slot_mask = 2097152 - 1, /* sluice_snat_v5's default size */
	.snat_strides = { [0 ... SLUICE_SNAT_STRIDES - 1] = 1 },
};

/* Hash of the whole 5-tuple, or of the client address only (affinity).
 * Mirrored bit for bit by FlowHash.cs. */
static __always_inline __u32 flow_hash(const struct sluice_tuple *tuple, __u8 service_flags)
{
	if (service_flags & SLUICE_SERVICE_F_SOURCE_AFFINITY)
		return jhash_1word(tuple->saddr, load_config.flow_hash_seed);
	return jhash_3words(tuple->saddr, tuple->daddr,
			    (((__u32)tuple->sport << 16) | tuple->dport) ^ tuple->protocol,
			    load_config.flow_hash_seed);
}

/* The backend id at hash % M in the service's table, or -1 if it has none. */
static __always_inline __s64 maglev_pick(__u32 service_id, __u32 hash)
{
	__u32 slot = 0;
	__u32 *table_size, *backend_id;
	void *table = bpf_map_lookup_elem(&sluice_maglev_v5, &service_id);

	if (!table)
		return -1;
	table_size = bpf_map_lookup_elem(table, &slot);
	if (!table_size || *table_size == 0)
		return -1;
	slot = 1 + hash % *table_size;
	backend_id = bpf_map_lookup_elem(table, &slot);
	if (!backend_id)
		return -1;
	return *backend_id;
}

#endif /* SLUICE_MAGLEV_H */
