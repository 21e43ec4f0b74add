"""``procman dashboard``: the web dashboard for the app in a directory, served or mounted.

The app's Redis and queue YAML are resolved as for ``procman jobs`` (:func:`resolve_target`),
the running ``procman start`` is asked for its processes over the control socket on each page,
and the credentials come from the environment (``procman.dashboard.security``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from procman.commands.jobs import JobsOptions, resolve_target
from procman.errors import ProcmanError
from procman.exitcodes import ExitStatus
from procman.rundir import RunDir
from procman.settings import AppOptions, app_root

if TYPE_CHECKING:
    from flask import Flask

    from procman.dashboard.app import Processes

DEFAULT_PORT = 9181
DEFAULT_BIND = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    jobs: JobsOptions
    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND


def build(options: JobsOptions, *, require_credentials: bool, check_redis: bool = False) -> Flask:
    """The dashboard's WSGI application for the app ``options`` name. With
    ``require_credentials``, refuse to build it without credentials in the environment; with
    ``check_redis``, without a Redis that answers (a mounted dashboard is built when the app
    starts, which a Redis away at that moment must not stop: its pages say so instead)."""
    from procman.dashboard.app import Sources, create_app
    from procman.dashboard.security import NoCredentials, credentials_from
    from procman.queues.browse import Store
    from procman.queues.connection import connect

    credentials = credentials_from(os.environ)
    if credentials is None and require_credentials:
        raise NoCredentials(
            "refusing to build the dashboard without a password: mounted in an app, anyone who "
            "can reach the app could retry and delete jobs",
            "set PROCMAN_DASHBOARD_USER and PROCMAN_DASHBOARD_PASSWORD (or "
            "PROCMAN_DASHBOARD_PASSWORD_HASH), or pass allow_anonymous=True when the app "
            "protects the dashboard's URLs itself",
        )
    target = resolve_target(options)
    if check_redis:
        connect(target.url).close()  # an unreachable Redis is one line now, not a broken page
    root = app_root(options.app)
    sources = Sources(
        store=Store(target.url, target.config),
        processes=processes_of(RunDir(root)),
        credentials=credentials,
        app_name=root.resolve().name,
    )
    return create_app(sources)


def processes_of(run_dir: RunDir) -> Callable[[], Processes]:
    """Asks the ``procman start`` running in ``run_dir`` for its snapshot, each time called."""
    from procman.dashboard.app import Processes
    from procman.supervisor.control.client import ControlClient, NotRunning
    from procman.supervisor.control.protocol import snapshot_from_reply

    def ask() -> Processes:
        try:
            reply = ControlClient(run_dir.socket_path, run_dir.root).request({"verb": "ps"})
        except NotRunning:
            return Processes(None, f"no 'procman start' is running in {run_dir.root}")
        except ProcmanError as error:
            return Processes(None, str(error))
        return Processes(snapshot_from_reply(reply), "")

    return ask


def wsgi_app(
    root: str | os.PathLike[str] = ".",
    *,
    env_files: tuple[str, ...] = (),
    config: str | os.PathLike[str] | None = None,
    redis_url: str | None = None,
    allow_anonymous: bool = False,
) -> Flask:
    """The dashboard to mount in the app's own web server (see docs/dashboard.md)."""
    from pathlib import Path

    app = AppOptions(root=Path(root), env_files=tuple(Path(name) for name in env_files))
    options = JobsOptions(
        app=app, config_path=None if config is None else Path(config), redis_url=redis_url
    )
    return build(options, require_credentials=not allow_anonymous)


def serve(options: DashboardOptions, ready: Callable[[str], None]) -> int:
    """Serve the dashboard until interrupted; ``ready(url)`` once it listens."""
    from werkzeug.serving import make_server

    from procman.dashboard.security import credentials_from, require_credentials_off_loopback

    require_credentials_off_loopback(options.bind, credentials_from(os.environ))
    app = build(options.jobs, require_credentials=False, check_redis=True)
    try:
        server = make_server(options.bind, options.port, app, threaded=True)
    except OSError as error:
        raise ProcmanError(
            f"cannot serve the dashboard on {options.bind}:{options.port}: "
            f"{error.strerror or error}",
            "choose another port, or stop what is using this one",
        ) from None
    host = f"[{options.bind}]" if ":" in options.bind else options.bind
    ready(f"http://{host}:{server.server_port}/")
    try:
        server.serve_forever()  # returns on Ctrl-C (werkzeug catches KeyboardInterrupt)
    finally:
        server.server_close()
    return int(ExitStatus.SIGINT)
