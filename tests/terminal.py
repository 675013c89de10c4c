"""The real `lakebox` command in a pseudo-terminal of a given width, as a person sees it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(*args: str, env: dict[str, str], columns: int = 80,
                    timeout: float = 300) -> tuple[int, str]:
    """(exit code, what the terminal showed, colours and cursor moves removed). stdout and
    stderr both go to the terminal, as in a shell."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child = subprocess.Popen([sys.executable, "-m", "lakebox.cli", *args], stdin=slave, stdout=slave, stderr=slave,
                             env={**env, "COLUMNS": str(columns), "TERM": "xterm"}, cwd=env.get("PWD") or None,
                             close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            child.kill()
            raise TimeoutError(f"lakebox {' '.join(args)} still running after {timeout} s")
        code = child.wait(timeout=30)
    finally:
        os.close(master)
    return code, ANSI.sub("", b"".join(chunks).decode(errors="replace")).replace("\r\n", "\n")
