"""``procman check``: validate everything procman can find for an app, without running anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procman.commands import app_dir as app_dir_of
from procman.commands import load_app_and_procfile
from procman.errors import ProcmanError, collect, raise_collected
from procman.procfile import Procfile
from procman.settings import App, AppOptions

if TYPE_CHECKING:
    from procman.deploy.config import DeployConfig
    from procman.queues.config import QueueConfig


@dataclass(frozen=True, slots=True)
class CheckReport:
    app: App
    procfile: Procfile
    queues: QueueConfig | None = None
    """The queue YAML, when the app has one (or -C/--config named one)."""
    deploy: DeployConfig | None = None
    """procman.yml, when the app directory has one."""

    @property
    def warnings(self) -> tuple[str, ...]:
        """The queue YAML's: keys read but not acted on (a sidekiq.yml's plugins...)."""
        return self.queues.warnings if self.queues is not None else ()

    def summary(self) -> str:
        parts = [f"valid Procfile: {', '.join(self.procfile.names)}"]
        for path in self.app.env_files:
            parts.append(f"valid env file {path}")
        if self.app.env_files:
            count = len(self.app.env)
            parts.append(f"{count} variable{'' if count == 1 else 's'}")
        if self.queues is not None:
            parts.append(f"valid {self.queues.path}: {self.queues.summary()}")
        if self.deploy is not None:
            parts.append(f"valid {self.deploy.path}: {self.deploy.summary()}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The report as data; passwords in URL values of the env are hidden (``***``), as
        everywhere procman shows a URL."""
        from procman.queues.redis_url import redact

        return {
            "procfile": str(self.app.procfile_path),
            "root": str(self.app.root),
            "processes": [
                {"name": p.name, "command": p.command, "line": p.line}
                for p in self.procfile.processes
            ],
            "env_files": [str(path) for path in self.app.env_files],
            "env": {name: redact(value) for name, value in self.app.env.items()},
            "port": self.app.base_port,
            "queues": self.queues.as_json() if self.queues is not None else None,
            "deploy": self.deploy.as_json() if self.deploy is not None else None,
        }


def check(options: AppOptions, queue_config: Path | None = None) -> CheckReport:
    """Raise every problem found (ManyErrors when several); otherwise what was parsed.

    The queue YAML is ``queue_config`` if given (it must exist), else ``queues.yml`` in the app
    directory if there is one; ``procman.yml`` is checked when the app directory has one (its
    roles and formation against the Procfile, when the Procfile itself is valid)."""
    errors: list[ProcmanError] = []
    loaded = collect(lambda: load_app_and_procfile(options), errors)
    env = {**loaded[0].shell, **loaded[0].env} if loaded is not None else None
    queues = collect(lambda: _load_queues(options, queue_config, env), errors)
    if loaded is not None and queue_config is None:
        _check_worker_queue_files(options, loaded[1], errors, env)
    deploy = collect(lambda: _load_deploy(options, loaded[1] if loaded else None), errors)
    raise_collected(errors)
    assert loaded is not None
    app, procfile = loaded
    return CheckReport(app=app, procfile=procfile, queues=queues, deploy=deploy)


def _load_deploy(options: AppOptions, procfile: Procfile | None) -> DeployConfig | None:
    from procman.deploy.config import default_path, load_deploy_config

    path = default_path(app_dir_of(options))
    return load_deploy_config(path, procfile) if path.is_file() else None


def _check_worker_queue_files(
    options: AppOptions,
    procfile: Procfile,
    errors: list[ProcmanError],
    env: Mapping[str, str] | None,
) -> None:
    """The queue YAMLs that the Procfile's ``procman worker -C FILE`` lines name, beyond the
    default one already checked: ``procman start`` would refuse them too."""
    from procman.queues.config import default_path, load_queue_config
    from procman.queues.private_redis import worker_queue_files

    app_dir = app_dir_of(options)
    done = {default_path(app_dir).resolve()}
    for path, must_exist in worker_queue_files(app_dir, procfile):
        if path.resolve() in done or (not must_exist and not path.is_file()):
            continue
        done.add(path.resolve())
        collect(lambda path=path: load_queue_config(path, app_dir=app_dir, env=env), errors)  # type: ignore[misc]


def _load_queues(
    options: AppOptions, explicit: Path | None, env: Mapping[str, str] | None
) -> QueueConfig | None:
    from procman.queues.config import default_path, load_queue_config

    app_dir = app_dir_of(options)
    path = explicit if explicit is not None else default_path(app_dir)
    if explicit is None and not path.is_file():
        return None
    return load_queue_config(path, app_dir=app_dir, env=env)
