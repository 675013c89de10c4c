"""A child lakebox picks a port for is the one that answers there: when another process
takes the picked port between the pick and the child's bind, lakebox sees a stranger
listening, stops its child and starts it again on new ports, and talks to its own server.

The children here are real HTTP servers in their own process groups; the stranger is a
real listener in the test's process."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from lakebox import ports
from lakebox.errors import LakeboxError
from tests.conftest import QuietHandler, serve_on_loopback

# An HTTP server that says who it is on /whoami. "strict" exits when its port is taken (a
# server that binds with no retries); "moves" quietly takes the next port, as Spark does
# with spark.port.maxRetries.
CHILD = textwrap.dedent("""
    import http.server, sys
    port, token, mode = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]

    class Who(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", str(len(token))); self.end_headers()
            self.wfile.write(token)
        def log_message(self, *args): pass

    for candidate in range(port, port + (16 if mode == "moves" else 1)):
        try:
            server = http.server.HTTPServer(("127.0.0.1", candidate), Who)
            break
        except OSError as exc:
            print(f"could not bind {candidate}: {exc}", flush=True)
    else:
        sys.exit(1)
    server.serve_forever()
""")


class Stranger(QuietHandler):
    def do_GET(self) -> None:
        self.send_json(200, b"<html>someone else</html>", {"Content-Type": "text/html"})


@contextmanager
def stranger_on(port: int) -> Iterator[None]:
    """A listener of this process on `port`: another program that took it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stranger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def whoami(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/whoami", timeout=5) as response:
        return bytes(response.read())


@pytest.mark.parametrize("mode", ["strict", "moves"])
def test_a_port_taken_between_pick_and_bind_is_picked_again(tmp_path: Path, mode: str) -> None:
    """The first port picked is taken by a stranger just before the child starts: the child
    exits (strict) or listens elsewhere (moves); either way lakebox starts it again on a
    new port and the server on the port it returns is its own."""
    log = tmp_path / "child.log"
    tried: list[int] = []
    with ExitStack() as strangers:
        def start(picked: list[int]) -> subprocess.Popen[bytes]:
            tried.append(picked[0])
            if len(tried) == 1:
                strangers.enter_context(stranger_on(picked[0]))
            with log.open("ab") as out:
                return subprocess.Popen([sys.executable, "-c", CHILD, str(picked[0]), "mine", mode], stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

        child, chosen = ports.start_listening(start, 1, ready=lambda p: whoami(p[0]) == b"mine", what="the child",
                                              log=log, timeout=60)
        try:
            assert len(tried) == 2 and chosen == [tried[1]] and chosen[0] != tried[0]
            assert whoami(chosen[0]) == b"mine" and whoami(tried[0]).startswith(b"<html>")
            assert ports.holder(chosen[0], child.pid) == "ours" and ports.holder(tried[0], child.pid) == "other"
        finally:
            ports.stop_group(child)
    assert child.poll() is not None and ports.holder(chosen[0], child.pid) == "free"


def test_ports_that_keep_being_taken_fail_clearly(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    children: list[subprocess.Popen[bytes]] = []
    with ExitStack() as strangers:
        def start(picked: list[int]) -> subprocess.Popen[bytes]:
            strangers.enter_context(stranger_on(picked[0]))
            with log.open("ab") as out:
                children.append(subprocess.Popen([sys.executable, "-c", CHILD, str(picked[0]), "mine", "strict"],
                                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
            return children[-1]

        with pytest.raises(ports.PortTaken, match=r"the child: other processes kept taking the ports .*child\.log"):
            ports.start_listening(start, 1, ready=lambda p: whoami(p[0]) == b"mine", what="the child", log=log,
                                  timeout=60, attempts=3)
    assert len(children) == 3 and all(c.poll() is not None for c in children)  # none left running


def test_a_child_that_fails_for_another_reason_is_not_retried(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    starts: list[int] = []

    def start(picked: list[int]) -> subprocess.Popen[bytes]:
        starts.append(picked[0])
        with log.open("ab") as out:
            return subprocess.Popen([sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    with pytest.raises(LakeboxError, match=r"the child exited with code 3 while starting; see .*child\.log"):
        ports.start_listening(start, 1, ready=lambda p: True, what="the child", log=log, timeout=60)
    assert len(starts) == 1


def test_confirm_listener_tells_the_childs_socket_from_a_strangers(tmp_path: Path) -> None:
    """What `serve` asks before it reports a UI ready: a health check that answers is not
    enough when the answer comes from another process."""
    port = ports.free_port()
    with (tmp_path / "child.log").open("ab") as out:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(port), "mine", "strict"], stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not ports.confirm_listener(child, port, "127.0.0.1", "the child"):
            assert child.poll() is None, (tmp_path / "child.log").read_text()
        assert whoami(port) == b"mine"
    finally:
        ports.stop_group(child)
    with serve_on_loopback(Stranger) as url:
        taken = int(url.rsplit(":", 1)[1])
        with pytest.raises(ports.PortTaken, match=rf"port {taken} on 127.0.0.1 \(mlflow\) is held by another "
                                                  r"process.*--mlflow-port"):
            ports.confirm_listener(child, taken, "127.0.0.1", "mlflow", "choose another with --mlflow-port")


def test_holder_sees_listeners_on_the_wildcard_address() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        assert ports.holder(port, group=0) == "other" and not ports.can_listen(port)
    assert ports.holder(port, group=0) == "free"
