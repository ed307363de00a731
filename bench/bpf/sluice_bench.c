// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark wrappers for BPF_PROG_TEST_RUN with a large repeat count.
 *
 * The kernel reuses one buffer across repeats, so from the second iteration a
 * program sees its own output. Each wrapper first writes the original headers
 * back (and, for new-flow runs, a fresh client port), then runs the balancer:
 * every iteration takes the path being measured. The floors measure what the
 * wrappers themselves cost. The object carries Sluice's maps unchanged, so the
 * C# library loads and programs it like the real one.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/process.h"
#include "lib/reap.h"

#define BENCH_HEADER_BYTES 64 /* Ethernet + IPv4 + TCP/UDP ports, rounded up */

struct sluice_bench_frame {
	__u8 bytes[BENCH_HEADER_BYTES];
	__u32 vary_source_port; /* 1: a new client port (a new flow) every iteration */
	__u32 sequence;         /* iterations so far (test runs use one CPU) */
	/* Packet rate only: where bench_forward sends frames (no NAT). */
	__u32 forward_ifindex;
	__u8 forward_dmac[6];
	__u8 forward_smac[6];
};

/* Packet rate: frames counted by the sink. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sluice_bench_sink SEC(".maps");

/* A global, not a map: reading it costs no helper call (libbpf puts it in the
 * object's .bss map, which the C# side writes). */
struct sluice_bench_frame bench_frame;

static __always_inline void fix_ip_checksum(void *data, void *data_end)
{
	struct iphdr *ip = data + 14;
	__u16 *word = (void *)ip;
	__u32 sum = 0;
	int i;

	if ((void *)(ip + 1) > data_end)
		return;
	ip->check = 0;
#pragma unroll
	for (i = 0; i < 10; i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (__u16)~sum;
}

static __always_inline int restore_headers(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sluice_bench_frame *frame = &bench_frame;
	__u32 sequence;
	__be16 *source_port;
	__u8 *source_address_low;

	if (data + BENCH_HEADER_BYTES > data_end)
		return -1;
	__builtin_memcpy(data, frame->bytes, BENCH_HEADER_BYTES);
	if (frame->vary_source_port) {
		sequence = ++frame->sequence;
		/* Ethernet 14 + IPv4 20: the L4 source port; the source address's
		 * last byte too, so a million iterations are a million flows.
		 * Checksums are only updated by the balancer, never verified, so
		 * they cost the same whether or not these edits keep them valid. */
		source_port = data + 34;
		*source_port = bpf_htons(1024 + (sequence % 64000));
		source_address_low = data + 29;
		*source_address_low = (__u8)(sequence / 64000);
		/* Keep the IPv4 header checksum right: the kernel paths compared in the
		 * packet-rate part drop frames whose header does not add up. */
		fix_ip_checksum(data, data_end);
	}
	return 0;
}

/* The balancer behind the restoring wrapper; named like the real program so
 * the C# loader finds it. */
SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	if (restore_headers(ctx))
		return XDP_ABORTED;
	return sluice_process(ctx);
}

/* The sweeper's reaper, as in the real object. */
SEC("syscall")
int sluice_reap(struct sluice_reap_request *request)
{
	return flow_reap(request);
}

/* The balancer with no wrapper: how set-up packets (a backend's SYN-ACK) reach it. */
SEC("xdp")
int bench_plain(struct xdp_md *ctx)
{
	return sluice_process(ctx);
}

/* A new flow with hot caches, the way Katran's SYN cost is measured: the same
 * packet every iteration, and the connection the previous iteration created
 * forgotten first, as if it had closed. The figure includes this lookup and the
 * deletes (two for fullnat, one for dnat: one entry per connection). */
SEC("xdp")
int bench_new_flow_hot(struct xdp_md *ctx)
{
	struct sluice_tuple client = {}, reply = {};
	struct sluice_flow *flow;
	__u64 owner;
	struct iphdr *ip;
	__be16 *ports;

	if (restore_headers(ctx))
		return XDP_ABORTED;
	ip = (void *)(long)ctx->data + 14;
	ports = (void *)(long)ctx->data + 34;
	if ((void *)(ports + 2) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	client.saddr = ip->saddr;
	client.daddr = ip->daddr;
	client.sport = ports[0];
	client.dport = ports[1];
	client.protocol = ip->protocol;
	flow = bpf_map_lookup_elem(&sluice_flows_v5, &client);
	if (flow) {
		reply_key_of(flow, &client, &reply);
		if (client.protocol == IPPROTO_TCP && !(flow->flags & SLUICE_CONN_F_ESTABLISHED))
			handshake_add(-1); /* as the sweeper would account for it */
		if (flow->mode == SLUICE_MODE_FULLNAT) {
			struct sluice_snat_slot *slot = snat_reverse_half(&reply, &owner);

			if (slot)
				snat_release(slot, owner);
		}
		bpf_map_delete_elem(&sluice_flows_v5, &client);
	}
	return sluice_process(ctx);
}

/* The floor: the cheapest program that sends a frame back out. */
SEC("xdp")
int bench_xdp_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

/* The wrapper's own cost: restore, then transmit. */
SEC("xdp")
int bench_restore_tx(struct xdp_md *ctx)
{
	if (restore_headers(ctx))
		return XDP_ABORTED;
	return XDP_TX;
}

/* Packet rate: the counting sink on the receiving end. */
SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&sluice_bench_sink, &zero);

	if (count)
		*count += 1;
	return XDP_DROP;
}

/* Packet rate: hands frames to the kernel (and gives a veth the NAPI that XDP_TX from
 * its peer needs), for kernel forwarding, iptables and nftables. */
SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Packet rate: the floor any XDP balancer pays: new MACs and a devmap redirect, no NAT,
 * no lookups. */
SEC("xdp")
int bench_forward(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, bench_frame.forward_dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, bench_frame.forward_smac, ETH_ALEN);
	return bpf_redirect_map(&sluice_tx_ports_v5, bench_frame.forward_ifindex, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
