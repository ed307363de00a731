/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The reaper: the sweeper's hand inside the kernel. The sweeper decides from a snapshot that a
 * connection expired; from user space it could only delete the entry, and a preallocated hash
 * hands a deleted element to the next insert at once, while a CPU may still hold it and write
 * a FIN into the next connection. So the sweeper asks the reaper (BPF_PROG_TEST_RUN, one
 * request per connection) to mark the entry DEAD, by compare-and-swap of its word, only if it
 * is still exactly as the snapshot saw it; the datapath treats a DEAD entry as gone and never
 * writes it, and the sweeper deletes it after an RCU grace period, once no CPU holds it.
 */
#ifndef SLUICE_REAP_H
#define SLUICE_REAP_H

#include "conn.h"

static __always_inline int flow_reap(struct sluice_reap_request *request)
{
	struct sluice_tuple key = request->key;
	struct sluice_flow *flow = bpf_map_lookup_elem(&sluice_flows_v5, &key);
	__u32 word, expected = request->word;

	if (!flow)
		return SLUICE_REAP_GONE;
	word = flow_word_read(flow);
	if (word & SLUICE_CONN_F_DEAD)
		return SLUICE_REAP_GONE;
	if (word & SLUICE_CONN_F_REPLACED)
		return SLUICE_REAP_BUSY;
	asm volatile("" ::: "memory");
	/* A packet since the snapshot refreshed it (within SLUICE_FLOW_TOUCH_NS) or changed its
	 * state, or it is another connection: not expired after all, or not this one. */
	if (word != expected || flow->created_ns != request->created_ns || flow->last_seen_ns != request->last_seen_ns ||
	    flow->reply_seen_ns != request->reply_seen_ns)
		return SLUICE_REAP_CHANGED;
	if (__sync_val_compare_and_swap(flow_word(flow), expected, expected | SLUICE_CONN_F_DEAD) != expected)
		return SLUICE_REAP_CHANGED;
	return SLUICE_REAP_MARKED;
}

#endif /* SLUICE_REAP_H */
