#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sends COUNT datagrams to VIP:PORT, each from a new source port; prints who answered."""
import socket
import sys

vip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.sendto(f"query-{i}".encode(), (vip, port))
    try:
        data, peer = sock.recvfrom(2048)
        print(f"{data.decode().split(':')[0]} (reply from {peer[0]}:{peer[1]})")
    except socket.timeout:
        print("timeout")
    sock.close()
