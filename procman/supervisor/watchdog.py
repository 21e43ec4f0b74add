"""A guard that outlives procman: if procman dies without stopping its children (SIGKILL, a crash),
the guard kills their process groups.

The guard is a few lines of ``sh`` (about 1 MB resident, where a second Python would cost 10 MB). It
reads ``+PGID`` and ``-PGID`` lines from a pipe only procman holds; ``done`` means procman stopped
everything itself. End of file without ``done`` means procman is gone: the guard sends SIGTERM to
every group it was told about and to every process whose environment carries this run's
``PROCMAN_RUN_ID`` (what left its group: daemons, ``setsid``), waits up to a second, then sends
SIGKILL to the groups and, three times 50 ms apart (for what forked meanwhile), to the processes
carrying the run id. All within about 1.3 s. Until then the guard only waits on its pipe.
"""

from __future__ import annotations

import os
import subprocess

_GUARD_SCRIPT = r"""
trap '' INT TERM HUP PIPE
tag="PROCMAN_RUN_ID=$1"
groups=
while IFS= read -r line; do
  case $line in
    +*) groups="$groups ${line#+}" ;;
    -*) kept=; for g in $groups; do [ "$g" = "${line#-}" ] || kept="$kept $g"; done; groups=$kept ;;
    done) exit 0 ;;
  esac
done
tagged() { grep -lxsFz -e "$tag" /proc/[0-9]*/environ | sed 's|^/proc/||; s|/environ$||'; }
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; done
pids=$(tagged); [ -z "$pids" ] || kill -s TERM $pids 2>/dev/null
for tick in 1 2 3 4 5 6 7 8 9 10; do
  alive=
  for g in $groups; do kill -s 0 -- "-$g" 2>/dev/null && alive=1; done
  [ -n "$alive" ] || [ -n "$(tagged)" ] || exit 0
  sleep 0.1
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
for round in 1 2 3; do
  pids=$(tagged); [ -z "$pids" ] || kill -s KILL $pids 2>/dev/null
  sleep 0.05
done
"""


GUARD_BATCH = 10


class Watchdog:
    def __init__(self, run_id: str) -> None:
        self._process = subprocess.Popen(
            ["/bin/sh", "-c", _GUARD_SCRIPT, "procman-guard", run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self._process.stdin is not None
        self._fd = self._process.stdin.fileno()
        self._pending: list[str] = []

    @property
    def pid(self) -> int:
        return self._process.pid

    def guard(self, pgid: int) -> None:
        """Queue ``pgid`` for guarding; sent with ``flush``, or at once every GUARD_BATCH groups.

        Each write wakes the guard, which costs about as much as starting a child, so a formation
        of 50 sends 5 writes rather than 50; until then up to GUARD_BATCH - 1 new groups (a few
        milliseconds' worth) are unguarded."""
        self._pending.append(f"+{pgid}\n")
        if len(self._pending) >= GUARD_BATCH:
            self.flush()

    def release(self, pgid: int) -> None:
        self._pending.append(f"-{pgid}\n")

    def flush(self) -> None:
        if self._pending:
            self._send("".join(self._pending))
            self._pending.clear()

    def close(self, *, stand_down: bool) -> None:
        """``stand_down``: procman stopped everything itself, so the guard exits without killing."""
        if stand_down:
            self._pending.append("done\n")
        self.flush()
        assert self._process.stdin is not None
        self._process.stdin.close()

    def reaped(self, returncode: int) -> None:
        self._process.returncode = returncode

    def _send(self, line: str) -> None:
        try:
            os.write(self._fd, line.encode())
        except OSError:
            pass  # the guard is gone; procman still stops its children itself
