#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A demo backend: HTTP on TCP 8080 and an echo on UDP 5353, both answering with its name."""
import http.server
import socket
import sys
import threading

name, address = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 5353))
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(f"{name}:".encode() + data, peer)


threading.Thread(target=udp_echo, daemon=True).start()
http.server.ThreadingHTTPServer((address, 8080), Handler).serve_forever()
