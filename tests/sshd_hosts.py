"""Real OpenSSH servers on 127.0.0.2-4 to deploy to, the clean-up of what deploys leave running on
them, and a git repository of the example app to deploy from.

Shared by the tests (``tests/conftest.py`` wraps these in the ``sshd_cluster``, ``deploy_hosts`` and
``deploy_app`` fixtures) and the deploy benchmark (``bench/deploy.py``). Nothing here imports
pytest: a failure to start raises ``SSHDidNotStart``.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from procman.deploy.transport.ssh import SSHTransport


def procman_executable() -> str:
    """The console script installed next to this interpreter (the real entry point users run)."""
    candidate = Path(sys.executable).with_name("procman")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("procman")
    if found is None:
        raise RuntimeError("procman is not installed: run scripts/test")
    return found


PROCMAN = procman_executable()


def run_procman(
    cwd: Path,
    *args: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``procman`` with ``args`` in ``cwd``, capturing its output as text.
    ``env`` is added to this process's environment (which keeps the per-test tag)."""
    return subprocess.run(
        [PROCMAN, *args],
        cwd=cwd,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        input=input,
        env={**os.environ, **env} if env is not None else None,
    )


# Real OpenSSH servers -----------------------------------------------------------------------------

SSHD = "/usr/sbin/sshd"
SSH_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
HOST_VAR = "PROCMAN_SSH_HOST"
"""Set by each sshd in every session's environment to the host's address, and inherited by every
process a session starts, daemons that ``setsid`` detached from sshd included: the way to find
what deploys left running (the per-test tag is not there: sshd does not pass the client's
environment on)."""
RUN_VAR = "PROCMAN_SSH_RUN"
SSH_RUN = uuid.uuid4().hex
"""Set beside HOST_VAR to this value, unique to this process (a pytest run, a benchmark run), so
clean-up here only ever touches processes of this run's hosts, never those of another run on the
same machine."""

SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 100
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
SetEnv PROCMAN_SSH_HOST={address} PROCMAN_SSH_RUN={run}
"""


class SSHHost:
    """One running sshd: where it listens, its config and log, and its deploy root. ``srv`` is the
    directory the host sees as /srv when ``private_srv`` (a mount namespace of its own), else the
    deploy root itself, given to the host by path."""

    def __init__(self, address: str, port: int, root: Path, private_srv: bool) -> None:
        self.address = address
        self.port = port
        self.root = root
        self.srv = root / "srv"
        self.private_srv = private_srv
        self.config = root / "sshd_config"
        self.log = root / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_with: tuple[dict[str, str], Sequence[Path]] = ({}, ())
        """The environment and hidden files its sshd was started with, to start it again."""

    @property
    def deploy_root(self) -> str:
        """The path of this host's /srv as commands run on the host see it."""
        return "/srv" if self.private_srv else str(self.srv)

    def connection_processes(self, client_port: int | None = None) -> list[psutil.Process]:
        """The sshd processes serving connections (only the one from the client's TCP port
        ``client_port``, when given): each connection's sshd and the sshd processes under it,
        not the commands they run."""
        assert self.process is not None
        found: list[psutil.Process] = []
        for child in psutil.Process(self.process.pid).children():
            try:
                ports = {c.raddr.port for c in child.net_connections("tcp") if c.raddr}
                if client_port is not None and client_port not in ports:
                    continue
                found += [child, *(p for p in child.children(True) if p.name() == "sshd")]
            except psutil.Error:
                continue
        return found

    def sessions_from(self, client_port: int) -> int:
        """How many sshd connection processes serve the client's TCP port (one per connection)."""
        assert self.process is not None
        count = 0
        for child in psutil.Process(self.process.pid).children():
            try:
                ports = {c.raddr.port for c in child.net_connections("tcp") if c.raddr}
            except psutil.Error:
                continue
            count += client_port in ports
        return count


class SSHCluster:
    """The session's sshd instances plus what a client needs to reach them."""

    def __init__(self, hosts: list[SSHHost], user: str, identity_file: Path, known_hosts: Path):
        self.hosts = hosts
        self.user = user
        self.identity_file = identity_file
        self.known_hosts = known_hosts

    def connect(self, host: SSHHost, **options: Any) -> SSHTransport:
        """procman's SSH transport to ``host``, with this cluster's client key and known_hosts
        (``options`` override them or add to them)."""
        from procman.deploy.transport.ssh import SSHTransport

        settings: dict[str, Any] = {
            "known_hosts": [self.known_hosts],
            "identity_file": self.identity_file,
            **options,
        }
        return SSHTransport(host.address, host.port, self.user, **settings)

    def stop_deployed(self, host: SSHHost, root: str, wait: float = 30) -> None:
        """Stop every ``procman start`` that deploys left running under the deploy root ``root``
        on ``host``, over SSH as procman itself does (``procman stop --wait`` in each release)."""
        from procman.deploy.config import Environment, Host
        from procman.deploy.host import DeployHost

        with self.connect(host) as transport:
            environment = Environment("any", (), root)
            DeployHost(Host(host.address), environment, transport).stop_all(wait)


def _mount_namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def free_port_on(address: str) -> int:
    """A port free right now on ``address`` (one of SSH_ADDRESSES, say)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


class SSHDidNotStart(RuntimeError):
    """sshd is not installed, or one of the servers did not answer with its banner in time."""


NO_SSHD = "sshd is not installed: run scripts/test, which installs openssh-server"


def _wait_for_banner(host: SSHHost, timeout: float = 10) -> None:
    assert host.process is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.address, host.port), timeout=1) as connection:
                if connection.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        if host.process.poll() is not None or time.monotonic() > deadline:
            log = host.log.read_text() if host.log.exists() else ""
            raise SSHDidNotStart(f"sshd did not start on {host.address}:{host.port}: {log}")
        time.sleep(0.02)


SHELL_RC_FILES = (".bashrc",)
"""What bash reads in the home directory when sshd runs a command (``bash -c``), see
``sshd_cluster``'s ``quiet_shell``."""


def _start_sshd(host: SSHHost, env: dict[str, str], hide: Sequence[Path] = ()) -> None:
    host.started_with = (env, hide)
    command = [SSHD, "-D", "-e", "-f", str(host.config)]
    if host.private_srv:
        # Its own mount namespace: the bind mount over /srv is seen by sshd and every session it
        # starts, and by nothing else on this machine; so is /dev/null over each file of ``hide``.
        hidden = "".join(f"mount --bind /dev/null {shlex.quote(str(f))} && " for f in hide)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f'mount --bind "$0" /srv && {hidden}exec "$@"', str(host.srv),
                   *command]  # fmt: skip
    with host.log.open("wb") as log:
        host.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )


@contextmanager
def sshd_cluster(
    base: Path, env: Mapping[str, str], quiet_shell: bool = False
) -> Iterator[SSHCluster]:
    """Real OpenSSH servers on 127.0.0.2-4, their files under ``base`` (created), each with a
    generated host key, one client key authorized for the current user, a known_hosts file listing
    exactly these hosts, and a private /srv (a mount namespace) where the machine allows it; ``env``
    is their environment. Stopped at the end, on failure too. Raises ``SSHDidNotStart``.

    ``quiet_shell`` (with a private /srv only): the user's ``~/.bashrc`` reads as empty on the
    hosts, as on a server whose ~/.bashrc returns at once for non-interactive shells. bash reads
    it for every command sshd runs; a heavy one (``pyenv init``, say) then adds its cost to each
    of them."""
    if not os.path.exists(SSHD):
        raise SSHDidNotStart(NO_SSHD)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    client_key = base / "id_ed25519"
    (base / "authorized_keys").write_text(_keygen(client_key, "procman-tests") + "\n")
    private_srv = _mount_namespaces_work()
    home = Path(pwd.getpwnam(getpass.getuser()).pw_dir)
    hide = [home / n for n in SHELL_RC_FILES if (home / n).is_file()] if quiet_shell else []
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    hosts: list[SSHHost] = []
    known_hosts: list[str] = []
    try:
        for address in SSH_ADDRESSES:
            host = SSHHost(address, free_port_on(address), base / address, private_srv)
            host.srv.mkdir(parents=True)
            public = _keygen(host.root / "ssh_host_ed25519_key", f"host-{address}")
            known_hosts.append(f"[{address}]:{host.port} {' '.join(public.split()[:2])}")
            host.config.write_text(
                SSHD_CONFIG.format(
                    address=address,
                    port=host.port,
                    host_key=host.root / "ssh_host_ed25519_key",
                    authorized_keys=base / "authorized_keys",
                    run=SSH_RUN,
                )
            )
            _start_sshd(host, dict(env), hide)
            hosts.append(host)
        for host in hosts:
            _wait_for_banner(host)
        (base / "known_hosts").write_text("\n".join(known_hosts) + "\n")
        yield SSHCluster(hosts, getpass.getuser(), client_key, base / "known_hosts")
    finally:
        for host in hosts:
            _stop_sshd(host)


def kill_sshd(host: SSHHost) -> None:
    """Kill a host's sshd and the sshd of each connection to it (SIGKILL, as when the host dies):
    its connections drop, and new ones are refused until ``restart_sshd``. What the sessions were
    running keeps running."""
    assert host.process is not None
    for process in [*host.connection_processes(), psutil.Process(host.process.pid)]:
        try:
            process.kill()
        except psutil.Error:
            pass
    host.process.wait(timeout=10)


def restart_sshd(host: SSHHost) -> None:
    """Start a host's sshd again after ``kill_sshd``: the same address, port, host key and
    config."""
    assert host.process is not None and host.process.poll() is not None
    _start_sshd(host, *host.started_with)
    _wait_for_banner(host)


def _stop_sshd(host: SSHHost) -> None:
    if host.process is None or host.process.poll() is not None:
        return
    try:
        sessions = psutil.Process(host.process.pid).children(recursive=True)
    except psutil.Error:
        sessions = []
    host.process.terminate()
    try:
        host.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        host.process.kill()
        host.process.wait()
    for session in sessions:
        try:
            session.kill()
        except psutil.Error:
            pass


# What deploys leave running on the hosts, and clean hosts -----------------------------------------


class HostProcessesLeftRunning(UserWarning):
    """A deploy test left processes running on the SSH hosts; ``deploy_hosts`` killed them."""


def host_processes(run: str = SSH_RUN) -> list[psutil.Process]:
    """Live processes started in a session on one of the run's hosts: their environment carries
    the run's RUN_VAR (and HOST_VAR). Never this process or its ancestors; processes whose
    environment cannot be read, and zombies, are skipped."""
    mine = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter():
        if process.pid in mine:
            continue
        try:
            environ = process.environ()
            if environ.get(RUN_VAR) != run or HOST_VAR not in environ:
                continue
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _describe(process: psutil.Process) -> str | None:
    try:
        host = process.environ().get(HOST_VAR, "?")
        return f"{host} pid {process.pid}: {' '.join(process.cmdline()) or process.name()}"
    except (psutil.Error, OSError):
        return None


def _gone(process: psutil.Process) -> bool:
    """Exited, or a zombie: dead, waiting for its parent (often init, which reaps lazily)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = [process for process in processes if not _gone(process)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [process for process in alive if not _gone(process)]
    return alive


def _signal(processes: list[psutil.Process], signum: signal.Signals) -> None:
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.Error:
            pass


def kill_host_processes(run: str = SSH_RUN, term_timeout: float = 3) -> list[str]:
    """Kill every process this run's SSH hosts started (see ``host_processes``): SIGTERM to each,
    up to ``term_timeout`` seconds to exit, then SIGKILL to the survivors, waited for too. Again
    while new ones appear (a supervisor may start more as its children die). Returns what was
    killed, as ``"<host> pid <pid>: <command line>"``; empty when nothing was running."""
    killed: list[str] = []
    for _ in range(5):
        processes = host_processes(run)
        if not processes:
            break
        killed += [text for text in map(_describe, processes) if text is not None]
        _signal(processes, signal.SIGTERM)
        survivors = _wait_gone(processes, term_timeout)
        _signal(survivors, signal.SIGKILL)
        stuck = _wait_gone(survivors, 5)
        if stuck:
            raise RuntimeError(f"host processes survived SIGKILL: {list(map(_describe, stuck))}")
    else:
        still = list(map(_describe, host_processes(run)))
        raise RuntimeError(f"host processes kept appearing: {still}")
    return killed


def empty_directory(path: Path) -> None:
    """Delete everything in ``path`` but ``path`` itself; symbolic links are removed, never
    followed (a release's ``.venv`` links to the test venv)."""
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@contextmanager
def clean_deploy_hosts(cluster: SSHCluster) -> Iterator[SSHCluster]:
    """The body of ``deploy_hosts``, usable directly: every host's /srv empty before, and after
    (on failure too) no process left running on any host and every /srv empty again. Processes it
    had to kill are reported with a ``HostProcessesLeftRunning`` warning, not an error."""
    for host in cluster.hosts:
        empty_directory(host.srv)
    try:
        yield cluster
    finally:
        killed = kill_host_processes()
        for host in cluster.hosts:
            empty_directory(host.srv)
        if killed:
            warnings.warn(
                HostProcessesLeftRunning(
                    f"killed {len(killed)} process(es) left running on the SSH hosts: "
                    + "; ".join(killed)
                ),
                stacklevel=1,
            )


# The example app, to deploy from ------------------------------------------------------------------


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEPLOY_APP_FILES = ("Procfile", "queues.yml", "requirements.txt")
DEPLOY_APP_GITIGNORE = ".procman/\n__pycache__/\n.venv\n"


class DeployApp:
    """A git repository holding a copy of the example app (examples/), committed, to deploy from.

    ``build_command`` stands in for ``pip install -r requirements.txt``: it links the release's
    ``.venv`` to the test venv, which has procman, gunicorn and flask."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = Path(sys.prefix)
        self.build_command = f"ln -sfn {self.venv} .venv"

    def git(self, *args: str) -> str:
        """Run git in the repository; its stdout, stripped. Raises on failure."""
        result = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "procman tests")
        self.git("config", "user.email", "tests@procman.invalid")
        for name in DEPLOY_APP_FILES:
            shutil.copy2(EXAMPLES / name, self.root / name)
        shutil.copytree(
            EXAMPLES / "snippets",
            self.root / "snippets",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        return self.commit("the example app", {".gitignore": DEPLOY_APP_GITIGNORE})

    def commit(self, message: str, files: Mapping[str, str] | None = None) -> str:
        """Write ``files`` (paths relative to the root, parents created), commit everything in
        the tree (a commit is made even when nothing changed) and return its full sha."""
        for name, text in (files or {}).items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def run(
        self, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed ``procman`` with ``args`` in the repository."""
        return run_procman(self.root, *args, timeout=timeout, env=env)
