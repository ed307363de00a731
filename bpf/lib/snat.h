/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SNAT binding for a new fullnat connection, and the slots that hold fullnat reverse halves
 * (struct sluice_snat_slot in sluice_abi.h). Pick an SNAT address, then probe ports from a
 * hashed start by a per-connection stride. A port is claimed by claiming a slot of the pair its
 * reply tuple (backend -> SNAT address:port) hashes to, with a compare-and-swap of the slot's
 * owner from 0, and no other claim of the tuple in the pair: so two connections never share
 * (SNAT address, port, backend). A pair taken by other tuples sends the claimant on to its
 * next port. Ports come back only when the sweeper frees an expired connection's slot.
 */
#ifndef SLUICE_SNAT_H
#define SLUICE_SNAT_H

#include "counters.h"
#include "maglev.h"

#define E2BIG 7
#define EEXIST 17

/* The first slot of a reply tuple's pair: a tuple may live in either slot of its pair (two
 * choices: a tuple whose first slot is taken by another still finds room). A fixed seed (a
 * tool reading pinned maps needs no other); the ports in it are chosen by the seeded flow hash.
 * Mirrored by SnatSlotTable.cs. */
static __always_inline __u32 snat_pair_index(const struct sluice_tuple *reply)
{
	return jhash_3words(reply->saddr, reply->daddr, (((__u32)reply->sport << 16) | reply->dport) ^ reply->protocol,
			    SLUICE_SNAT_SLOT_SEED) &
	       load_config.snat_slot_mask & ~1U;
}

static __always_inline struct sluice_snat_slot *snat_slot_at(__u32 index)
{
	return bpf_map_lookup_elem(&sluice_snat_v5, &index);
}

static __always_inline int slot_holds(const struct sluice_snat_slot *slot, const struct sluice_tuple *reply)
{
	return slot->key.saddr == reply->saddr && slot->key.daddr == reply->daddr && slot->key.sport == reply->sport &&
	       slot->key.dport == reply->dport && slot->key.protocol == reply->protocol;
}

/* An owner that names a connection: not free, not being written, not retired. */
static __always_inline int owner_is_live(__u64 owner)
{
	return owner != 0 && owner < SLUICE_SLOT_RETIRED;
}

/* @slot, if it is live and holds @reply; *owner: its owner as read before the key. */
static __always_inline struct sluice_snat_slot *slot_if_holds(struct sluice_snat_slot *slot,
							      const struct sluice_tuple *reply, __u64 *owner)
{
	if (!slot)
		return 0;
	*owner = slot->owner;
	if (!owner_is_live(*owner))
		return 0;
	asm volatile("" ::: "memory"); /* owner first, then the key (x86 keeps loads in order) */
	if (!slot_holds(slot, reply))
		return 0;
	return slot;
}

/* The live reverse half under @reply, or NULL. *owner: the connection's created_ns as read
 * before the fields (a caller that copies fields checks it again after: the slot may have been
 * freed and claimed anew meanwhile). */
static __always_inline struct sluice_snat_slot *snat_reverse_half(const struct sluice_tuple *reply, __u64 *owner)
{
	__u32 index = snat_pair_index(reply);
	struct sluice_snat_slot *slot = slot_if_holds(snat_slot_at(index), reply, owner);

	if (slot)
		return slot;
	return slot_if_holds(snat_slot_at(index | 1), reply, owner);
}

/* Whether @address is one of the SNAT addresses: replies to it are fullnat replies only (a
 * dnat connection a spoofed client opened from it must never take them). */
static __always_inline int is_snat_address(__be32 address)
{
	__u32 zero = 0, i;
	struct sluice_config *config = bpf_map_lookup_elem(&sluice_config_v5, &zero);

	if (!config)
		return 0;
	for (i = 0; i < SLUICE_MAX_SNAT_ADDRESSES; i++) {
		if (i >= config->snat_address_count)
			break;
		if (config->snat_addresses[i] == address)
			return 1;
	}
	return 0;
}

/* Gives back a slot this CPU claimed moments ago (the connection it was for did not open). */
static __always_inline void snat_release(struct sluice_snat_slot *slot, __u64 created_ns)
{
	__sync_val_compare_and_swap(&slot->owner, created_ns, 0);
}

/* Whether the other slot of the pair holds @reply, or may be about to (being written): then
 * @reply is taken, and claiming it in this slot too would give one port to two connections.
 * A retired slot's tuple stays taken until the slot is freed: a reply to its dead connection
 * may still be in flight, and must not reach a new owner of the port. */
static __always_inline int pair_conflicts(const struct sluice_snat_slot *other, const struct sluice_tuple *reply)
{
	__u64 owner;

	if (!other)
		return 1;
	owner = other->owner;
	if (owner == SLUICE_SLOT_WRITING)
		return 1;
	asm volatile("" ::: "memory");
	return owner != 0 && slot_holds(other, reply);
}

/* Claims a slot of @reply's pair for a new connection (client @client, opened at @now) and
 * fills it. The compare-and-swap makes a slot one CPU's; checking the other slot after it
 * (full barrier between) makes the tuple one connection's: of two CPUs claiming one tuple in
 * both slots at once, each sees the other's and both give up. Returns the slot's index, or -1.
 * A global function: the verifier checks it once, not in each of up to 32 probes on every path. */
__attribute__((noinline)) long sluice_snat_claim_slot(const struct sluice_tuple *reply, const struct sluice_tuple *client,
						      const struct sluice_flow *flow, __u64 now)
{
	__u32 index, claimed;
	struct sluice_snat_slot *first, *second, *slot;

	if (!reply || !client || !flow)
		return -1;
	index = snat_pair_index(reply);
	first = snat_slot_at(index);
	second = snat_slot_at(index | 1);
	if (!first || !second)
		return -1;
	if (first->owner == 0 && __sync_val_compare_and_swap(&first->owner, 0, SLUICE_SLOT_WRITING) == 0) {
		slot = first;
		claimed = index;
		if (pair_conflicts(second, reply)) {
			__sync_lock_test_and_set(&first->owner, 0);
			return -1;
		}
	} else if (second->owner == 0 && !pair_conflicts(first, reply) &&
		   __sync_val_compare_and_swap(&second->owner, 0, SLUICE_SLOT_WRITING) == 0) {
		slot = second;
		claimed = index | 1;
		if (pair_conflicts(first, reply)) {
			__sync_lock_test_and_set(&second->owner, 0);
			return -1;
		}
	} else {
		return -1;
	}
	slot->key = *reply;
	slot->saddr = client->daddr;
	slot->daddr = client->saddr;
	slot->sport = client->dport;
	slot->dport = client->sport;
	slot->flags = 0;
	slot->service_id = flow->service_id;
	slot->backend_id = flow->backend_id;
	slot->backend_isn = 0;
	slot->last_seen_ns = now;
	/* Published last: a reader that sees the owner sees the fields. */
	__sync_lock_test_and_set(&slot->owner, now);
	return claimed;
}

/* sluice_snat_claim_slot for inline callers: the claimed slot, or 0. */
static __always_inline struct sluice_snat_slot *snat_claim_slot(const struct sluice_tuple *reply,
								const struct sluice_tuple *client,
								const struct sluice_flow *flow, __u64 now)
{
	long index = sluice_snat_claim_slot(reply, client, flow, now);

	return index < 0 ? 0 : snat_slot_at((__u32)index);
}

/* Returns SLUICE_DROP_NONE with flow->snat_* filled and *claimed the connection's slot, else
 * the drop reason. @salt moves the start for a client that reuses its port (a SYN's
 * sequence number), so it does not walk the same ports again. */
static __always_inline enum sluice_drop_reason
snat_claim(const struct sluice_tuple *client, struct sluice_flow *flow, __u32 salt, __u64 now,
	   struct sluice_snat_slot **claimed)
{
	__u32 zero = 0;
	struct sluice_config *config = bpf_map_lookup_elem(&sluice_config_v5, &zero);
	__u32 address_count, address_index, range, start, step, port, probes, i, hash;
	struct sluice_tuple reply = {};
	struct sluice_snat_slot *slot;
	__be32 snat_address;

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
		slot = snat_claim_slot(&reply, client, flow, now);
		if (slot) {
			flow->snat_address = snat_address;
			flow->snat_port = reply.dport;
			*claimed = slot;
			return SLUICE_DROP_NONE;
		}
		count(SLUICE_CTR_SNAT_PROBE_COLLISION);
		port += step;
		if (port >= range)
			port -= range;
	}
	return SLUICE_DROP_SNAT_EXHAUSTED;
}

#endif /* SLUICE_SNAT_H */
