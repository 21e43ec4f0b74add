"""``procman export FORMAT DIR``: write the app's units for systemd, supervisord or a honcho
exporter. Everything is checked and rendered before the first file is written."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from procman.commands import load_app_and_procfile
from procman.errors import UsageError, did_you_mean
from procman.export.plan import DEFAULT_STOP_TIMEOUT, plan_export
from procman.export.writer import Written, write_export
from procman.rundir import RunDir
from procman.settings import AppOptions

OWN_FORMATS = ("systemd", "supervisord")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    app: AppOptions
    format: str
    directory: Path
    app_name: str | None = None
    user: str | None = None
    log_dir: Path | None = None
    formation: str | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    template_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Exported:
    format: str
    app: str
    written: Written


def formats() -> list[str]:
    """procman's own formats, then the honcho exporters installed."""
    from procman.export.honcho_exporters import honcho_exporters

    return [*OWN_FORMATS, *sorted(set(honcho_exporters()) - set(OWN_FORMATS))]


def export(options: ExportOptions) -> Exported:
    known = formats()
    if options.format not in known:
        raise UsageError(
            f"unknown export format {options.format!r}",
            did_you_mean(options.format, known, f"the formats are: {', '.join(known)}"),
        )
    app, procfile = load_app_and_procfile(options.app)
    plan = plan_export(
        app,
        procfile,
        app_name=options.app_name,
        user=options.user,
        log_dir=options.log_dir,
        formation=options.formation,
        saved_formation=RunDir(app.root).load_formation() if options.formation is None else None,
        stop_timeout=options.stop_timeout,
        working_dir=Path(os.path.abspath(options.app.root)) if options.app.root else None,
    )
    directory = Path(os.path.abspath(options.directory))
    if options.format in OWN_FORMATS:
        from procman.export.render import RENDERERS, export_templates

        templates = export_templates(options.template_dir)
        files = RENDERERS[options.format](plan, templates, directory)
    else:
        from procman.export.honcho_exporters import honcho_exporters

        files = honcho_exporters()[options.format].render(plan, options.template_dir)
    return Exported(options.format, plan.app, write_export(directory, plan.app, files))
