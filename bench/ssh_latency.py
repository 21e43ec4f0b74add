"""SSH per-command latency on an open connection: ``true`` run again and again over one
connection of procman's SSH transport to one of the tests' sshd hosts (``tests/sshd_hosts.py``).
Reported (median, min, max), not asserted. It was a test in
``tests/integration/test_ssh_transport.py`` that asserted nothing (issue 13.5).

Run: ``.venv/bin/python bench/ssh_latency.py [COMMANDS] [--quiet-shell]`` (root, for the hosts'
private /srv). ``--quiet-shell`` hides the user's ~/.bashrc on the hosts, so a command costs what
sshd and procman cost (root's here runs ``pyenv init`` for every SSH command).
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


def measure(cluster: sshd_hosts.SSHCluster, commands: int) -> list[float]:
    """Seconds each ``true`` took, after one to open the session."""
    with cluster.connect(cluster.hosts[0]) as ssh:
        ssh.run(["true"], timeout=10)
        samples = []
        for _ in range(commands):
            began = time.perf_counter()
            ssh.run(["true"], timeout=10)
            samples.append(time.perf_counter() - began)
    return samples


def main(commands: int, quiet_shell: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="procman-bench-ssh-latency-") as scratch:
        env = dict(os.environ)
        with sshd_hosts.sshd_cluster(Path(scratch), env, quiet_shell=quiet_shell) as cluster:
            samples = measure(cluster, commands)
    shell = "quiet shell" if quiet_shell else "the user's shell"
    print(
        f"SSH per-command latency on an open connection ({shell}): median "
        f"{statistics.median(samples) * 1000:.1f} ms, min {min(samples) * 1000:.1f} ms, "
        f"max {max(samples) * 1000:.1f} ms over {len(samples)}"
    )
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--quiet-shell"]
    main(int(arguments[0]) if arguments else 30, "--quiet-shell" in sys.argv[1:])
