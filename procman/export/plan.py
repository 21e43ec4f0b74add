"""What ``procman export`` writes, worked out once and checked before any file is rendered: the
app's name and user, the formation expanded with ``procman start``'s ports, the env file values,
and each type's stop timeout."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procman.errors import ConfigError, ProcmanError, UsageError, collect, excerpt, raise_collected
from procman.formation import Instance, check_types, expand, parse_formation, resolve_counts
from procman.procfile import ProcessType, Procfile
from procman.settings import App

DEFAULT_STOP_TIMEOUT = 5.0
"""Seconds from SIGTERM to SIGKILL for a type that runs no ``procman worker`` (foreman's
default, and ``procman start -t``'s)."""
WORKER_STOP_MARGIN = 10.0
"""Seconds beyond its job timeout that a worker gets to finish a job before SIGKILL (as in
``procman deploy``)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""systemd's PATH for services (supervisord passes on its own)."""
_RUNS_PROCMAN = re.compile(r"(^|[\s;&|(])procman(\s|$)")


@dataclass(frozen=True, slots=True)
class ExportedType:
    """One Procfile type and the instances the formation gives it."""

    name: str
    command: str
    """As written in the Procfile."""
    shell_command: str
    """What ``sh -c`` runs: ``exec`` in front of a simple command, as ``procman start`` does."""
    instances: tuple[Instance, ...]
    stop_timeout: float
    job_timeout: int | None
    """The job timeout of the queues.yml its ``procman worker`` reads, if it runs one."""

    @property
    def execs(self) -> bool:
        """Whether the program replaces the shell (so it alone gets the stop signal first)."""
        return self.shell_command != self.command

    @property
    def count(self) -> int:
        return len(self.instances)

    @property
    def first_port(self) -> int:
        return self.instances[0].port


@dataclass(frozen=True, slots=True)
class ExportPlan:
    app: str
    user: str
    root: Path
    procfile: Path
    log_dir: Path | None
    env: Mapping[str, str]
    """The env files' values (PORT and PS are set per instance on top)."""
    types: tuple[ExportedType, ...]

    def instance_env(self, instance: Instance) -> dict[str, str]:
        return {**self.env, "PORT": str(instance.port), "PS": instance.name}


def plan_export(
    app: App,
    procfile: Procfile,
    *,
    app_name: str | None,
    user: str | None,
    log_dir: Path | None,
    formation: str | None,
    saved_formation: Mapping[str, int] | None,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    working_dir: Path | None = None,
) -> ExportPlan:
    """Everything checked (names, formation, ports, queue files) before anything is rendered.
    ``working_dir``: the processes' directory as the user named it (a symlink such as a deploy's
    ``current`` kept, so it is followed at every start), else the app's resolved root."""
    errors: list[ProcmanError] = []
    name = collect(lambda: check_app_name(app_name, app.root), errors)
    owner = collect(lambda: check_user(user, app.root), errors)
    counts = collect(lambda: _counts(procfile, formation, saved_formation), errors)
    raise_collected(errors)
    assert name is not None and owner is not None and counts is not None
    instances = expand(procfile, counts, app.base_port)
    if not instances:
        raise ConfigError(
            "the formation exports no process", "give at least one type a count above 0"
        )
    types = tuple(
        _exported_type(app.root, process, instances, stop_timeout)
        for process in procfile.processes
        if any(instance.type == process.name for instance in instances)
    )
    env = dict(app.env)
    env.setdefault("PYTHONUNBUFFERED", "1")  # else Python holds its output back from the journal
    if "PATH" not in env and any(_RUNS_PROCMAN.search(p.command) for p in procfile.processes):
        # a bare 'procman' in the Procfile runs the procman that exported it, as under start
        env["PATH"] = f"{Path(sys.executable).parent}:{SYSTEM_PATH}"
    return ExportPlan(
        app=name,
        user=owner,
        root=working_dir if working_dir is not None else app.root,
        procfile=app.procfile_path.resolve(),
        log_dir=log_dir.resolve() if log_dir is not None else None,
        env=env,
        types=types,
    )


def check_app_name(given: str | None, root: Path) -> str:
    name = given if given is not None else root.name
    if NAME.fullmatch(name):
        return name
    source = "app name" if given is not None else "the app directory's name, the default app name,"
    raise UsageError(
        f"{source} {excerpt(name)!r} cannot name systemd units or supervisord programs",
        "choose an app name of letters, digits, '_', '.' and '-', starting with a letter or digit",
    )


def check_user(given: str | None, root: Path) -> str:
    """``-u``, else the owner of the app directory (its name, or its uid if it has none)."""
    if given is not None:
        if not USER.fullmatch(given):
            raise UsageError(
                f"{excerpt(given)!r} is not a user name",
                "give the name (or uid) of the user the processes run as",
            )
        return given
    import pwd

    uid = root.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _counts(
    procfile: Procfile, formation: str | None, saved: Mapping[str, int] | None
) -> dict[str, int]:
    """-m wins; else the formation saved by ``procman scale``; else one of each."""
    if formation is not None:
        counts = parse_formation(formation)
        check_types(counts, procfile, "-m/--formation")
        return resolve_counts(procfile, counts)
    known = {name: count for name, count in (saved or {}).items() if procfile.get(name)}
    return resolve_counts(procfile, known)


def _exported_type(
    root: Path, process: ProcessType, instances: list[Instance], stop_timeout: float
) -> ExportedType:
    from procman.supervisor.spawn import shell_command

    job_timeout = worker_job_timeout(root, process)
    stop = stop_timeout
    if job_timeout is not None:
        stop = max(stop, job_timeout + WORKER_STOP_MARGIN)
    return ExportedType(
        name=process.name,
        command=process.command,
        shell_command=shell_command(process.command),
        instances=tuple(instance for instance in instances if instance.type == process.name),
        stop_timeout=stop,
        job_timeout=job_timeout,
    )


def worker_job_timeout(root: Path, process: ProcessType) -> int | None:
    """The job timeout of the queue YAML that ``process`` reads, when it runs ``procman worker``
    (RQ's default 180 s without a queues.yml); None for any other command."""
    from procman.queues.private_redis import worker_queue_files

    files = worker_queue_files(root, Procfile(path="Procfile", processes=(process,)))
    if not files:
        return None
    from procman.queues.config import DEFAULT_TIMEOUT, load_queue_config

    path, required = files[0]
    if not required and not path.is_file():
        return DEFAULT_TIMEOUT
    return load_queue_config(path, import_funcs=False).timeout
