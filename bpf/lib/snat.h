/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SNAT binding for a new fullnat flow: pick an SNAT address by flow hash,
 * then probe ports from a hashed start; the first port whose reply tuple is
 * free wins, claimed atomically with BPF_NOEXIST. The reply tuple includes
 * the backend, so each (SNAT address, backend) pair has its own port space.
 */
#ifndef SLUICE_SNAT_H
#define SLUICE_SNAT_H

#include "counters.h"
#include "maglev.h"

/* Returns 0 and fills flow->snat_* on success, else the drop reason. */
static __always_inline enum sluice_drop_reason
snat_allocate(const struct sluice_tuple *client, const struct sluice_backend *backend,
	      __u32 hash, __u32 salt, struct sluice_flow *flow, const struct sluice_nat *reverse, __u64 now)
{
	struct sluice_nat *held;
	__u32 zero = 0;
	struct sluice_config *config = bpf_map_lookup_elem(&sluice_config_v2, &zero);
	__u32 address_count, address_index, range, start, step, port, probes, i;
	struct sluice_tuple reply = {};
	__be32 snat_address;

	if (!config || config->snat_address_count == 0)
		return SLUICE_DROP_NO_SNAT_ADDRESS;
	address_count = config->snat_address_count;
	if (address_count > SLUICE_MAX_SNAT_ADDRESSES)
		address_count = SLUICE_MAX_SNAT_ADDRESSES;
	address_index = hash % address_count;
	/* Keep clang from merging the mask into the modulo: the verifier needs it. */
	asm volatile("" : "+r"(address_index));
	snat_address = config->snat_addresses[address_index & (SLUICE_MAX_SNAT_ADDRESSES - 1)];
	if (snat_address == 0)
		return SLUICE_DROP_NO_SNAT_ADDRESS;

	range = (__u32)load_config.snat_port_max - load_config.snat_port_min + 1;
	/* The salt (a SYN's initial sequence number) moves the start for a client that
	 * reuses its port, so it does not probe the same run of ports again. */
	start = jhash_2words(hash ^ salt, flow->backend_id, load_config.flow_hash_seed) % range;
	/* Double hashing: each flow steps through the range by its own stride. With
	 * linear probing, runs of taken ports grow into each other, and because every
	 * probe's lookup marks the entry it meets as recently used, the LRU never
	 * thins a run out: runs reached the probe limit at 10% occupancy. */
	step = range > 1 ? 1 + jhash_2words(hash ^ salt, flow->backend_id, load_config.flow_hash_seed + 1) % (range - 1) : 1;
	port = start;
	probes = load_config.snat_probes;

	reply.saddr = backend->address;
	reply.daddr = snat_address;
	reply.sport = backend->port;
	reply.protocol = client->protocol;
	for (i = 0; i < SLUICE_MAX_SNAT_PROBES; i++) {
		if (i >= probes)
			break;
		reply.dport = bpf_htons(load_config.snat_port_min + port);
		port += step;
		if (port >= range)
			port -= range;
		/* Look before claiming: a failed BPF_NOEXIST insert into a full LRU map
		 * still evicts an entry (someone else's NAT), and costs more than a lookup. */
		held = bpf_map_lookup_elem(&sluice_nat_v2, &reply);
		if (!held) {
			if (bpf_map_update_elem(&sluice_nat_v2, &reply, reverse, BPF_NOEXIST) == 0) {
				flow->snat_address = snat_address;
				flow->snat_port = reply.dport;
				return SLUICE_DROP_NONE;
			}
		} else if ((held->flags & SLUICE_NAT_F_CLOSING) && now - held->closed_ns > SLUICE_SNAT_HOLD_NS &&
			   bpf_map_update_elem(&sluice_nat_v2, &reply, reverse, BPF_EXIST) == 0) {
			/* Taken by a flow closed long enough ago: free again. */
			count(SLUICE_CTR_SNAT_PORT_REUSED);
			flow->snat_address = snat_address;
			flow->snat_port = reply.dport;
			return SLUICE_DROP_NONE;
		}
		count(SLUICE_CTR_SNAT_PROBE_COLLISION);
	}
	return SLUICE_DROP_SNAT_EXHAUSTED;
}

#endif /* SLUICE_SNAT_H */
