"""Loopback ports for tests that start servers or need one nobody answers on."""

import socket


def free_port() -> int:
    """A loopback port that nobody listens on right now (the kernel picked it, then we let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
