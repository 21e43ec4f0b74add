"""Rendering an :class:`ExportPlan` into the files of a format, from the templates in
``templates/systemd/`` and ``templates/supervisord/`` (a ``--template-dir`` may override any)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procman.export import escaping
from procman.export.plan import ExportedType, ExportPlan
from procman.templating import Templates, load_templates


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file to write: ``name`` relative to the export directory."""

    name: str
    content: str
    executable: bool = False


def seconds(value: float) -> str:
    """``5`` or ``2.5``: a number of seconds both systemd and supervisord read (supervisord
    takes whole seconds only: rounded up)."""
    return f"{value:g}"


def filters() -> dict[str, Callable[..., str]]:
    """The filters every export template may use: procman's escapers, and honcho's
    ``shellquote``, ``percentescape`` and ``dashrepl`` (the names honcho's templates use)."""
    from honcho.export.base import dashrepl, percentescape  # type: ignore[import-untyped]

    return {
        "systemd_word": escaping.systemd_word,
        "systemd_assignment": escaping.systemd_assignment,
        "systemd_path": lambda value: escaping.systemd_path(str(value)),
        "systemd_text": lambda value: escaping.systemd_text(str(value)),
        "supervisor_word": escaping.supervisor_word,
        "supervisor_path": lambda value: escaping.supervisor_path(str(value)),
        "one_line": lambda value: escaping.systemd_text(str(value)).replace("%%", "%"),
        "seconds": seconds,
        "shellquote": escaping.shell_quote,
        "percentescape": percentescape,
        "dashrepl": dashrepl,
    }


def export_templates(override_dir: Path | None) -> Templates:
    return load_templates(override_dir, filters=filters())


def _common(plan: ExportPlan, directory: Path) -> dict[str, Any]:
    return {
        "app": plan.app,
        "user": plan.user,
        "root": str(plan.root),
        "procfile": str(plan.procfile),
        "log_dir": str(plan.log_dir) if plan.log_dir is not None else None,
        "directory": str(directory),
        "types": plan.types,
    }


def render_systemd(plan: ExportPlan, templates: Templates, directory: Path) -> list[ExportFile]:
    """``APP.target`` and one ``APP-TYPE.N.service`` per instance."""
    common = _common(plan, directory)
    services = [
        f"{plan.app}-{instance.name}.service" for type in plan.types for instance in type.instances
    ]
    files = [
        ExportFile(
            f"{plan.app}.target",
            templates.render("systemd/app.target.j2", {**common, "services": services}),
        )
    ]
    for type in plan.types:
        for instance in type.instances:
            context = {
                **common,
                "type": type,
                "instance": instance,
                "env": plan.instance_env(instance),
            }
            files.append(
                ExportFile(
                    f"{plan.app}-{instance.name}.service",
                    templates.render("systemd/process.service.j2", context),
                )
            )
    return files


def supervisor_command(type: ExportedType, env_file: Path) -> str:
    """``command=`` for a supervisord program of ``numprocs`` instances: sh reads the env file,
    sets PORT and PS from supervisord's ``%(process_num)d`` (1, 2, ...) as ``procman start``
    numbers them, then runs the Procfile command (``exec``'d when it is a simple command)."""
    word = escaping.supervisor_word
    number = "%(process_num)d"
    script = (
        word(f"set -a; . {escaping.shell_quote(str(env_file))}; PORT=$(({type.first_port - 1}+")
        + number
        + word(f")); PS={type.name}.")
        + number
        + word("; set +a; " + type.shell_command, f"the command of {type.name}")
    )
    return f"/bin/sh -c {script}"


def render_supervisord(plan: ExportPlan, templates: Templates, directory: Path) -> list[ExportFile]:
    """``APP.conf`` (a program per type, a group for the app) and ``APP.env`` beside it."""
    env_file = directory / f"{plan.app}.env"
    commands = {type.name: supervisor_command(type, env_file) for type in plan.types}
    common = {**_common(plan, directory), "commands": commands, "env": plan.env}
    return [
        ExportFile(f"{plan.app}.conf", templates.render("supervisord/app.conf.j2", common)),
        ExportFile(f"{plan.app}.env", templates.render("supervisord/app.env.j2", common)),
    ]


RENDERERS: Mapping[str, Callable[[ExportPlan, Templates, Path], list[ExportFile]]] = {
    "systemd": render_systemd,
    "supervisord": render_supervisord,
}
"""procman's own formats; other names are looked up among honcho's exporters."""
