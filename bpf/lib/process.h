/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The whole per-packet path: parse, classify, dispatch. Everything not
 * addressed to a VIP and not a reply of one of our flows passes byte-identical.
 * sluice_xdp.c is its entry point; the benchmarks wrap it (bench/bpf/).
 */
#ifndef SLUICE_PROCESS_H
#define SLUICE_PROCESS_H

#include "balancer.h"
#include "icmp.h"
#include "icmp_error.h"

static __always_inline int sluice_process(struct xdp_md *ctx)
{
	struct packet pkt = {};
	struct sluice_service_key service_key = {};
	const struct sluice_service *service;
	struct sluice_tuple client = {};
	struct sluice_flow *flow;
	struct sluice_snat_slot *nat;
	enum l4_status status;
	__u64 owner;
	__u32 seen = 0;
	int pass_reason;

	count(SLUICE_CTR_RECEIVED);
	pass_reason = parse_ethernet(ctx, &pkt);
	if (!pass_reason)
		pass_reason = resolve_input(ctx, &pkt);
	if (pass_reason) {
		count(pass_reason);
		return XDP_PASS;
	}

	status = parse_l4(&pkt);
	if (status == L4_OK) {
		service_key.vip = pkt.tuple.daddr;
		service_key.port = pkt.tuple.dport;
		service_key.protocol = pkt.tuple.protocol;
		service = bpf_map_lookup_elem(&sluice_services_v5, &service_key);
		if (service)
			return balance_to_backend(ctx, &pkt, service);
		if (is_snat_address(pkt.tuple.daddr)) {
			nat = snat_reverse_half(&pkt.tuple, &owner);
			if (nat)
				return reply_to_client(ctx, &pkt, nat, owner);
		} else {
			flow = dnat_connection_of_reply(&pkt.tuple, &client, &seen);
			if (flow)
				return dnat_reply_to_client(ctx, &pkt, flow, seen, &client);
		}
	}
	if (status == L4_FRAGMENT) {
		int verdict = follow_fragment(ctx, &pkt);

		if (verdict >= 0)
			return verdict;
	}
	if (status == L4_ICMP && pkt.icmp->type != ICMP_ECHO_REQUEST_TYPE) {
		int verdict = translate_icmp_error(ctx, &pkt);

		if (verdict >= 0)
			return verdict;
	}
	if (bpf_map_lookup_elem(&sluice_vips_v5, &pkt.tuple.daddr)) {
		if (status == L4_ICMP && pkt.icmp->type == ICMP_ECHO_REQUEST_TYPE && pkt.icmp->code == 0) {
			if (pkt.first_fragment)
				return drop(SLUICE_DROP_FRAGMENT); /* a fragmented ping: not reassembled here */
			return echo_reply(ctx, &pkt);
		}
		return drop(drop_reason_of(status));
	}
	count(SLUICE_CTR_PASS_NOT_SERVICE);
	return XDP_PASS;
}

#endif /* SLUICE_PROCESS_H */
