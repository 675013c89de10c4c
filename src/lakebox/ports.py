"""Ports on loopback for the servers lakebox starts itself (Spark's master, the bench's
`lakebox serve` and Pushgateway, the UIs `serve` starts) and for the tests' servers.

A port picked free is free only until someone else binds it: between the pick and the
child's bind another process may take it. A child then either fails to bind (and exits) or,
like Spark with `spark.port.maxRetries`, quietly moves to the next port, and whoever talks
to the picked port reaches a stranger. So a child lakebox picks ports for is started with
`start_listening`: it is ready only once the socket listening on each port belongs to the
child's own process group; on a clash the child is stopped and started again on new ports.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from lakebox.errors import LakeboxError

Holder = Literal["free", "ours", "other", "unknown"]
CLASH_ATTEMPTS = 5
# What a child that could not bind writes to its log (Java, Python, Spark)
_BIND_FAILURES = ("Address already in use", "BindException", "could not bind", "Failed to bind")


class PortTaken(LakeboxError):
    """Another process listens where lakebox's child was to listen."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just handed out and took back: free now, as good as it gets without
    handing the bound socket to the server (see `start_listening` for the rest)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports."""
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_port(host)) not in ports:
            ports.append(port)
    return ports


def can_listen(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR, as servers set it: a port
    whose old connections wait out TIME_WAIT is free; one a process still listens on is not."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def holder(port: int, group: int, host: str = "127.0.0.1") -> Holder:
    """Who listens on host:port: nobody, a process of process group `group` (a child started
    with `start_new_session=True` leads its own group), another process, or "unknown" where
    the OS does not say (no /proc)."""
    inodes = _listening_inodes(port, host)
    if inodes is None:
        return "unknown"
    if not inodes:
        return "free"
    return "ours" if inodes & _group_socket_inodes(group) else "other"


def confirm_listener(process: subprocess.Popen[bytes], port: int, host: str, what: str, hint: str = "") -> bool:
    """True once `process` (a process-group leader) listens on host:port itself; False while
    nobody does yet. Raises PortTaken when another process holds the port, so a health check
    that answers is never taken for the child's own."""
    found = holder(port, process.pid, host)
    if found == "other":
        raise PortTaken(f"port {port} on {host} ({what}) is held by another process, not the one lakebox "
                        f"started{'; ' + hint if hint else ''}")
    return found != "free"


def start_listening(
    start: Callable[[list[int]], subprocess.Popen[bytes]],
    count: int,
    *,
    ready: Callable[[list[int]], bool],
    what: str,
    log: Path,
    timeout: float,
    host: str = "127.0.0.1",
    attempts: int = CLASH_ATTEMPTS,
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Start a child (its own process group) on `count` ports picked free, and return it once
    it listens on every one of them itself and `ready(ports)` holds. When another process took
    a port first (it listens there, or the child exited saying it could not bind), the child
    is stopped and started again on new ports, up to `attempts` times."""
    clashes: list[str] = []
    for _ in range(attempts):
        ports = free_ports(count, host)
        logged = log.stat().st_size if log.exists() else 0  # what earlier attempts wrote
        process = start(ports)
        outcome = _await_listening(process, ports, ready, log, logged, timeout, host)
        if outcome == "ready":
            return process, ports
        stop_group(process)
        if outcome == "timeout":
            raise LakeboxError(f"{what} did not answer on port(s) {ports} within {timeout:.0f} s; see {log}")
        if outcome == "exited":
            raise LakeboxError(f"{what} exited with code {process.returncode} while starting; see {log}")
        clashes.append(f"{outcome} on {ports}")
    raise PortTaken(f"{what}: other processes kept taking the ports picked for it ({'; '.join(clashes)}); see {log}")


def _await_listening(process: subprocess.Popen[bytes], ports: list[int], ready: Callable[[list[int]], bool],
                     log: Path, logged: int, timeout: float, host: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [holder(port, process.pid, host) for port in ports]
        if "other" in held:
            taken = [p for p, h in zip(ports, held, strict=True) if h == "other"]
            return f"port(s) {taken} taken by another process"
        if process.poll() is not None:
            tail = ""
            if log.exists():
                with log.open("rb") as out:
                    out.seek(logged)
                    tail = out.read().decode(errors="replace")
            return "could not bind" if any(s in tail for s in _BIND_FAILURES) else "exited"
        if "free" not in held and _ready(ready, ports):
            return "ready"
        time.sleep(0.2)
    return "timeout"


def _ready(ready: Callable[[list[int]], bool], ports: list[int]) -> bool:
    try:
        return ready(ports)
    except (OSError, ValueError):
        return False  # not answering yet, or not with what `ready` expects


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM a child's process group, SIGKILL it if it is still there after `timeout`."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def _listening_inodes(port: int, host: str) -> set[int] | None:
    """The inodes of the sockets listening on host:port (or on the wildcard address), from
    /proc/net/tcp{,6}; None without /proc."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    wanted = _addresses(host) | {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
    inodes: set[int] = set()
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            if _proc_address(address) in wanted:
                inodes.add(int(fields[9]))
    return inodes


def _addresses(host: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses a host name or address stands for ("localhost": 127.0.0.1 and ::1)."""
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        found = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in socket.getaddrinfo(host, None)}
        return {a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a for a in found}


def _proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp's address: 32-bit words in host (little-endian) order; a v4-mapped v6
    address as its v4 address."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _group_socket_inodes(group: int) -> set[int]:
    """The inodes of the sockets open in the processes of process group `group`."""
    inodes: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != group:  # pgrp: 3rd field after the name
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile, or one we may not look into
    return inodes
