"""``procman start``: validate the app, expand the formation and supervise it.

The app, its Procfile and its run directory are composed once, in :func:`plan`, and passed along."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from procman.commands import app_dir, load_app_and_procfile, path_with_own_procman
from procman.errors import (
    ConfigError,
    FormationError,
    ProcmanError,
    UsageError,
    collect,
    flag_of,
    raise_collected,
)
from procman.formation import (
    ALL,
    Instance,
    check_names,
    check_types,
    expand,
    parse_formation,
    resolve_counts,
    unknown_type_hint,
)
from procman.ports import check_ports_free
from procman.procfile import Procfile
from procman.queues.private_redis import (
    READY_TIMEOUT,
    RedisPlan,
    plan_redis,
    worker_queue_files,
)
from procman.rundir import RunDir
from procman.settings import (
    STOP_TIMEOUT_VARIABLE,
    VERBOSE_VARIABLE,
    App,
    AppOptions,
)
from procman.supervisor.control.handler import RequestHandler
from procman.supervisor.control.server import ControlServer
from procman.supervisor.logfile import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, RotatingLogFile
from procman.supervisor.output import Prefixer, Sink, StreamStyle
from procman.supervisor.service import Service
from procman.supervisor.spawn import Spawner
from procman.supervisor.supervisor import Policy, Supervisor


@dataclass(frozen=True, slots=True)
class StartOptions:
    app: AppOptions
    names: tuple[str, ...] = ()
    formation: str | None = None
    formation_option: str = "formation"
    """Which option gave ``formation`` (``formation`` or its alias ``concurrency``)."""
    stop_timeout: float = 5.0
    style: StreamStyle = StreamStyle()  # noqa: RUF009 (frozen, so sharing it is safe)
    tty: bool = False
    output_fd: int = 1
    restart: str | None = None
    can_die: str | None = None
    redis_url: str | None = None
    verbose: bool = False
    """Show everything procman's own children print (the private Redis, the worker's RQ log)."""
    log_file: LogFileOptions | None = None
    """Write the log stream to this rotated, capped file instead of ``output_fd``."""


@dataclass(frozen=True, slots=True)
class LogFileOptions:
    path: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS


@dataclass(frozen=True, slots=True)
class Plan:
    app: App
    procfile: Procfile
    counts: dict[str, int]
    policy: Policy
    redis: RedisPlan
    run_dir: RunDir


def plan(options: StartOptions) -> Plan:
    """Everything checked before the first process starts."""
    app, procfile = load_app_and_procfile(options.app)
    check_names(options.names, procfile)
    check_worker_queue_files(options.app, procfile, {**app.shell, **app.env})
    policy = Policy(
        restart=parse_policy(options.restart, procfile, flag_of("restart")),
        can_die=parse_policy(options.can_die, procfile, flag_of("can_die")),
    )
    run_dir = RunDir(app.root)
    requested, saved_in = _requested_counts(options, run_dir, procfile)
    counts = resolve_counts(procfile, requested)
    if options.names:
        counts = {name: (counts[name] or 1) if name in options.names else 0 for name in counts}
    try:
        instances = expand(procfile, counts, app.base_port)
    except FormationError as error:
        if saved_in is None:
            raise
        raise FormationError(
            f"{saved_in}: the formation saved by 'procman scale': {error.message}",
            f"scale it down with 'procman scale', or start with {flag_of('formation')}",
        ) from None
    if not instances:
        if saved_in is not None:
            raise ConfigError(
                f"{saved_in}: the formation saved by 'procman scale' starts no process",
                "scale a type up with 'procman scale TYPE=1', "
                f"or start with {flag_of('formation')}",
            )
        raise ConfigError(
            "the formation starts no process",
            f"give a type a count above 0 with {flag_of(options.formation_option)}",
        )
    check_ports_free(instances)
    redis = plan_redis(app.root, procfile, app.process_env(), options.redis_url)
    return Plan(
        app=app, procfile=procfile, counts=counts, policy=policy, redis=redis, run_dir=run_dir
    )


def check_worker_queue_files(
    options: AppOptions, procfile: Procfile, env: Mapping[str, str] | None = None
) -> None:
    """The queue YAML of each ``procman worker`` in the Procfile, validated as ``procman check``
    does, so a bad one stops the start before the private Redis or any process starts. The queue
    config module (yaml, croniter: about 40 ms) is imported only for such Procfiles; the app's
    ``schedule`` functions are not imported here (that would load the app and its libraries,
    redis among them, into procman itself): ``procman check`` and the worker check those."""
    files = worker_queue_files(app_dir(options), procfile)
    if not files:
        return
    from procman.queues.config import load_queue_config

    errors: list[ProcmanError] = []
    for path in [path for path, required in files if required or path.is_file()]:
        collect(partial(load_queue_config, path, import_funcs=False, env=env), errors)
    raise_collected(errors)


def parse_policy(spec: str | None, procfile: Procfile, option: str) -> frozenset[str]:
    """``web,worker`` or ``all``: the types a policy applies to."""
    if spec is None:
        return frozenset()
    names = {name.strip() for name in spec.split(",") if name.strip()}
    for name in names:
        if name != ALL and procfile.get(name) is None:
            raise UsageError(
                f"{option}: unknown process type {name!r}",
                unknown_type_hint(name, procfile, "; or use 'all'"),
            )
    return frozenset(procfile.names) if ALL in names else frozenset(names)


def start(options: StartOptions) -> int:
    chosen = plan(options)
    app, procfile, run_dir = chosen.app, chosen.procfile, chosen.run_dir
    lock = run_dir.lock()
    try:
        if chosen.redis.server is None:
            run_dir.forget_private_redis()  # left by an earlier start that ran one
        services = _services(chosen.redis, app, run_dir, options.verbose)
        common = _common_environment(options, app, run_dir)
        columns, rows = _terminal_size()
        name_width = max(len(f"{name}.{count}") for name, count in chosen.counts.items())
        supervisor = Supervisor(
            procfile,
            chosen.counts,
            base_port=app.base_port,
            spawner=Spawner(
                app.root, tty=options.tty, columns=columns - name_width - 12, rows=rows
            ),
            environment=lambda instance: _environment(app, chosen.redis, instance, common),
            prefixer=Prefixer(options.style),
            sink=_sink(options),
            stop_timeout=options.stop_timeout,
            policy=chosen.policy,
            control=lambda selector, supervisor: ControlServer(
                run_dir.socket_path, selector, RequestHandler(supervisor)
            ),
            save_formation=run_dir.save_formation,
            services=services,
            notes=[chosen.redis.note] if chosen.redis.note else [],
        )
        return supervisor.run()
    finally:
        if chosen.redis.server is not None:
            try:
                run_dir.forget_private_redis()  # it has stopped with everything else
            except ProcmanError:
                pass
        os.close(lock)


def _sink(options: StartOptions) -> Sink:
    if options.log_file is None:
        return Sink(options.output_fd)
    log = options.log_file
    return RotatingLogFile(log.path, log.max_bytes, log.backups)


def _common_environment(options: StartOptions, app: App, run_dir: RunDir) -> dict[str, str]:
    """What every instance gets beyond the app's environment, worked out once per start."""
    path = app.process_env(unbuffered=False).get("PATH", os.defpath)
    common = {
        "PATH": path_with_own_procman(path, run_dir.path / "bin"),
        STOP_TIMEOUT_VARIABLE: f"{options.stop_timeout:g}",
    }
    if options.verbose:
        common[VERBOSE_VARIABLE] = "1"
    return common


def _environment(
    app: App, redis: RedisPlan, instance: Instance, common: dict[str, str]
) -> dict[str, str]:
    extra = {**common, "PORT": str(instance.port), "PS": instance.name}
    if redis.url is not None:
        extra["REDIS_URL"] = redis.url
    env = app.process_env(extra)
    for variable in redis.unset:
        env.pop(variable, None)
    return env


def _services(redis: RedisPlan, app: App, run_dir: RunDir, verbose: bool) -> list[Service]:
    """The private Redis, its data directory made (under the app's lock: one server per dir)."""
    server = redis.server
    if server is None:
        return []
    try:
        server.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir.record_private_redis(server.url)
    except OSError as error:
        raise ProcmanError(
            f"cannot create {server.data_dir}: {error.strerror}",
            "the private Redis keeps its data there; make the app directory writable, "
            "or set REDIS_URL to a Redis of your own",
        ) from None
    return [
        Service(
            name="redis",
            command=server.command(log_to_stream=verbose),
            env=app.process_env(unbuffered=False),
            ready=server.ready,
            ready_timeout=READY_TIMEOUT,
            about=f"{server.url}, data in {server.data_dir}"
            + ("" if verbose else f", log in {server.log_file.name} there (-v shows it here)"),
        )
    ]


def _requested_counts(
    options: StartOptions, run_dir: RunDir, procfile: Procfile
) -> tuple[dict[str, int], Path | None]:
    """-m wins; else the formation saved by ``procman scale`` (and the file it is in); else one
    of each."""
    if options.formation is not None:
        counts = parse_formation(options.formation, flag_of(options.formation_option))
        check_types(counts, procfile, flag_of(options.formation_option))
        return counts, None
    saved = run_dir.load_formation()
    if saved is None:
        return {}, None
    known = {name: count for name, count in saved.items() if procfile.get(name) is not None}
    return known, run_dir.formation_path


def _terminal_size() -> tuple[int, int]:
    """procman's own terminal, for --tty children (shutil would import compression modules)."""
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return 80, 24
    return size.columns, size.lines
