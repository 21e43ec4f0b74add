"""procman's file templates: the packaged set under ``templates/``, each overridable by name.

Every file procman generates (systemd units, supervisord configs, CI pipelines, starter files,
the dashboard's pages) is rendered from a Jinja2 template kept as a file. A user's
``--template-dir`` is searched first and may hold any subset: a name it lacks falls back to
procman's own (unlike honcho, whose ``template_dir`` replaces the whole set).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from procman.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


class TemplateError(ConfigError):
    """A template is missing, does not parse, or fails while rendering."""


def packaged_templates_dir() -> Path:
    """procman's own templates: ``procman/templates`` in a wheel, else the source tree's."""
    installed = _PACKAGE_DIR / "templates"
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / "templates"


@dataclass(frozen=True, slots=True)
class Templates:
    """The template search path (an override directory first, then procman's own) and its Jinja2
    environment."""

    search_path: tuple[Path, ...]
    environment: jinja2.Environment

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render template ``name`` (e.g. ``systemd/process.service.j2``) with ``context``."""
        try:
            template = self.environment.get_template(name)
        except jinja2.TemplateNotFound:
            searched = ", ".join(str(directory) for directory in self.search_path)
            raise TemplateError(f"no template {name} in {searched}") from None
        except jinja2.TemplateSyntaxError as error:
            where = f"{error.filename or name}:{error.lineno}"
            raise TemplateError(f"{where}: {error.message}", "fix the template's syntax") from None
        try:
            return template.render(context)
        except jinja2.TemplateError as error:
            where = _template_line(error, self.search_path, template.filename or name)
            raise TemplateError(
                f"{where}: {error.message or type(error).__name__}",
                "the template uses a value procman does not provide, or uses it wrongly",
            ) from None

    def source_of(self, name: str) -> Path:
        """The file template ``name`` would be read from."""
        for directory in self.search_path:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(directory) for directory in self.search_path)
        raise TemplateError(f"no template {name} in {searched}")


def load_templates(
    override_dir: Path | None = None, filters: Mapping[str, Any] | None = None
) -> Templates:
    """The templates, with ``override_dir`` (a user's ``--template-dir``) searched first."""
    search_path: list[Path] = []
    if override_dir is not None:
        if not override_dir.is_dir():
            raise TemplateError(
                f"template directory {override_dir} does not exist or is not a directory",
                "give a directory holding the templates you want to override",
            )
        search_path.append(override_dir)
    search_path.append(packaged_templates_dir())
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(directory) for directory in search_path]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "html.j2"), default_for_string=False
        ),
    )
    environment.filters.update(filters or {})
    return Templates(search_path=tuple(search_path), environment=environment)


def _template_line(error: BaseException, search_path: tuple[Path, ...], fallback: str) -> str:
    """``file:line`` of the innermost template frame in ``error``'s traceback (Jinja2 rewrites
    template frames to carry the template's own file name and line)."""
    roots = tuple(str(directory) for directory in search_path)
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith(roots):
            return f"{frame.filename}:{frame.lineno}"
    return fallback


def template_error_location(error: BaseException, fallback: str) -> str:
    """``file:line`` of a Jinja2 error raised from templates procman did not load itself (an
    exporter's own): the syntax error's file and line, else the innermost template frame."""
    import jinja2

    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"{error.filename or error.name or fallback}:{error.lineno}"
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not frame.filename.endswith(".py") and not frame.filename.startswith("<"):
            return f"{frame.filename}:{frame.lineno}"
    return fallback
