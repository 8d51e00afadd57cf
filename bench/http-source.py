#!/usr/bin/env python3
"""A no-disk HTTP source: GET /N answers N bytes from one in-memory buffer. It is the loopback
limit for downloads, as peers/limits/http-sink.py is for uploads.
Usage: http-source.py PORT"""
import socket
import sys
import threading

CHUNK = b"\0" * (1 << 20)


def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return
            data += more
        path = data.split(b" ", 2)[1].decode()
        n = int(path.strip("/") or "0")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        view = memoryview(CHUNK)
        while n > 0:
            k = min(n, len(CHUNK))
            conn.sendall(view[:k])
            n -= k


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
