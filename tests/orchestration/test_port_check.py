"""`lakebox serve`'s port check, without starting serve: a port whose last connection waits
out TIME_WAIT is free, one something listens on is refused with the option that moves it."""

from __future__ import annotations

import socket

import pytest

from lakebox.errors import ConfigError
from lakebox.orchestration.serve import Service, check_ports


def _service(port: int) -> Service:
    return Service("dagster", port, ["true"], "/server_info", "--dagster-port")


def test_a_port_in_time_wait_is_free_and_a_listened_one_is_not() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 \\(dagster\\) is taken.*--dagster-port"):
            check_ports("127.0.0.1", [_service(port)])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its port keeps a TIME_WAIT connection
        client.recv(1)
        client.close()
    with socket.socket() as plain, pytest.raises(OSError):  # what the old check did: refused
        plain.bind(("127.0.0.1", port))
    check_ports("127.0.0.1", [_service(port)])  # nothing listens: serve may start
