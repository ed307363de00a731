/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parsing: Ethernet (+ one 802.1Q tag) -> IPv4 -> TCP/UDP/ICMP header.
 * Parsing never fails the packet by itself: it classifies, and the caller
 * decides (pass what is not ours, drop what is ours but malformed).
 */
#ifndef SLUICE_PACKET_H
#define SLUICE_PACKET_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "sluice_abi.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* ICMP's fixed header (linux/icmp.h pulls in libc headers a BPF build cannot use). */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* echo: identifier, sequence; frag needed: unused, next-hop MTU */
};

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* What the L3/L4 parse found; the values map to a drop reason for VIPs. */
enum l4_status {
	L4_OK = 0,
	L4_ICMP,          /* ICMP, its 8-byte header present: pkt->icmp */
	L4_NOT_TCP_UDP,
	L4_IP_HEADER_INVALID,
	L4_IP_LENGTH_INVALID,
	L4_FRAGMENT,
	L4_TRUNCATED,
};

struct packet {
	void *data_end;
	struct iphdr *ip;
	__sum16 *l4_check;   /* TCP or UDP checksum field */
	union {
		__be16 *l4_ports;     /* source port, then destination port */
		struct icmphdr *icmp; /* L4_ICMP only: its type/code, checksum where ports would be */
	};
	struct sluice_tuple tuple;
	__u32 frame_len;
	__u32 ingress_ifindex; /* ctx->ingress_ifindex, read once (clang may keep a pointer into ctx otherwise) */
	/* .vlan_id: its 802.1Q VLAN id (0: untagged or priority-tagged); .ifindex: the interface the
	 * kernel would see it on (the ingress interface, or its VLAN sub-interface). Laid out as the
	 * VLAN map's key, so it is one: no copy on the stack. */
	struct sluice_vlan input;
	__u8 l3_offset;      /* where the IPv4 header starts: 14, or 18 after an 802.1Q tag */
	__u8 first_fragment; /* a datagram's first fragment (MF set, offset 0): its ports are here, the rest follows */
	__u8 tcp_flags;      /* byte 13 of the TCP header; zero for UDP */
	__be32 tcp_seq;      /* the TCP sequence number as on the wire; zero for UDP */
	__be32 tcp_ack_seq;  /* the TCP acknowledgement number as on the wire; zero for UDP */
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* Find the IPv4 header. Returns 0 if there is one, else the counter that
 * explains why the frame is passed untouched. */
static __always_inline int parse_ethernet(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor = eth + 1;
	__be16 proto;

	pkt->data_end = data_end;
	pkt->frame_len = data_end - data;
	if (cursor > data_end)
		return SLUICE_CTR_PASS_NOT_IPV4;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vlan = cursor;

		cursor = vlan + 1;
		if (cursor > data_end)
			return SLUICE_CTR_PASS_NOT_IPV4;
		proto = vlan->encapsulated_proto;
		pkt->input.vlan_id = bpf_ntohs(vlan->tci) & 0x0fff;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return SLUICE_CTR_PASS_NOT_IPV4;
	if (cursor + sizeof(struct iphdr) > data_end)
		return SLUICE_CTR_PASS_UNPARSED_IPV4;
	pkt->ip = cursor;
	pkt->l3_offset = cursor - data;
	return 0;
}

/* Validate the IPv4 header and find the ports. Fills pkt->tuple. */
static __always_inline enum l4_status parse_l4(struct packet *pkt)
{
	struct iphdr *ip = pkt->ip;
	void *data_end = pkt->data_end;
	__u32 header_len, total_len;
	void *l4;

	pkt->tuple.saddr = ip->saddr;
	pkt->tuple.daddr = ip->daddr;
	pkt->tuple.protocol = ip->protocol;
	if (ip->version != 4 || ip->ihl < 5)
		return L4_IP_HEADER_INVALID;
	header_len = (ip->ihl & 0x0f) * 4;
	total_len = bpf_ntohs(ip->tot_len);
	if (total_len < header_len || (void *)ip + total_len > data_end)
		return L4_IP_LENGTH_INVALID;
	/* A following fragment carries no ports (fragments.h takes it); a first one is parsed whole. */
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return L4_FRAGMENT;
	pkt->first_fragment = !!(ip->frag_off & bpf_htons(IP_MF));

	l4 = (void *)ip + header_len;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || total_len < header_len + sizeof(*tcp))
			return L4_TRUNCATED;
		pkt->l4_check = &tcp->check;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		pkt->tcp_seq = tcp->seq;
		pkt->tcp_ack_seq = tcp->ack_seq;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || total_len < header_len + sizeof(*udp))
			return L4_TRUNCATED;
		pkt->l4_check = &udp->check;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = l4;

		if ((void *)(icmp + 1) > data_end || total_len < header_len + sizeof(*icmp))
			return L4_TRUNCATED;
		pkt->icmp = icmp; /* and l4_ports: not ports, but a FIB lookup reads two words there */
		return L4_ICMP;
	} else {
		return L4_NOT_TCP_UDP;
	}
	/* TCP and UDP both start with source port, destination port. */
	pkt->l4_ports = l4;
	pkt->tuple.sport = pkt->l4_ports[0];
	pkt->tuple.dport = pkt->l4_ports[1];
	return L4_OK;
}

/* Whether the IPv4 header at @l3_offset has a checksum that verifies (RFC 1812 5.2.2): its 16-bit
 * words sum to 0xffff. Options (IHL > 5) add up to 10 more words. A global function: the verifier
 * checks its loop once, not on every caller's path. */
__attribute__((noinline)) int sluice_ip_checksum_valid(struct xdp_md *ctx, __u32 l3_offset)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const __u32 *word;
	__u32 words, i;
	__u64 sum;

	if (l3_offset > ETH_HLEN + 4)
		return 0;
	word = data + l3_offset;
	if ((void *)(word + 5) > data_end)
		return 0;
	words = ((const struct iphdr *)word)->ihl & 0x0f;
	sum = (__u64)word[0] + word[1] + word[2] + word[3] + word[4];
	for (i = 5; i < 15; i++) {
		if (i >= words || (void *)(word + i + 1) > data_end)
			break;
		sum += word[i];
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static __always_inline int ip_checksum_valid(struct xdp_md *ctx, const struct packet *pkt)
{
	return sluice_ip_checksum_valid(ctx, pkt->l3_offset);
}

static __always_inline enum sluice_drop_reason drop_reason_of(enum l4_status status)
{
	switch (status) {
	case L4_ICMP:
	case L4_NOT_TCP_UDP:
		return SLUICE_DROP_UNSUPPORTED_PROTOCOL;
	case L4_IP_HEADER_INVALID:
		return SLUICE_DROP_IP_HEADER_INVALID;
	case L4_IP_LENGTH_INVALID:
		return SLUICE_DROP_IP_LENGTH_INVALID;
	case L4_FRAGMENT:
		return SLUICE_DROP_FRAGMENT;
	case L4_TRUNCATED:
		return SLUICE_DROP_L4_TRUNCATED;
	default:
		return SLUICE_DROP_NO_SERVICE;
	}
}

#endif /* SLUICE_PACKET_H */
