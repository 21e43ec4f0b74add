"""The least a Python process manager can do at start-up: the start-up benchmark's floor.

``floor.py start [--click] -f PROCFILE [-t SECONDS]`` runs each Procfile line through ``sh -c`` in
its own session (``subprocess.Popen``, as procman and honcho do), relays the output with an
``HH:MM:SS name | `` prefix, and on SIGINT/SIGTERM kills every group and exits. Nothing else: no
checks, no .env, no colours, no control socket. With ``--click`` it first imports click, as any
manager built on click must, procman included. The interpreter's start, the import and the 50
spawns are what every Python manager pays; the time over this floor is the manager's own.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if "--click" in argv:
        import click  # noqa: F401 (its import time is the point)
    procfile = argv[argv.index("-f") + 1]
    with open(procfile, encoding="utf-8") as lines:
        commands = [line.split(":", 1) for line in lines if ":" in line]
    selector = selectors.DefaultSelector()
    children = []
    for name, command in commands:
        read_fd, write_fd = os.pipe()
        child = subprocess.Popen(
            ["/bin/sh", "-c", command.strip()],
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
        os.close(write_fd)
        children.append(child)
        selector.register(read_fd, selectors.EVENT_READ, name.strip().encode())

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for key, _ in selector.select():
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fd)
                continue
            prefix = time.strftime("%H:%M:%S ").encode() + key.data + b" | "
            os.write(1, b"".join(prefix + line + b"\n" for line in data.splitlines()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:]))
