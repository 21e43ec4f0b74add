"""Deploying the example app over real OpenSSH: ``procman deploy`` to 1 and to 3 hosts, the same
commit again, and a promotion to production; beside a plain OpenSSH shell deploy of the same git
archive.

The hosts are the tests' (``tests/sshd_hosts.py``): one ``sshd`` each on 127.0.0.2-4, a generated
host key, one client key, a known_hosts file listing exactly these hosts, and each its own /srv (a
private mount namespace, so this needs root). Every process a session starts carries
``PROCMAN_SSH_HOST`` and this run's ``PROCMAN_SSH_RUN``, which is how what a deploy left running
is found. The app is a git repository holding a copy of ``examples/`` (one commit, with the
procman.yml below), its build ``ln -sfn <this venv> .venv`` standing in for ``pip install``. A
private ``redis-server`` (``worker.redis_server``: a free loopback port, no persistence) serves the
workers; every host's ``shared/.env`` names it in ``REDISTOGO_URL``.

procman.yml has three environments, all in ``/srv/snippets`` with formation web 1, worker 1,
clock 0 and a health check of ``/health``. The hosts share one loopback, so only the first host
runs web (two webs would clash on one port); the others run the worker:

- ``staging``: 127.0.0.2 (web and worker);
- ``staging3``: 127.0.0.2 (web and worker), 127.0.0.3 and 127.0.0.4 (worker);
- ``production``: ``promote_from: staging``; 127.0.0.3 (web, another port), 127.0.0.4 (worker).

Each round, every timed command being the real CLI (``procman deploy ENV`` in the repository,
stdout and stderr read line by line with the time each line arrived):

1. ``staging`` phase: every /srv emptied, the local artifact store (``.procman/releases``) removed;
   ``procman deploy staging`` (builds the artifact, uploads, builds, starts), the same command
   again (same commit: nothing to upload or build), then ``procman deploy production`` (the
   promotion, to two fresh hosts). Before and after the promotion the local store is listed with
   each file's mtime: it must not change (the artifact is not rebuilt).
2. ``staging3`` phase: the same, to 3 hosts: ``procman deploy staging3`` twice.
3. Baseline, 1 host then 3 hosts, /srv emptied before each: ``git archive --format=tar HEAD |
   gzip`` to a file, then per host in parallel (a thread each) ``scp`` of the file to the host's
   /srv and ``ssh host 'mkdir -p … && tar -xzf … && ln -sfn … current && rm …'``, with the system
   ``ssh``/``scp`` and the same key and known_hosts (``-F /dev/null``, strict host key checking).
   It does far less than a procman deploy: no lock, no checksum, no build command, no env file,
   no shared files, no history, no restart, no health check.

All of this runs on two sets of 3 hosts (SHELLS), each its own 3 ``sshd``, taking turns round by
round: ``bashrc``, the hosts as the tests run them, where bash reads the user's ``~/.bashrc`` for
every command sshd runs (root's here runs ``pyenv init``: ~0.1 s per command); and ``quiet``, where
that file is bound to /dev/null in the hosts' mount namespace, as on a server whose ~/.bashrc
returns at once for non-interactive shells. The cost of one command (``true`` over an open
connection) is measured on each. The two phases take turns (odd rounds run ``staging3`` first).

After each phase the deploys' supervisors are stopped over SSH as a user would (``procman stop
--wait`` in each release that has one, via ``DeployHost.stop_all``); whatever still runs on a host
5 s later is killed and reported as left running. On any exit (Ctrl-C included) the hosts are
stopped the same way, then the safety net kills what is left, then sshd and Redis stop. Disk:
every /srv is emptied before each phase, the archives are a few KB, the releases link to this
venv rather than copying it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import common
from worker import redis_server

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests import sshd_hosts  # noqa: E402  (the repository root is on sys.path only now)

APP = "snippets"
RUN_BOUND = 300.0
"""A deploy still running after this long is killed (and counted as failed)."""
STOP_GRACE = 5.0
"""After stopping the supervisors, how long host processes get to exit before being killed."""
FORMATION = {"web": 1, "worker": 1, "clock": 0}
SHELLS = {
    "bashrc": "as the tests run them: root's ~/.bashrc runs `pyenv init` for every command",
    "quiet": "~/.bashrc hidden on the hosts (bound to /dev/null in their mount namespace)",
}
"""The two kinds of hosts, each its own 3 sshd: bash reads the user's ~/.bashrc for every
command sshd runs, and root's here is slow (``pyenv init``); a typical server's returns at once
for non-interactive shells, which ``quiet`` stands for."""
RELEASE_LINE = re.compile(r"procman: release (\S+) \(sha256 [0-9a-f]+, (built|cached), ")
PROMOTE_LINE = re.compile(r"procman: promoting (\S+) ")
SHIPPED_LINE = re.compile(
    r"procman: shipped to (\d+) hosts? \(uploaded to (\d+), built on (\d+)\) in ([\d.]+)s"
)
RESTARTED_LINE = re.compile(r"procman: \S+: (?:healthy \(web on|restarted$)")
DONE_LINE = re.compile(r"procman: \S+ now runs \S+ \((\w+), ([\d.]+)s\)")


# -- results -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Deploy:
    """One ``procman deploy ENV`` run."""

    environment: str
    hosts: int
    seconds: float
    """Wall time from launching the CLI to its exit."""
    returncode: int
    release_id: str | None = None
    artifact: str | None = None
    """What the "release …" line says: ``built`` or ``cached``; ``promoted`` for a promotion
    (its line is "promoting …", with no build)."""
    artifact_seconds: float | None = None
    """From launching the CLI until that line arrived: its start-up, the git and artifact work
    (for a promotion: connecting to the source hosts and reading their history)."""
    uploaded: int | None = None
    built_on: int | None = None
    """Hosts that ran the build command (``ln -sfn``): the release was new there."""
    ship_seconds: float | None = None
    """procman's own "shipped … in X s": upload, verify, unpack and build on every host."""
    pipeline_seconds: float | None = None
    """procman's own total ("now runs … (deploy, X s)"), from after its start-up."""
    store_unchanged: bool | None = None
    """Promotion only: every file of the local artifact store has the same name and mtime after."""
    cli_cpu_seconds: float = 0.0
    """user+sys of the local ``procman deploy`` and every child it reaped (``wait4``)."""
    machine_cpu_seconds: float = 0.0
    """Busy CPU time of the whole machine (all cores, /proc/stat) while it ran: the CLI, sshd,
    everything the hosts ran; and anything else running then."""
    output: list[tuple[float, str]] = field(default_factory=list)
    """Every output line, with the seconds from launch at which it arrived."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def phases(self) -> dict[str, float]:
        """Seconds between the output lines that mark the pipeline's steps: ``artifact`` (launch
        to the release line), ``ship`` (connect, check, lock, upload, verify, unpack, build:
        to the "shipped" line), ``restart`` (switch, restart, health checks: to the last host's
        "healthy"/"restarted" line), ``finish`` (history, prune, unlock: to "now runs") and
        ``exit`` (to the CLI's exit). Empty unless every mark was seen."""
        marks: dict[str, float] = {}
        for at, line in self.output:
            if RELEASE_LINE.search(line) or PROMOTE_LINE.search(line):
                marks["artifact"] = at
            elif SHIPPED_LINE.search(line):
                marks["ship"] = at
            elif RESTARTED_LINE.search(line):
                marks["restart"] = at
            elif DONE_LINE.search(line):
                marks["finish"] = at
        if len(marks) < 4:
            return {}
        marks["exit"] = self.seconds
        phases, before = {}, 0.0
        for name, at in marks.items():
            phases[name] = at - before
            before = at
        return phases


@dataclass(slots=True)
class Baseline:
    """One plain OpenSSH shell deploy (git archive | gzip; scp + ssh per host, in parallel)."""

    hosts: int
    seconds: float
    ok: bool
    error: str = ""


@dataclass(slots=True)
class Round:
    shell: str
    """Which hosts: a key of SHELLS."""
    one: Deploy | None = None
    one_again: Deploy | None = None
    promote: Deploy | None = None
    three: Deploy | None = None
    three_again: Deploy | None = None
    baseline_one: Baseline | None = None
    baseline_three: Baseline | None = None
    left_running: list[str] = field(default_factory=list)
    """Host processes still running STOP_GRACE s after the supervisors were stopped (killed)."""


@dataclass(slots=True)
class Results:
    rounds: list[Round] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    private_srv: bool = False
    skipped: str | None = None
    baseline_skipped: str | None = None
    command_ms: dict[str, list[float]] = field(default_factory=dict)
    """Per kind of hosts (SHELLS): milliseconds of one ``true`` over an open SSH connection."""
    left_at_exit: list[str] = field(default_factory=list)
    local_leftovers: list[str] = field(default_factory=list)
    scratch_peak_mb: float = 0.0
    load: list[float] = field(default_factory=list)
    """The 1-minute load average at the start and at the end (others' work shows here)."""
    background: list[float] = field(default_factory=list)
    """Cores busy over 1 s before each round, the hosts idle: what else the machine does."""


# -- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(
        self, cluster: sshd_hosts.SSHCluster, redis_url: str, scratch: Path, shell: str
    ) -> None:
        self.cluster = cluster
        self.redis_url = redis_url
        self.scratch = scratch
        self.shell = shell
        self.app = sshd_hosts.DeployApp(scratch / f"app-{shell}")
        self.store = self.app.root / ".procman" / "releases"
        self.procman = os.environ.get("PROCMAN_BENCH_BIN", str(common.BIN / "procman"))
        self.tag = common.new_tag()
        self.staging_port = sshd_hosts.free_port_on("127.0.0.1")
        self.production_port = sshd_hosts.free_port_on("127.0.0.1")
        while self.production_port == self.staging_port:
            self.production_port = sshd_hosts.free_port_on("127.0.0.1")
        self.peak_mb = 0.0
        """The most the scratch directory held (measured before each emptying)."""

    # -- the app -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The example app's repository: one commit, procman.yml included."""
        self.app.create()
        self.app.commit("procman.yml", {"procman.yml": json.dumps(self.config(), indent=2)})

    def config(self) -> dict[str, object]:
        hosts = self.cluster.hosts

        def entry(host: sshd_hosts.SSHHost, roles: list[str]) -> dict[str, object]:
            return {"host": host.address, "port": host.port, "roles": roles}

        def environment(
            entries: list[dict[str, object]], port: int, **more: object
        ) -> dict[str, object]:
            return {
                **more,
                "hosts": entries,
                "user": self.cluster.user,
                "identity_file": str(self.cluster.identity_file),
                "path": self.root_path(hosts[0]),
                "formation": FORMATION,
                "env": {
                    "REDIS_PROVIDER": "REDISTOGO_URL",
                    "SNIPPETS_DB": "data/snippets.db",
                    "PORT": str(port),
                },
                "healthcheck": {"path": "/health", "timeout": 30},
            }

        first = entry(hosts[0], ["web", "worker", "clock"])
        return {
            "app": APP,
            "build": self.app.build_command,
            "keep_releases": 3,
            "shared": [".env", "data/"],
            "known_hosts": str(self.cluster.known_hosts),
            "environments": {
                "staging": environment([first], self.staging_port),
                "staging3": environment(
                    [first, *(entry(h, ["worker"]) for h in hosts[1:3])], self.staging_port
                ),
                "production": environment(
                    [entry(hosts[1], ["web"]), entry(hosts[2], ["worker"])],
                    self.production_port,
                    promote_from="staging",
                ),
            },
        }

    def root_path(self, host: sshd_hosts.SSHHost) -> str:
        """The deploy path as commands on the host see it."""
        return f"{host.deploy_root}/{APP}"

    def fresh(self) -> None:
        """Every host's /srv emptied (with shared/.env naming the Redis), no local artifact."""
        self.peak_mb = max(self.peak_mb, disk_mb(self.scratch))
        for host in self.cluster.hosts:
            sshd_hosts.empty_directory(host.srv)
            shared = host.srv / APP / "shared"
            shared.mkdir(parents=True)
            (shared / ".env").write_text(f"REDISTOGO_URL={self.redis_url}\n")
        shutil.rmtree(self.store, ignore_errors=True)

    def store_listing(self) -> dict[str, int]:
        if not self.store.is_dir():
            return {}
        return {path.name: path.stat().st_mtime_ns for path in self.store.iterdir()}

    # -- procman -------------------------------------------------------------------------------

    def deploy(self, environment: str, hosts: int) -> Deploy:
        """``procman deploy ENVIRONMENT`` in the repository, each output line timed."""
        env = common.tagged_env(self.tag)
        began = time.monotonic()
        process = subprocess.Popen(
            [self.procman, "deploy", environment],
            cwd=self.app.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        busy = machine_busy()
        timer = threading.Timer(RUN_BOUND, process.kill)
        timer.start()
        lines: list[tuple[float, str]] = []
        try:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                lines.append((time.monotonic() - began, raw.decode(errors="replace").rstrip()))
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.monotonic() - began
            busy = machine_busy() - busy
            process.returncode = returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        result = Deploy(environment, hosts, seconds, returncode)
        result.cli_cpu_seconds = usage.ru_utime + usage.ru_stime
        result.machine_cpu_seconds = busy
        for at, line in lines:
            if match := RELEASE_LINE.search(line):
                result.release_id, result.artifact = match[1], match[2]
                result.artifact_seconds = at
            elif match := PROMOTE_LINE.search(line):
                result.release_id, result.artifact = match[1], "promoted"
                result.artifact_seconds = at
            elif match := SHIPPED_LINE.search(line):
                result.uploaded, result.built_on = int(match[2]), int(match[3])
                result.ship_seconds = float(match[4])
            elif match := DONE_LINE.search(line):
                result.pipeline_seconds = float(match[2])
        result.output = lines
        return result

    def promote(self) -> Deploy:
        before = self.store_listing()
        result = self.deploy("production", 2)
        result.store_unchanged = bool(before) and self.store_listing() == before
        return result

    def command_latency(self, count: int = 30) -> list[float]:
        """Milliseconds of ``true`` run over one open SSH connection (procman's own transport),
        ``count`` times after one untimed: what every command a deploy runs on a host costs."""
        times = []
        with self.cluster.connect(self.cluster.hosts[0]) as transport:
            transport.run(["true"], timeout=30)
            for _ in range(count):
                began = time.monotonic()
                transport.run(["true"], timeout=30)
                times.append(1000 * (time.monotonic() - began))
        return times

    def stop_hosts(self) -> list[str]:
        """Stop what the deploys started on every host, over SSH as procman does (``procman stop
        --wait`` in each release with a supervisor); then kill, and return, whatever still runs
        on a host STOP_GRACE s later."""

        def stop(host: sshd_hosts.SSHHost) -> None:
            self.cluster.stop_deployed(host, self.root_path(host))

        def guarded(host: sshd_hosts.SSHHost) -> None:
            try:
                stop(host)
            except Exception as error:  # the safety net below still runs
                progress(f"stopping {host.address} over SSH failed: {error}")

        # sshd dies with a Ctrl-C (it is in the terminal's process group): then only the
        # safety net below can stop what runs there.
        up = [h for h in self.cluster.hosts if h.process is not None and h.process.poll() is None]
        if up:
            with ThreadPoolExecutor(len(up)) as pool:
                list(pool.map(guarded, up))
        deadline = time.monotonic() + STOP_GRACE
        while sshd_hosts.host_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        return sshd_hosts.kill_host_processes()

    # -- the baseline --------------------------------------------------------------------------

    def ssh_options(self, port_flag: str, host: sshd_hosts.SSHHost) -> list[str]:
        return [
            "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.cluster.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR", "-i", str(self.cluster.identity_file),
            port_flag, str(host.port),
        ]  # fmt: skip

    def baseline(self, count: int) -> Baseline:
        """The same commit, shipped with the system OpenSSH tools only."""
        hosts = self.cluster.hosts[:count]
        env = common.tagged_env(self.tag)
        archive = self.scratch / f"baseline-{self.shell}.tar.gz"
        began = time.monotonic()
        try:
            sha = self.app.git("rev-parse", "--short=7", "HEAD")
            release = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{sha}"
            with archive.open("wb") as out:
                git = subprocess.Popen(
                    ["git", "archive", "--format=tar", "HEAD"],
                    cwd=self.app.root,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                assert git.stdout is not None
                gzip = subprocess.run(
                    ["gzip", "-c"], stdin=git.stdout, stdout=out, env=env, check=False
                )
                git.stdout.close()
                if git.wait() != 0 or gzip.returncode != 0:
                    return Baseline(count, time.monotonic() - began, False, "git archive | gzip")

            def ship(host: sshd_hosts.SSHHost) -> str:
                root = self.root_path(host)
                upload = f"{host.deploy_root}/{release}.tar.gz"
                target = f"{self.cluster.user}@{host.address}"
                scp = subprocess.run(
                    ["scp", "-q", *self.ssh_options("-P", host), str(archive),
                     f"{target}:{upload}"],
                    capture_output=True, env=env, timeout=RUN_BOUND, check=False,
                )  # fmt: skip
                if scp.returncode != 0:
                    return f"scp to {host.address}: {scp.stderr.decode().strip()}"
                script = (
                    f"mkdir -p {root}/releases/{release} && "
                    f"tar -xzf {upload} -C {root}/releases/{release} && "
                    f"ln -sfn releases/{release} {root}/current && rm {upload}"
                )
                ssh = subprocess.run(
                    ["ssh", *self.ssh_options("-p", host), target, script],
                    capture_output=True, env=env, timeout=RUN_BOUND, check=False,
                )  # fmt: skip
                if ssh.returncode != 0:
                    return f"ssh to {host.address}: {ssh.stderr.decode().strip()}"
                return ""

            with ThreadPoolExecutor(len(hosts)) as pool:
                errors = [error for error in pool.map(ship, hosts) if error]
            seconds = time.monotonic() - began
        finally:
            archive.unlink(missing_ok=True)
        missing = [h.address for h in hosts if not (h.srv / APP / "current").is_symlink()]
        if missing and not errors:
            errors.append(f"no current link on {', '.join(missing)}")
        return Baseline(count, seconds, not errors, "; ".join(errors))

    # -- one round -----------------------------------------------------------------------------

    def staging_phase(self, result: Round) -> None:
        self.fresh()
        try:
            result.one = self.deploy("staging", 1)
            progress(f"  {describe(result.one)}")
            if result.one.ok:
                result.one_again = self.deploy("staging", 1)
                progress(f"  again: {describe(result.one_again)}")
                result.promote = self.promote()
                progress(f"  {describe(result.promote)}")
        finally:
            result.left_running += self.stop_hosts()

    def staging3_phase(self, result: Round) -> None:
        self.fresh()
        try:
            result.three = self.deploy("staging3", 3)
            progress(f"  {describe(result.three)}")
            if result.three.ok:
                result.three_again = self.deploy("staging3", 3)
                progress(f"  again: {describe(result.three_again)}")
        finally:
            result.left_running += self.stop_hosts()

    def baseline_phase(self, result: Round) -> None:
        for count in (1, 3):
            self.fresh()
            sample = self.baseline(count)
            if count == 1:
                result.baseline_one = sample
            else:
                result.baseline_three = sample
            state = "ok" if sample.ok else f"FAILED: {sample.error}"
            progress(f"  baseline, {count} host(s): {sample.seconds:.2f} s, {state}")

    def round(self, number: int, baseline: bool) -> Round:
        result = Round(self.shell)
        phases: list[Callable[[Round], None]] = [self.staging_phase, self.staging3_phase]
        if number % 2:
            phases.reverse()
        if baseline:
            phases.append(self.baseline_phase)
        for phase in phases:
            phase(result)
        return result


def describe(sample: Deploy) -> str:
    tail = "\n".join(line for _, line in sample.output[-15:])
    state = "ok" if sample.ok else f"FAILED (exit {sample.returncode}):\n{tail}"
    store = ""
    if sample.store_unchanged is not None:
        store = f", local store {'unchanged' if sample.store_unchanged else 'CHANGED'}"
    return (
        f"procman deploy {sample.environment} ({sample.hosts} host(s)): {sample.seconds:.2f} s, "
        f"artifact {sample.artifact} at {sample.artifact_seconds or 0:.2f} s, uploaded to "
        f"{sample.uploaded}, built on {sample.built_on}{store}, {state}"
    )


def progress(text: str) -> None:
    print(f"  deploy {text}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    import paramiko

    found = {"paramiko": paramiko.__version__}
    for name, argv in (("ssh", ["ssh", "-V"]), ("git", ["git", "--version"])):
        with contextlib.suppress(OSError):
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            text = (done.stderr or done.stdout).strip().split(",")[0]
            found[name] = text.removeprefix("git version ").removeprefix("OpenSSH_")
    return found


def background_cores(seconds: float = 1.0) -> float:
    """How many cores the machine keeps busy over ``seconds`` while the bench waits."""
    busy = machine_busy()
    time.sleep(seconds)
    return (machine_busy() - busy) / seconds


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def disk_mb(path: Path) -> float:
    """Bytes under ``path`` (symbolic links not followed), in MB."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total / 1e6


@contextlib.contextmanager
def stopped_at_exit(bench: Bench, results: Results) -> Iterator[None]:
    """On any exit, Ctrl-C included: stop the supervisors over SSH, then kill what is left."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            results.left_at_exit += bench.stop_hosts()
        results.left_at_exit += sshd_hosts.kill_host_processes()
        results.local_leftovers += common.leftovers(bench.tag, settle=0.1)


def run(repeat: int, scratch: Path, quick: bool = False) -> Results:
    """``repeat`` rounds on each kind of hosts (SHELLS), taking turns; ``quick`` changes nothing
    (a round is short), it is there for the common CLI."""
    del quick
    results = Results()
    if os.geteuid() != 0:
        results.skipped = "needs root (the hosts' private /srv are mount namespaces)"
        return results
    if not os.path.exists(sshd_hosts.SSHD):
        results.skipped = f"{sshd_hosts.SSHD} not installed: apt-get install openssh-server"
        return results
    if shutil.which("redis-server") is None:
        results.skipped = "redis-server not on PATH"
        return results
    if shutil.which("ssh") is None or shutil.which("scp") is None:
        results.baseline_skipped = "ssh/scp not installed: apt-get install openssh-client"
    base = scratch / "deploy"
    results.load.append(os.getloadavg()[0])
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(redis_server(base / "redis"))
            benches = []
            for shell in SHELLS:
                cluster = stack.enter_context(
                    sshd_hosts.sshd_cluster(
                        base / f"sshd-{shell}", dict(os.environ), quiet_shell=shell == "quiet"
                    )
                )
                if not cluster.hosts[0].private_srv:
                    results.skipped = "no private /srv: mount namespaces do not work here"
                    return results
                bench = Bench(cluster, url, base, shell)
                stack.enter_context(stopped_at_exit(bench, results))
                benches.append(bench)
            results.private_srv = True
            results.versions = versions()
            for bench in benches:
                bench.prepare()
                results.command_ms[bench.shell] = bench.command_latency()
            for number in range(repeat):
                for bench in benches if number % 2 == 0 else benches[::-1]:
                    results.background.append(background_cores())
                    progress(
                        f"round {number + 1} of {repeat}, hosts {bench.shell} (cores busy "
                        f"before: {results.background[-1]:.2f})"
                    )
                    results.rounds.append(
                        bench.round(number, baseline=results.baseline_skipped is None)
                    )
                    results.scratch_peak_mb = max(
                        results.scratch_peak_mb, bench.peak_mb, disk_mb(base)
                    )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results.load.append(os.getloadavg()[0])
    return results


if __name__ == "__main__":
    import tempfile

    os.environ.pop("PYTHONUNBUFFERED", None)
    directory = Path(tempfile.mkdtemp(prefix="procman-bench-deploy-"))
    try:
        outcome = run(1, directory)
        print(outcome.skipped or f"left running: {outcome.left_at_exit or 'none'}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
