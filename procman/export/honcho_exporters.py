"""Exporters written for honcho, usable by ``procman export``: any ``honcho_exporters`` entry
point (honcho's own runit and upstart, or a third party's) that procman has no format of its own
for.

Such an exporter gets what honcho would give it (``ProcessParams`` per instance, with PORT, PS and
the env file values in ``env``; a context of ``app``, ``app_root``, ``log``, ``shell`` and
``user``) and renders its own templates; a ``--template-dir`` overrides them one by one from its
``FORMAT/`` subfolder (honcho itself would replace them all). Its files are written the way
procman's are. procman's escaping guarantees are for its own formats only: these templates are
the exporter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from procman.export.plan import ExportPlan
from procman.export.render import ExportFile, filters
from procman.templating import TemplateError, template_error_location

GROUP = "honcho_exporters"


@dataclass(frozen=True, slots=True)
class HonchoExporter:
    name: str
    entry_point: EntryPoint

    def render(self, plan: ExportPlan, override_dir: Path | None) -> list[ExportFile]:
        import jinja2
        from honcho.environ import ProcessParams  # type: ignore[import-untyped]

        exporter_class = self.entry_point.load()
        own_loader = exporter_class().get_template_loader()
        loaders: list[jinja2.BaseLoader] = [own_loader]
        search: list[str] = [f"the {self.name} exporter's own templates"]
        if override_dir is not None and (override_dir / self.name).is_dir():
            loaders.insert(0, jinja2.FileSystemLoader(str(override_dir / self.name)))
            search.insert(0, str(override_dir / self.name))
        environment = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders))
        environment.filters.update(filters())
        exporter = exporter_class(template_env=environment)
        processes = [
            ProcessParams(instance.name, type.command, False, plan.instance_env(instance))
            for type in plan.types
            for instance in type.instances
        ]
        context: dict[str, Any] = {
            "app": plan.app,
            "app_root": str(plan.root),
            "log": str(plan.log_dir) if plan.log_dir is not None else f"/var/log/{plan.app}",
            "shell": "/bin/sh",
            "user": plan.user,
        }
        try:
            return [
                ExportFile(str(file.name), str(file.content), bool(file.executable))
                for file in exporter.render(processes, context)
            ]
        except jinja2.TemplateNotFound as error:
            raise TemplateError(
                f"{self.name} exporter: no template {error.name} in {', '.join(search)}"
            ) from None
        except jinja2.TemplateError as error:
            where = template_error_location(error, f"the {self.name} exporter's templates")
            raise TemplateError(
                f"{where}: {error.message or type(error).__name__}",
                "fix the template (or the --template-dir copy of it)",
            ) from None


def honcho_exporters() -> dict[str, HonchoExporter]:
    """Every installed ``honcho_exporters`` entry point, by name."""
    return {point.name: HonchoExporter(point.name, point) for point in entry_points(group=GROUP)}
