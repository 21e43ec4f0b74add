"""One deploy host: every remote step of a deploy, promotion or rollback, run over its transport.

Each method runs the argv built in ``steps`` and turns a failure into a ``StepFailed`` that names
the host, the step and the tail of what the command printed; a connection lost (or a host that
stopped answering) and a timeout are that step's errors too. Each step is marked under way in a
``Progress`` while it runs. Nothing here decides what happens across hosts; ``pipeline`` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from procman.deploy import steps
from procman.deploy.config import Environment, Host
from procman.deploy.history import HistoryRecord, parse_history
from procman.deploy.progress import Progress
from procman.deploy.release import Artifact
from procman.deploy.transport.base import (
    CommandTimeout,
    ConnectionLost,
    Result,
    Transport,
    TransportError,
)

QUICK = 60.0
"""Seconds for a step that only moves files or reads state."""
BUILD_TIMEOUT = 1800.0
OUTPUT_SHOWN = 15
LOG_LINES_SHOWN = 20
WEB = "web"
RESTART_POLL = 0.2
"""Seconds between two looks at whether restarted instances run again."""


class StepFailed(TransportError):
    """A remote step ran and failed."""


class LockHeld(TransportError):
    def __init__(self, host: str, info: dict[str, str]) -> None:
        super().__init__(
            host,
            "lock",
            f"another deploy holds the lock: {info['holder']} since {info['time']} "
            f"(release {info['release']})",
        )
        self.info = info


@dataclass(frozen=True, slots=True)
class Restarted:
    """What a restart on one host left running."""

    web_ports: tuple[int, ...]
    health: Mapping[int, str]

    @property
    def healthy(self) -> bool:
        return all(status.startswith("2") for status in self.health.values())


def tail(data: bytes, lines: int = OUTPUT_SHOWN) -> str:
    text = data.decode(errors="replace").rstrip("\n")
    return "\n".join(text.splitlines()[-lines:])


class DeployHost:
    """One host of an environment, reached through ``transport``."""

    def __init__(
        self,
        host: Host,
        environment: Environment,
        transport: Transport,
        progress: Progress | None = None,
        shared: Sequence[str] = (".env",),
    ) -> None:
        self.host = host
        self.environment = environment
        self.transport = transport
        self.root = steps.deploy_root(environment.path)
        self.progress = progress or Progress()
        self.shared = shared
        """procman.yml's ``shared``: linked into a release when it is unpacked and at every
        switch to it."""

    @property
    def label(self) -> str:
        return self.transport.host

    def close(self) -> None:
        """Close this host's connection (a ``HostGroup`` does, at its end)."""
        self.transport.close()

    def _command(self, step: str, argv: list[str], timeout: float = QUICK) -> Result:
        """Run ``argv`` as ``step``, marked under way meanwhile; a lost connection or a timeout
        is reported as this step's error."""
        with self.progress.step(self.label, step):
            try:
                return self.transport.run(argv, timeout=timeout)
            except (ConnectionLost, CommandTimeout) as error:
                raise type(error)(self.label, step, error.problem, error.hint) from None

    def _run(
        self, step: str, argv: list[str], timeout: float = QUICK, hint: str | None = None
    ) -> Result:
        return self._ok(step, self._command(step, argv, timeout), hint)

    def _ok(self, step: str, result: Result, hint: str | None = None) -> Result:
        if not result.ok:
            output = tail(result.stdout + result.stderr)
            detail = f": {output}" if output else ""
            raise StepFailed(self.label, step, f"exit status {result.exit_status}{detail}", hint)
        return result

    # -- state -------------------------------------------------------------------------------

    def preflight(self, make_layout: bool = True) -> None:
        result = self._command("check the host", steps.preflight(self.root, make_layout))
        if result.exit_status == steps.MISSING_TOOL_STATUS and result.stdout.startswith(
            b"missing "
        ):
            tool = result.stdout.decode(errors="replace").split()[1]
            raise StepFailed(
                self.label,
                "check the host",
                f"{tool} is not installed",
                f"install it on the host (Debian: apt-get install {_package(tool)})",
            )
        if not result.ok:
            raise StepFailed(
                self.label,
                f"prepare {self.root}",
                tail(result.stdout + result.stderr) or f"exit status {result.exit_status}",
                f"make sure {self.root} can be created and written by this user",
            )

    def current(self) -> str | None:
        return steps.parse_current(
            self._run("read current", steps.read_current(self.root)).stdout.decode()
        )

    def history(self) -> tuple[HistoryRecord, ...]:
        output = self._run("read history", steps.read_history(self.root)).stdout.decode()
        return parse_history(output, f"{self.label}:{steps.history_path(self.root)}")

    def release_state(self, release_id: str) -> tuple[str | None, bool]:
        """The sha256 of the release's artifact on the host (None: not there), and whether the
        release was built here."""
        state = self._run("check release", steps.release_state(self.root, release_id))
        return steps.parse_release_state(state.stdout.decode())

    def releases(self) -> list[str]:
        result = self._command("list releases", steps.list_releases(self.root))
        return steps.parse_releases(result.stdout.decode()) if result.ok else []

    # -- the lock ----------------------------------------------------------------------------

    def lock(self, holder: str, when: str, release_id: str) -> None:
        result = self._command("lock", steps.take_lock(self.root, holder, when, release_id))
        if result.exit_status == steps.LOCK_HELD_STATUS:
            raise LockHeld(self.label, steps.parse_lock_info(result.stdout.decode()))
        if not result.ok:
            raise StepFailed(self.label, "lock", tail(result.stdout + result.stderr))

    def read_lock(self) -> dict[str, str] | None:
        output = self._run("read lock", steps.read_lock(self.root)).stdout.decode()
        if not output.strip():
            return None
        return steps.parse_lock_info(output)

    def unlock(self) -> None:
        self._run("unlock", steps.release_lock(self.root))

    # -- shipping ----------------------------------------------------------------------------

    def stage(
        self, artifact: Artifact, build: str | None, shared: Sequence[str], env_text: str
    ) -> tuple[bool, bool]:
        """Make the release ready to switch to: the artifact on the host with its sha256 checked
        there (uploaded unless already there), unpacked into ``releases/<id>`` with the shared
        paths linked and the environment's env file written, and built, unless this release was
        built here before (then only the env file is written again). Returns (uploaded, built)."""
        release_id = artifact.release_id
        state = self._run("check release", steps.release_state(self.root, release_id))
        present, built = steps.parse_release_state(state.stdout.decode())
        uploaded = present != artifact.sha256
        if uploaded:
            built = False
            with self.progress.step(self.label, "upload"):
                self.transport.put(artifact.path, steps.upload_path(self.root, release_id))
            accept = self._command(
                "verify upload", steps.accept_checked_upload(self.root, release_id, artifact.sha256)
            )
            if accept.exit_status == steps.SHA256_MISMATCH_STATUS:
                actual = accept.stdout.decode(errors="replace").split()[-1]
                raise StepFailed(
                    self.label,
                    "verify upload",
                    f"sha256 is {actual}, expected {artifact.sha256}",
                    "the upload was damaged; deploy again to upload it anew",
                )
            if not accept.ok:
                raise StepFailed(self.label, "accept upload", tail(accept.stdout + accept.stderr))
        if built:
            self.write_env(release_id, env_text)
            return uploaded, False
        unpack = self._command(
            "unpack",
            steps.unpack_release(self.root, release_id, shared, env_text),
            timeout=BUILD_TIMEOUT,
        )
        self._check_shared(unpack)
        if not unpack.ok:
            raise StepFailed(self.label, "unpack", tail(unpack.stdout + unpack.stderr))
        if build:
            self._run(f"build (`{build}`)", steps.run_in_release(self.root, release_id, build),
                      timeout=BUILD_TIMEOUT,
                      hint=f"fix the build: command or the app, check it on the host in "
                      f"{steps.release_dir(self.root, release_id)}, and deploy again")  # fmt: skip
        finish = self._command("check the build", steps.finish_build(self.root, release_id))
        if finish.exit_status == steps.NO_PROCMAN_STATUS:
            raise StepFailed(
                self.label,
                "check the build",
                "procman is not installed in the release (it runs the Procfile on the host)",
                "install it in the build: step, e.g. list procman in requirements.txt",
            )
        if not finish.ok:
            raise StepFailed(self.label, "mark built", tail(finish.stdout + finish.stderr))
        return uploaded, True

    def _check_shared(self, result: Result) -> None:
        """A shared file missing on the host (``steps.MISSING_SHARED_STATUS``) as an error."""
        if result.exit_status != steps.MISSING_SHARED_STATUS:
            return
        missing = result.stdout.decode(errors="replace").strip().removeprefix("missing ")
        raise StepFailed(
            self.label,
            "link shared files",
            f"{steps.shared_dir(self.root)}/{missing} does not exist",
            "create it on the host (it is kept across releases), or remove it from "
            "'shared' in procman.yml",
        )

    def fetch(self, release_id: str, local_path: Path) -> None:
        with self.progress.step(self.label, "download"):
            self.transport.get(steps.artifact_path(self.root, release_id), local_path)

    def write_env(self, release_id: str, env_text: str) -> None:
        path = f"{steps.release_dir(self.root, release_id)}/{steps.DEPLOY_ENV_FILE}"
        self._run("write env", steps.write_file(path, env_text))

    def release_phase(self, release_id: str, command: str) -> None:
        argv = steps.procman_in_release(self.root, release_id, ["run", "--", "sh", "-c", command])
        self._run(f"release phase (`{command}`)", argv, timeout=BUILD_TIMEOUT)

    # -- switching and processes -------------------------------------------------------------

    def read_release_file(self, release_id: str, name: str) -> str | None:
        path = f"{steps.release_dir(self.root, release_id)}/{steps.shared_file(name)}"
        result = self._command(f"read {name}", ["cat", "--", path])
        return result.stdout.decode(errors="replace") if result.ok else None

    def remove_current(self) -> None:
        self._run("remove current", ["rm", "-f", "--", steps.current_link(self.root)])

    def switch(self, release_id: str) -> None:
        """Link the shared paths into the release as ``shared/`` has them now, then point
        ``current`` at it."""
        argv = steps.switch_current(self.root, release_id, self.shared)
        result = self._command("switch current", argv)
        self._check_shared(result)
        self._ok("switch current", result)

    def supervisors(self) -> list[str]:
        result = self._command("list running processes", steps.running_supervisors(self.root))
        return steps.parse_running_supervisors(result.stdout.decode()) if result.ok else []

    def _procman(
        self, step: str, release_id: str, args: list[str], timeout: float = QUICK
    ) -> Result:
        return self._command(step, steps.procman_in_release(self.root, release_id, args), timeout)

    def stop(self, release_id: str, targets: Sequence[str], wait: float) -> None:
        """Stop ``targets`` (all when empty) of the supervisor in ``release_id`` and wait."""
        result = self._procman(
            f"stop {release_id}",
            release_id,
            ["stop", *targets, "--wait", f"{wait:g}"],
            timeout=wait + QUICK,
        )
        if not result.ok and b"no procman is running" not in result.stderr:
            raise StepFailed(self.label, f"stop {release_id}", tail(result.stdout + result.stderr))

    def restart(
        self, release_id: str, formation: Mapping[str, int], stop_timeout: float
    ) -> Restarted:
        """Run ``formation`` from ``release_id`` in place of whatever ran before. On a host with
        web: web first (the old web stopped, the new one started and health-checked), then the
        other types (the old supervisor stopped gracefully, waiting up to ``stop_timeout`` for
        running jobs, the new one scaled up). On a host without web: the old supervisor stopped
        gracefully, then the new one started; old and new workers never overlap."""
        running = self.supervisors()
        old = [r for r in running if r != release_id]
        if release_id in running:
            self.stop(release_id, [], stop_timeout)
        wanted = {name: count for name, count in formation.items() if count > 0}
        web_first = WEB in wanted and len(wanted) > 1
        for previous in old:
            self.stop(previous, [WEB] if WEB in wanted else [], stop_timeout)
        if not wanted:
            return Restarted((), {})
        first = {name: (count if not web_first or name == WEB else 0)
                 for name, count in formation.items()}  # fmt: skip
        started = self._command(
            "start processes",
            steps.start_supervisor(
                self.root,
                release_id,
                _formation_text(first),
                stop_timeout,
                list_processes=first.get(WEB, 0) > 0,  # the web ports, for the health check
            ),
            timeout=steps.UP_TIMEOUT + QUICK,
        )
        if not started.ok:
            raise StepFailed(
                self.label,
                "start processes",
                f"procman start exited or did not answer within {steps.UP_TIMEOUT}s; its log:\n"
                + self.log_tail(release_id),
            )
        processes: list[dict[str, object]] = json.loads(started.stdout)
        web_ports = tuple(
            int(str(p["port"])) for p in processes if p["type"] == WEB and p.get("port")
        )
        health = self.health(web_ports) if web_ports else {}
        result = Restarted(web_ports, health)
        if not result.healthy:
            return result
        for previous in old:
            self.stop(previous, [], stop_timeout)
        if web_first:
            rest = [f"{name}={count}" for name, count in formation.items() if name != WEB]
            self._run_procman(release_id, ["scale", *rest], "scale up")
        return result

    def processes(self, release_id: str) -> list[dict[str, object]]:
        """``procman ps --json`` of the supervisor running ``release_id`` here."""
        listed = self._procman(f"ps {release_id}", release_id, ["ps", "--json"])
        if not listed.ok:
            raise StepFailed(self.label, f"ps {release_id}", tail(listed.stdout + listed.stderr))
        try:
            processes: list[dict[str, object]] = json.loads(listed.stdout)
        except ValueError:
            raise StepFailed(self.label, f"ps {release_id}", "unexpected output") from None
        return processes

    def restart_types(
        self, release_id: str, types: Sequence[str], stop_timeout: float
    ) -> Restarted:
        """Restart the instances of ``types`` in the supervisor running ``release_id``, gracefully
        (each stopped as ``procman restart`` stops it, within ``stop_timeout``), and wait until
        every one of them runs again with a new pid (up to ``stop_timeout`` plus
        ``steps.UP_TIMEOUT`` seconds); then the web instances are health-checked."""
        if release_id not in self.supervisors():
            raise StepFailed(
                self.label,
                f"restart {', '.join(types)}",
                f"procman is not running {release_id} here (stopped, or the host restarted)",
                "restart every type of the environment, which starts it",
            )
        before = {
            str(p["name"]): p.get("pid") for p in self.processes(release_id) if p["type"] in types
        }
        if not before:
            return Restarted((), {})
        self._run_procman(release_id, ["restart", *types], f"restart {', '.join(types)}")
        step = f"wait for {', '.join(types)} to run again"
        deadline = time.monotonic() + stop_timeout + steps.UP_TIMEOUT
        with self.progress.step(self.label, step):
            while True:
                now = {str(p["name"]): p for p in self.processes(release_id) if p["name"] in before}
                waiting = [
                    name
                    for name, old_pid in before.items()
                    if name not in now
                    or now[name].get("state") != "running"
                    or now[name].get("pid") in (None, old_pid)
                ]
                if not waiting:
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(
                        self.label,
                        step,
                        f"{', '.join(waiting)} not running again after "
                        f"{stop_timeout + steps.UP_TIMEOUT:g}s; the log:\n"
                        + self.log_tail(release_id),
                    )
                time.sleep(RESTART_POLL)
        web_ports = tuple(
            int(str(p["port"])) for p in now.values() if p["type"] == WEB and p.get("port")
        )
        return Restarted(web_ports, self.health(web_ports) if web_ports else {})

    def _run_procman(self, release_id: str, args: list[str], step: str) -> None:
        result = self._procman(step, release_id, args)
        if not result.ok:
            raise StepFailed(self.label, step, tail(result.stdout + result.stderr))

    def health(self, ports: Sequence[int]) -> dict[int, str]:
        check = self.environment.healthcheck
        result = self._command(
            "health check",
            steps.health_check(check.path, check.timeout, ports),
            timeout=check.timeout + QUICK,
        )
        try:
            return steps.parse_health(result.stdout.decode())
        except steps.StepError as error:
            raise StepFailed(self.label, "health check", error.message) from None

    def log_tail(
        self, release_id: str, lines: int = LOG_LINES_SHOWN, only: str | None = None
    ) -> str:
        result = self._command("read the log", steps.tail_log(self.root, release_id, 2000))
        text = result.stdout.decode(errors="replace").splitlines()
        if only is not None:
            text = [line for line in text if f" {only}." in line.split("|", 1)[0] + " "]
        return "\n".join(text[-lines:])

    def stop_all(self, wait: float) -> None:
        for release_id in self.supervisors():
            self.stop(release_id, [], wait)

    # -- files kept for the environment (shared/.env, the formation) -------------------------

    def read_kept(self, path: str) -> str | None:
        """The text of ``path`` on the host, None when there is no such file."""
        output = self._run(f"read {path}", steps.read_kept_file(path)).stdout
        try:
            return steps.parse_kept_file(output.decode())
        except (steps.StepError, UnicodeDecodeError) as error:
            raise StepFailed(self.label, f"read {path}", str(error)) from None

    def stage_kept(self, path: str, text: str) -> None:
        self._run(f"write {path}", steps.stage_file(path, text))

    def commit_kept(self, path: str) -> None:
        self._run(f"replace {path}", steps.commit_file(path))

    def discard_kept(self, path: str) -> None:
        self._run(f"clean up next to {path}", steps.discard_staged(path))

    def restore_kept(self, path: str) -> None:
        self._run(f"put back {path}", steps.restore_file(path))

    def scaled_formation(self) -> dict[str, int]:
        """The counts ``procman scale --env`` set for the environment (totals; none yet: {})."""
        path = steps.formation_path(self.root)
        text = self.read_kept(path)
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in data.items()
        ):
            raise StepFailed(
                self.label,
                f"read {path}",
                "not a JSON object of counts",
                'fix it (like {"worker": 2}), or remove it to use procman.yml\'s formation',
            )
        return data

    def scale(self, release_id: str, counts: Mapping[str, int]) -> None:
        """Scale the supervisor running ``release_id`` to ``counts`` (live; it saves them)."""
        self._run_procman(release_id, ["scale", *(f"{k}={v}" for k, v in counts.items())], "scale")

    # -- records -----------------------------------------------------------------------------

    def append_history(self, record: HistoryRecord) -> None:
        self._run("record history", steps.append_history(self.root, record.to_json_line()))

    def prune(self, keep: int, protect: Sequence[str | None]) -> list[str]:
        """Remove releases beyond ``keep`` (see ``steps.releases_to_prune``); never-healthy
        releases, by this host's history, go first."""
        healthy = {record.release_id for record in self.history() if record.healthy}
        releases = self.releases()
        failed = [release for release in releases if release not in healthy]
        doomed = steps.releases_to_prune(releases, keep, protect, failed)
        if doomed:
            self._run("prune releases", steps.remove_releases(self.root, doomed))
        return doomed

    # -- is it up? ---------------------------------------------------------------------------

    def liveness(self, release_id: str, web: bool) -> str | None:
        """Why ``release_id`` is not running healthily here now, or None when it is: a
        ``procman start`` must run it and, with ``web``, every web instance answer the health
        check (waiting up to its timeout)."""
        if release_id not in self.supervisors():
            return "procman is not running it (stopped, or the host restarted)"
        if not web:
            return None
        listed = self._procman(f"ps {release_id}", release_id, ["ps", "--json"])
        try:
            processes: list[dict[str, object]] = json.loads(listed.stdout) if listed.ok else []
        except ValueError:
            processes = []
        ports = [int(str(p["port"])) for p in processes if p.get("type") == WEB and p.get("port")]
        if not ports:
            return "web is not running"
        failing = [
            f"port {port}: {status}"
            for port, status in self.health(ports).items()
            if not status.startswith("2")
        ]
        if not failing:
            return None
        check = self.environment.healthcheck
        return f"GET {check.path} did not answer 2xx within {check.timeout}s ({', '.join(failing)})"


def _formation_text(formation: Mapping[str, int]) -> str:
    return ",".join(f"{name}={count}" for name, count in formation.items())


def _package(tool: str) -> str:
    return {
        "sha256sum": "coreutils",
        "setsid": "util-linux",
        "flock": "util-linux",
        "find": "findutils",
    }.get(tool, tool)
