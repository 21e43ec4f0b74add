"""The ``Transport`` interface over SSH with paramiko: one lazily opened connection per host,
reused for every command and transfer, with ``TCP_NODELAY`` set (small request/reply exchanges
otherwise wait on Nagle's algorithm and delayed ACKs).

A connection is watched while a command or transfer uses it: a host that drops the connection, or
stops answering (no reply to a keepalive request within ``STALL_TIMEOUT``), fails that command at
once with ``ConnectionLost``, instead of leaving it waiting for output that never comes.

Host keys are checked against ``~/.ssh/known_hosts`` and any files given; an unknown or changed
key is refused with its SHA256 fingerprint and the command that trusts it, never accepted."""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko

from procman.deploy.transport.base import (
    AuthenticationFailed,
    ClosesOnExit,
    CommandTimeout,
    ConnectionLost,
    HostKeyRejected,
    HostUnreachable,
    Result,
    StrPath,
    Terminal,
    TransportError,
    command_line,
)
from procman.errors import excerpt

CONNECT_TIMEOUT = 10.0
TRANSFER_TIMEOUT = 300.0
_CHUNK = 65536
KILL_TIMEOUT = 10.0
KEEPALIVE_INTERVAL = 5.0
"""Seconds between keepalives: asked of the host while a command or transfer runs (and sent by
paramiko on an idle connection, which keeps NAT and firewall state alive between steps)."""
STALL_TIMEOUT = 20.0
"""Seconds a host may take to answer a keepalive before its connection counts as stalled."""
KEEPALIVE_REQUEST = "keepalive@openssh.com"
"""The global request OpenSSH's own ServerAliveInterval sends: sshd does not know it, and answers
with a failure, which is the reply wanted."""
_PID_MARKER = b"procman-pid:"

# paramiko logs a lost connection at ERROR from its own thread; without a handler Python prints
# it raw to stderr, beside the error procman reports for the step.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` and OpenSSH's own prompts show it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class SSHConfigEntry:
    """What ``~/.ssh/config`` says about a host (None where it says nothing)."""

    hostname: str
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None


def lookup_ssh_config(path: Path, host: str) -> SSHConfigEntry:
    """``host`` as OpenSSH's client config file at ``path`` resolves it (HostName, Port, User,
    IdentityFile); just ``host`` when there is no file or no entry for it."""
    if not path.is_file():
        return SSHConfigEntry(host)
    try:
        found = paramiko.SSHConfig.from_path(str(path)).lookup(host)
    except (OSError, ValueError, paramiko.SSHException) as error:
        raise TransportError(host, "read ssh config", f"cannot read {path} ({error})") from None
    port = found.get("port")
    given = found.get("identityfile")
    identities: list[str] = [given] if isinstance(given, str) else list(given or [])
    return SSHConfigEntry(
        hostname=found.get("hostname", host),
        port=int(port) if port and str(port).isdigit() else None,
        user=found.get("user"),
        identity_file=identities[0] if identities else None,
    )


def known_hosts_name(host: str, port: int) -> str:
    """The name a host's key is recorded under in known_hosts (``[host]:port`` off port 22)."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True, slots=True)
class HostKey:
    """A host's public key as the host offered it (before any authentication)."""

    name: str
    """As known_hosts records the host (``known_hosts_name``)."""
    key_type: str
    base64: str
    fingerprint: str

    def known_hosts_line(self) -> str:
        return f"{self.name} {self.key_type} {self.base64}"


def offered_host_key(
    address: str, port: int, label: str, timeout: float = CONNECT_TIMEOUT
) -> HostKey:
    """The key ``address:port`` offers in the SSH handshake (the type procman's connections
    negotiate, so the one they will check), without logging in; nothing is trusted here.
    ``label`` names the host in errors."""
    try:
        sock = socket.create_connection((address, port), timeout)
    except OSError as error:
        raise HostUnreachable(
            label, "read host key", f"cannot reach {address} port {port} ({_describe(error)})",
            "check the host's address and port in procman.yml, and that it runs sshd",
        ) from None  # fmt: skip
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as error:
        raise HostUnreachable(
            label, "read host key", f"SSH handshake failed ({_describe(error)})"
        ) from None
    finally:
        transport.close()
        sock.close()
    return HostKey(
        known_hosts_name(address, port), key.get_name(), key.get_base64(), fingerprint(key)
    )


def recorded_keys(path: Path, name: str) -> dict[str, str]:
    """The keys ``path`` (a known_hosts file) records for ``name``: type -> base64."""
    if not path.is_file():
        return {}
    try:
        keys = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException) as error:
        raise HostKeyRejected(name, "read known_hosts", f"cannot read {path} ({error})") from None
    found = keys.lookup(name)
    return {} if found is None else {kind: key.get_base64() for kind, key in found.items()}


class _Reject(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, with a message that says what the key is and how to trust it."""

    def __init__(self, transport: SSHTransport) -> None:
        self._transport = transport

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:  # fmt: skip
        where = self._transport
        raise HostKeyRejected(
            where.host,
            "connect",
            f"unknown host key {key.get_name()} {fingerprint(key)} for {hostname}; "
            "not trusted, connection refused",
            f"if that fingerprint is the host's, trust it with: "
            f"ssh-keyscan -p {where.port} -t {key.get_name()} {where.address} "
            f">> ~/.ssh/known_hosts",
        )


class SSHTransport(ClosesOnExit):
    """One host over SSH. Thread-safe to share, but meant as one per host, each used from the
    thread that deploys to it."""

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str | None = None,
        *,
        known_hosts: Sequence[StrPath] = (),
        identity_file: StrPath | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.address = host
        self.port = port
        self.user = user
        self.known_hosts = [Path(path) for path in known_hosts]
        self.identity_file = None if identity_file is None else str(identity_file)
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.stall_timeout = stall_timeout
        self._client: paramiko.SSHClient | None = None
        self._watchdog: _Watchdog | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        at = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{at}{self.address}{port}"

    @property
    def tcp_socket(self) -> socket.socket | None:
        """The TCP socket of the open connection (None before the first call)."""
        return self._socket

    # connection ------------------------------------------------------------------------------

    def _connection(self) -> tuple[paramiko.SSHClient, _Watchdog]:
        """The open connection (a new one when there is none, or it was lost) and its watchdog."""
        with self._lock:
            client, watchdog = self._client, self._watchdog
            if client is not None and watchdog is not None:
                transport = client.get_transport()
                if transport is not None and transport.is_active():
                    return client, watchdog
                self._drop()
            client = self._connect()
            transport = client.get_transport()
            assert transport is not None
            transport.set_keepalive(max(1, round(self.keepalive_interval)))
            watchdog = _Watchdog(transport, self.keepalive_interval, self.stall_timeout)
            self._client, self._watchdog = client, watchdog
            return client, watchdog

    def _connect(self) -> paramiko.SSHClient:
        if self.identity_file is not None and not os.path.isfile(self.identity_file):
            raise AuthenticationFailed(
                self.host,
                "connect",
                f"identity_file {self.identity_file} does not exist",
                "give the path of your private key as identity_file in procman.yml (or in "
                "~/.ssh/config), or remove it to use the keys in your ssh-agent",
            )
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_Reject(self))
        self._load_host_keys(client)
        sock = self._open_socket()
        try:
            client.connect(
                self.address,
                port=self.port,
                username=self.user,
                sock=sock,
                key_filename=self.identity_file,
                allow_agent=True,
                look_for_keys=self.identity_file is None,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
            )
        except HostKeyRejected:
            _close_quietly(client, sock)
            raise
        except paramiko.BadHostKeyException as error:
            _close_quietly(client, sock)
            raise self._changed_key(error) from None
        except paramiko.AuthenticationException as error:
            _close_quietly(client, sock)
            raise AuthenticationFailed(
                self.host,
                "connect",
                f"authentication failed ({error})",
                "check the user, and that your key is in the agent or given as identity_file",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as error:
            _close_quietly(client, sock)
            if "No authentication methods available" in str(error):
                raise AuthenticationFailed(
                    self.host,
                    "connect",
                    "no key to offer: the ssh-agent has none and procman.yml gives no "
                    "identity_file",
                    "add your key to the agent (ssh-add), or give its path as identity_file",
                ) from None
            raise HostUnreachable(
                self.host, "connect", f"SSH handshake failed ({_describe(error)})"
            ) from None
        self._socket = sock
        return client

    def _open_socket(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.address, self.port), self.connect_timeout)
        except OSError as error:
            raise HostUnreachable(
                self.host, "connect", f"cannot reach {self.address} port {self.port} "
                f"({_describe(error)})",
                "check the host's address and port in procman.yml (or ~/.ssh/config), and "
                "that it is up and runs sshd",
            ) from None  # fmt: skip
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _load_host_keys(self, client: paramiko.SSHClient) -> None:
        user_file = Path("~/.ssh/known_hosts").expanduser()
        for path in [user_file, *self.known_hosts]:
            if not path.is_file():
                continue
            try:
                client.load_system_host_keys(str(path))
            except paramiko.hostkeys.InvalidHostKey as error:
                raise HostKeyRejected(
                    self.host,
                    "connect",
                    f"{path}:{_line_number(path, error.line)}: not a known_hosts line "
                    f"({excerpt(error.line.strip())})",
                    f"fix or delete that line, then record the host again with "
                    f"ssh-keyscan HOST >> {path}",
                ) from None
            except (OSError, paramiko.SSHException) as error:
                raise HostKeyRejected(
                    self.host, "connect", f"cannot read known_hosts file {path} ({error})"
                ) from None

    def _changed_key(self, error: paramiko.BadHostKeyException) -> HostKeyRejected:
        name = known_hosts_name(self.address, self.port)
        return HostKeyRejected(
            self.host,
            "connect",
            f"HOST KEY CHANGED for {name}: it offers {error.key.get_name()} "
            f"{fingerprint(error.key)}, known_hosts has {fingerprint(error.expected_key)}; "
            "connection refused (the host was reinstalled, or someone is intercepting)",
            f"if the change is expected: ssh-keygen -R '{name}' and then "
            f"ssh-keyscan -p {self.port} {self.address} >> ~/.ssh/known_hosts",
        )

    def _sftp_client(self, step: str) -> tuple[paramiko.SFTPClient, _Watchdog]:
        client, watchdog = self._connection()
        with self._lock, watchdog.in_use():
            if self._sftp is None or self._sftp.sock.closed:
                try:
                    self._sftp = client.open_sftp()
                except (paramiko.SSHException, OSError, EOFError) as error:
                    if watchdog.stalled:
                        raise self._lost(step, watchdog) from None
                    raise TransportError(self.host, step, f"SFTP unavailable ({error})") from None
            return self._sftp, watchdog

    def _drop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = self._socket = self._watchdog = None

    def _lost(
        self, step: str, watchdog: _Watchdog, error: BaseException | None = None
    ) -> ConnectionLost:
        """The error for a connection that dropped or stalled while ``step`` used it."""
        hint = (
            "check that the host is up and its sshd answers; what the step started there may "
            "still be running"
        )
        if watchdog.stalled:
            problem = (
                f"the host stopped answering (no reply to a keepalive within "
                f"{self.stall_timeout:g}s); connection closed"
            )
        else:
            problem = "connection lost"
            if error is not None and not isinstance(error, EOFError):
                problem += f" ({_describe(error)})"
        return ConnectionLost(self.host, step, problem, hint)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # commands --------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        line = command_line(argv)
        step = f"run `{line}`"
        client, watchdog = self._connection()
        with watchdog.in_use():
            return self._run(client, watchdog, line, step, timeout, input)

    def _run(
        self,
        client: paramiko.SSHClient,
        watchdog: _Watchdog,
        line: str,
        step: str,
        timeout: float,
        input: bytes | None,
    ) -> Result:
        transport = client.get_transport()
        assert transport is not None
        deadline = time.monotonic() + timeout
        try:
            channel = transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as error:
            if not transport.is_active():
                raise self._lost(step, watchdog, error) from None
            raise TransportError(self.host, step, f"cannot open a session ({error})") from None
        output = _Output()
        try:
            # The shell's pid first (sshd makes that shell a session leader), so that a timed-out
            # command's whole process group can be killed; the line is taken out of stderr again.
            channel.exec_command(f"echo {_PID_MARKER.decode()}$$ >&2; {line}")
            if input is not None:
                channel.settimeout(max(deadline - time.monotonic(), 0.001))
                channel.sendall(input)
            channel.shutdown_write()
            status = _collect(channel, deadline, output)
        except TimeoutError:
            channel.close()
            self._kill(output.pid())
            problem = f"no exit within {timeout:g}s; stopped"
            raise CommandTimeout(self.host, step, problem) from None
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise self._lost(step, watchdog, error) from None
        finally:
            channel.close()
        if status == -1 and not transport.is_active():
            raise self._lost(step, watchdog, transport.get_exception())
        if status == -1:
            raise TransportError(self.host, step, "ended without an exit status (killed?)")
        return Result(status, output.stdout(), output.stderr())

    def _session(self, step: str, timeout: float) -> tuple[paramiko.Channel, _Watchdog]:
        client, watchdog = self._connection()
        transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_session(timeout=timeout), watchdog
        except (paramiko.SSHException, OSError, EOFError) as error:
            if not transport.is_active():
                raise self._lost(step, watchdog, error) from None
            raise TransportError(self.host, step, f"cannot open a session ({error})") from None

    def stream(self, argv: Sequence[str], *, timeout: float) -> SSHStream:
        line = command_line(argv)
        step = f"run `{line}`"
        channel, watchdog = self._session(step, timeout)
        try:
            channel.set_combine_stderr(True)
            channel.exec_command(line)
        except (paramiko.SSHException, OSError, EOFError) as error:
            channel.close()
            raise self._lost(step, watchdog, error) from None
        return SSHStream(channel, watchdog)

    def interactive(
        self,
        argv: Sequence[str],
        *,
        terminal: Terminal | None,
        size: Callable[[], tuple[int, int]] | None = None,
        timeout: float,
    ) -> int:
        line = command_line(argv)
        step = f"run `{line}`"
        channel, watchdog = self._session(step, timeout)
        # The shell traps SIGINT (a handler: the command gets the default back) so that a
        # command ended by Ctrl-C is reported as 128 + 2, not as a signal paramiko cannot read.
        wrapped = f"trap : INT; {line}; exit $?"
        if terminal is None:  # the shell's pid, to send SIGINT to its group on a Ctrl-C here
            wrapped = f"echo {_PID_MARKER.decode()}$$ >&2; {wrapped}"
        with watchdog.in_use():
            try:
                if terminal is not None:
                    channel.get_pty(terminal.term, terminal.columns, terminal.rows)
                channel.exec_command(wrapped)
                status = _Interactive(self, channel, terminal is not None, size).run()
            except (paramiko.SSHException, OSError, EOFError) as error:
                raise self._lost(step, watchdog, error) from None
            finally:
                channel.close()
        if status == -1 and not watchdog.transport.is_active():
            raise self._lost(step, watchdog, watchdog.transport.get_exception())
        if status == -1:
            raise TransportError(self.host, step, "ended without an exit status (killed?)")
        return status

    def _signal_group(self, pid: int | None, signal_name: str) -> None:
        if pid is None:
            return
        try:
            self.run(["kill", f"-{signal_name}", "--", f"-{pid}"], timeout=KILL_TIMEOUT)
        except TransportError:
            pass

    def _kill(self, pid: int | None) -> None:
        """SIGKILL a timed-out command's process group, over the same connection."""
        if pid is None:
            return
        try:
            self.run(["kill", "-KILL", "--", f"-{pid}"], timeout=KILL_TIMEOUT)
        except TransportError:
            pass

    # files -----------------------------------------------------------------------------------

    def put(self, local_path: StrPath, remote_path: str | PurePosixPath,
            *, timeout: float = TRANSFER_TIMEOUT) -> None:  # fmt: skip
        target = PurePosixPath(remote_path)
        step = f"upload {local_path} to {target}"
        temporary = str(target.with_name(f".{target.name}.procman-{uuid.uuid4().hex[:12]}"))
        sftp, watchdog = self._sftp_client(step)
        _set_timeout(sftp, timeout)
        try:
            with watchdog.in_use():
                sftp.put(os.fspath(local_path), temporary, confirm=True)
                sftp.posix_rename(temporary, str(target))
        except BaseException as error:
            if watchdog.stalled or not watchdog.transport.is_active():
                raise self._lost(step, watchdog, error) from None
            try:
                sftp.remove(temporary)
            except (OSError, paramiko.SSHException, EOFError):
                pass
            if isinstance(error, TimeoutError):
                raise CommandTimeout(self.host, step, f"not done within {timeout:g}s") from None
            if isinstance(error, (OSError, paramiko.SSHException, EOFError)):
                raise self._upload_error(step, error, target) from None
            raise

    def _upload_error(
        self, step: str, error: OSError | paramiko.SSHException | EOFError, target: PurePosixPath
    ) -> TransportError:
        """paramiko reports a write the host's disk had no room for as a short file ("size
        mismatch in put") or a bare "Failure"; name the likely cause."""
        problem = _describe(error)
        if "size mismatch" in problem or problem == "Failure" or _is_no_space(error):
            return TransportError(
                self.host,
                step,
                f"the host did not store the whole file ({problem}): is its disk full?",
                f"free space under {target.parent} (df -h {target.parent}) and deploy again",
            )
        return TransportError(self.host, step, problem)

    def get(self, remote_path: str | PurePosixPath, local_path: StrPath,
            *, timeout: float = TRANSFER_TIMEOUT) -> None:  # fmt: skip
        target = Path(local_path)
        step = f"download {remote_path} to {target}"
        temporary = target.with_name(f".{target.name}.procman-{uuid.uuid4().hex[:12]}")
        sftp, watchdog = self._sftp_client(step)
        _set_timeout(sftp, timeout)
        try:
            with watchdog.in_use():
                sftp.get(str(remote_path), str(temporary))
            os.replace(temporary, target)
        except TimeoutError:
            temporary.unlink(missing_ok=True)
            raise CommandTimeout(self.host, step, f"not done within {timeout:g}s") from None
        except (OSError, paramiko.SSHException, EOFError) as error:
            temporary.unlink(missing_ok=True)
            if watchdog.stalled or not watchdog.transport.is_active():
                raise self._lost(step, watchdog, error) from None
            raise TransportError(self.host, step, _describe(error)) from None


class SSHStream:
    """A streamed command's channel (see ``Transport.stream``); the connection is watched for a
    stalled host while it is open."""

    def __init__(self, channel: paramiko.Channel, watchdog: _Watchdog) -> None:
        self._channel = channel
        self._in_use = watchdog.in_use()
        self._in_use.__enter__()

    def fileno(self) -> int:
        return self._channel.fileno()

    @property
    def ended(self) -> bool:
        channel = self._channel
        return bool(channel.eof_received or channel.closed) and not channel.recv_ready()

    def read(self) -> bytes:
        if self._channel.recv_ready():
            return self._channel.recv(_CHUNK)
        return b""

    def close(self) -> None:
        if self._in_use is not None:
            self._in_use.__exit__(None, None, None)
            self._in_use = None  # type: ignore[assignment]
        self._channel.close()


class _Interactive:
    """Copies this process's standard input to a channel and its output back, until the command
    exits (see ``Transport.interactive``)."""

    def __init__(
        self,
        transport: SSHTransport,
        channel: paramiko.Channel,
        pty: bool,
        size: Callable[[], tuple[int, int]] | None,
    ) -> None:
        self.transport = transport
        self.channel = channel
        self.pty = pty
        self.size = size
        self.err = _Output()
        self.marker_seen = pty
        self.interrupts = 0

    def run(self) -> int:
        channel = self.channel
        stdin_open = _is_open(0)
        if not stdin_open:
            channel.shutdown_write()
        last_size = self.size() if self.size is not None else None
        while True:
            try:
                readers: list[Any] = [channel, 0] if stdin_open else [channel]
                ready, _, _ = select.select(readers, [], [], 0.25)
                if channel in ready or channel.recv_ready() or channel.recv_stderr_ready():
                    self._copy_output()
                if 0 in ready:
                    data = os.read(0, _CHUNK)
                    if data:
                        channel.sendall(data)
                    else:
                        stdin_open = False
                        channel.shutdown_write()
                if self.size is not None:
                    now = self.size()
                    if now != last_size:
                        last_size = now
                        channel.resize_pty(*now)
                if channel.exit_status_ready() and not (
                    channel.recv_ready() or channel.recv_stderr_ready()
                ):
                    break
                if channel.closed and not channel.recv_ready():
                    break
            except KeyboardInterrupt:
                self.interrupts += 1
                if self.pty:  # as if typed (the terminal here is raw); then hang up
                    if self.interrupts == 1:
                        channel.send(b"\x03")
                    else:
                        channel.close()
                    continue
                signal_name = "INT" if self.interrupts == 1 else "KILL"
                self.transport._signal_group(self.err.pid(), signal_name)
        self._copy_output()
        channel.status_event.wait(KILL_TIMEOUT)  # set by the exit status, or by the close
        status = channel.exit_status if channel.status_event.is_set() else -1
        if status == -1 and self.interrupts:
            return 130  # stopped by Ctrl-C here, as a shell reports it
        return status

    def _copy_output(self) -> None:
        channel = self.channel
        while channel.recv_ready():
            _write_all(1, channel.recv(_CHUNK))
        while channel.recv_stderr_ready():
            data = channel.recv_stderr(_CHUNK)
            if self.marker_seen:
                _write_all(2, data)
                continue
            self.err.err += data
            if self.err.pid() is not None:
                self.marker_seen = True
                _write_all(2, self.err.stderr())


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


class _Output:
    """A command's stdout and stderr as they arrive, and the pid the wrapper line reports."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err = bytearray()

    def pid(self) -> int | None:
        at = self._marker()
        end = -1 if at is None else self.err.find(b"\n", at)
        if at is None or end == -1:
            return None
        digits = bytes(self.err[at + len(_PID_MARKER) : end])
        return int(digits) if digits.isdigit() else None

    def stdout(self) -> bytes:
        return b"".join(self.out)

    def stderr(self) -> bytes:
        at = self._marker()
        if at is None:
            return bytes(self.err)
        end = self.err.find(b"\n", at)
        return bytes(self.err[:at] + (self.err[end + 1 :] if end != -1 else b""))

    def _marker(self) -> int | None:
        if self.err.startswith(_PID_MARKER):
            return 0
        at = self.err.find(b"\n" + _PID_MARKER)
        return None if at == -1 else at + 1


class _Watchdog:
    """Watches one connection while commands or transfers use it: every ``interval`` seconds of
    use it asks the host for a reply (``KEEPALIVE_REQUEST``, as ``ssh -o ServerAliveInterval``
    does); when none comes within ``stall_timeout`` (sshd stopped, the host frozen, the network
    gone), it closes the connection, so that whatever waits on it fails at once. One thread per
    connection, asleep between keepalives; one keepalive in flight at a time."""

    def __init__(self, transport: paramiko.Transport, interval: float, stall_timeout: float):
        self.transport = transport
        self.interval = interval
        self.stall_timeout = stall_timeout
        self.stalled = False
        self._users = 0
        self._count = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="procman-ssh-watchdog", daemon=True).start()

    @contextmanager
    def in_use(self) -> Iterator[None]:
        with self._count:
            self._users += 1
        try:
            yield
        finally:
            with self._count:
                self._users -= 1

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval) and self.transport.is_active():
            if self._users and not self._answers() and not self._stopped.is_set():
                self.stalled = True
                self.transport.close()
                return

    def _answers(self) -> bool:
        """Whether the host answers a keepalive within ``stall_timeout`` (or the connection
        ended meanwhile, which whoever uses it sees for themselves)."""
        answered = threading.Event()

        def ask() -> None:
            try:
                self.transport.global_request(KEEPALIVE_REQUEST, wait=True)
            except (paramiko.SSHException, OSError, EOFError):
                pass
            answered.set()

        threading.Thread(target=ask, name="procman-ssh-keepalive", daemon=True).start()
        return answered.wait(self.stall_timeout) or not self.transport.is_active()


def _collect(channel: paramiko.Channel, deadline: float, output: _Output) -> int:
    """Read to the end of the output and the exit status, waiting on the channel (no polling);
    TimeoutError at ``deadline``. A channel closed under it (the connection lost or closed by
    the watchdog) ends the wait at once, with -1 for the status. (A command that ends sends its
    end of output, exit status and close at once: closed may be seen before end of output was,
    and the exit status is there all the same.)"""
    while True:
        while channel.recv_ready():
            output.out.append(channel.recv(_CHUNK))
        while channel.recv_stderr_ready():
            output.err += channel.recv_stderr(_CHUNK)
        if (channel.eof_received or channel.closed) and not channel.recv_ready():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        select.select([channel], [], [], min(remaining, 1.0))
    while channel.recv_ready():
        output.out.append(channel.recv(_CHUNK))
    while channel.recv_stderr_ready():
        output.err += channel.recv_stderr(_CHUNK)
    if not channel.status_event.wait(max(deadline - time.monotonic(), 0)):
        raise TimeoutError
    return channel.recv_exit_status()


def _set_timeout(sftp: paramiko.SFTPClient, timeout: float) -> None:
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(timeout)


def _line_number(path: Path, line: str) -> int | str:
    """Where ``line`` is in ``path`` (1-based), for an error message; "?" if it is not found."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "?"
    wanted = line.strip()
    return next((number for number, text in enumerate(lines, 1) if text.strip() == wanted), "?")


def _is_no_space(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def _describe(error: BaseException) -> str:
    if isinstance(error, EOFError):
        return "connection lost"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _close_quietly(client: paramiko.SSHClient, sock: socket.socket) -> None:
    client.close()
    sock.close()
