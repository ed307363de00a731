/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SNAT binding for a new fullnat connection: pick an SNAT address, then probe ports
 * from a hashed start by a per-connection stride. A port is claimed by inserting the
 * connection's reverse half under its reply tuple with BPF_NOEXIST: exactly one CPU
 * can win a key, so two connections never share (SNAT address, port, backend). The
 * reply tuple includes the backend, so each (SNAT address, backend) pair has its own
 * port space. Ports come back only when the sweeper deletes an expired connection.
 */
#ifndef SLUICE_SNAT_H
#define SLUICE_SNAT_H

#include "counters.h"
#include "maglev.h"

#define E2BIG 7
#define EEXIST 17

/* Returns SLUICE_DROP_NONE with flow->snat_* filled and @reverse inserted, else the
 * drop reason. @salt moves the start for a client that reuses its port (a SYN's
 * sequence number), so it does not walk the same ports again. */
static __always_inline enum sluice_drop_reason
snat_claim(const struct sluice_tuple *client, struct sluice_flow *flow, const struct sluice_nat *reverse, __u32 salt)
{
	__u32 zero = 0;
	struct sluice_config *config = bpf_map_lookup_elem(&sluice_config_v4, &zero);
	__u32 address_count, address_index, range, start, step, port, probes, i, hash;
	struct sluice_tuple reply = {};
	__be32 snat_address;
	long rc;

	if (!config || config->snat_address_count == 0)
		return SLUICE_DROP_NO_SNAT_ADDRESS;
	/* The whole tuple, even for a service with client affinity: every connection of
	 * one client must not probe the same ports. */
	hash = flow_hash(client, 0) ^ salt;
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
	start = jhash_2words(hash, flow->backend_id, load_config.flow_hash_seed) % range;
	/* Double hashing: runs of taken ports cannot grow into each other. Strides come
	 * from a table of values coprime with the range, so probes never cycle early. */
	step = load_config.snat_strides[jhash_2words(hash, flow->backend_id, load_config.flow_hash_seed + 1) &
					(SLUICE_SNAT_STRIDES - 1)];
	if (step == 0 || step > range)
		step = 1;
	port = start;
	probes = load_config.snat_probes;

	reply.saddr = flow->backend_address;
	reply.daddr = snat_address;
	reply.sport = flow->backend_port;
	reply.protocol = client->protocol;
	for (i = 0; i < SLUICE_MAX_SNAT_PROBES; i++) {
		if (i >= probes)
			break;
		reply.dport = bpf_htons(load_config.snat_port_min + port);
		rc = bpf_map_update_elem(&sluice_nat_v4, &reply, reverse, BPF_NOEXIST);
		if (rc == 0) {
			flow->snat_address = snat_address;
			flow->snat_port = reply.dport;
			return SLUICE_DROP_NONE;
		}
		if (rc == -E2BIG)
			return SLUICE_DROP_CONNECTION_TABLE_FULL;
		count(SLUICE_CTR_SNAT_PROBE_COLLISION);
		port += step;
		if (port >= range)
			port -= range;
	}
	return SLUICE_DROP_SNAT_EXHAUSTED;
}

#endif /* SLUICE_SNAT_H */
