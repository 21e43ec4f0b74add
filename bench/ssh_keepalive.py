"""What the SSH transport's keepalives cost: the same commands over one connection with keepalives
on (procman's defaults: a reply asked for every 5 s while a command runs, paramiko keepalives when
idle) and off (an interval no command reaches), taking turns so that both see the same load.

Two workloads per round, on one of the tests' sshd hosts (``tests/sshd_hosts.py``, quiet shells:
the user's ~/.bashrc hidden, so a command costs what sshd and procman cost): 200 ``true`` commands
in a row (the per-command cost of the watchdog), and one ``sleep 12`` (two keepalive round trips
under way). Reported: median wall time per ``true``, and this process's CPU seconds (all its
threads: paramiko's, the watchdog's) for each workload.

Run: ``.venv/bin/python bench/ssh_keepalive.py [ROUNDS]`` (root, for the hosts' private /srv).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import sshd_hosts

COMMANDS = 200
OFF = 1e6
"""A keepalive interval no command reaches: keepalives off."""


def measure(cluster: sshd_hosts.SSHCluster, interval: float) -> tuple[float, float, float]:
    """(median seconds per ``true``, CPU seconds for the 200, CPU seconds for ``sleep 12``)."""
    host = cluster.hosts[0]
    with cluster.connect(host, keepalive_interval=interval) as ssh:
        ssh.run(["true"], timeout=30)
        samples = []
        cpu = time.process_time()
        for _ in range(COMMANDS):
            began = time.perf_counter()
            ssh.run(["true"], timeout=30)
            samples.append(time.perf_counter() - began)
        commands_cpu = time.process_time() - cpu
        cpu = time.process_time()
        ssh.run(["sleep", "12"], timeout=60)
        sleep_cpu = time.process_time() - cpu
    return statistics.median(samples), commands_cpu, sleep_cpu


def main(rounds: int) -> None:
    results: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="procman-bench-keepalive-") as scratch:
        env = dict(os.environ)
        with sshd_hosts.sshd_cluster(Path(scratch), env, quiet_shell=True) as cluster:
            for number in range(rounds):
                order = [("on", 5.0), ("off", OFF)]
                for name, interval in order if number % 2 == 0 else order[::-1]:
                    results[name].append(measure(cluster, interval))
                    latest = results[name][-1]
                    line = (
                        f"  round {number + 1}, keepalives {name}: {latest[0] * 1000:.2f} ms per "
                        f"command, CPU {latest[1]:.3f} s / {latest[2]:.3f} s"
                    )
                    print(line, file=sys.stderr)
    print(f"| keepalives | ms per `true`, median of {rounds} rounds (each the median of "
          f"{COMMANDS}) | CPU s for {COMMANDS} `true` | CPU s for one `sleep 12` |")  # fmt: skip
    print("|---|---|---|---|")
    for name in ("on", "off"):
        rows = results[name]
        per = statistics.median(r[0] for r in rows) * 1000
        cpu = statistics.median(r[1] for r in rows)
        sleep_cpu = statistics.median(r[2] for r in rows)
        print(f"| {name} | {per:.2f} | {cpu:.3f} | {sleep_cpu:.4f} |")
    print(f"\n1-minute load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
