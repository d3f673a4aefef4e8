"""Frames over an emulator's TCP socket (QEMU's chardev or the simavr bridge), without
the host client's retries: what the fuzz and robustness tests need to see every reply."""
from __future__ import annotations

import socket
import time

from lpn import protocol as P


class RawLink:
    def __init__(self, url: str):
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = bytearray()

    def send(self, wire: bytes) -> None:
        self.sock.sendall(wire)

    def replies(self, count: int, timeout: float) -> list[bytes]:
        """The next `count` reply frames (encoded, without delimiter); fails if they do not come."""
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            while len(out) < count and b"\x00" in self.pending:
                end = self.pending.index(b"\x00")
                piece = bytes(self.pending[:end])
                del self.pending[:end + 1]
                if piece:
                    out.append(piece)
            if len(out) == count:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the device answered {len(out)} of {count} frames within {timeout} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError("the emulator closed the connection")
            self.pending += data

    def exchange(self, wire: bytes, timeout: float = 5.0) -> bytes:
        """Sends `wire` and returns the one decoded reply it gets."""
        self.send(wire)
        return P.cobs_decode(self.replies(1, timeout)[0])

    def close(self) -> None:
        self.sock.close()
