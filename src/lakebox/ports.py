"""A free TCP port on loopback, for the servers lakebox starts itself (Spark's master and
workers, the bench's `lakebox serve` and Pushgateway) and for the tests' servers."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just handed out and took back: free now, as good as it gets without
    handing the bound socket to the server."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def can_listen(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR, as servers set it: a port
    whose old connections wait out TIME_WAIT is free; one a process still listens on is not."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
