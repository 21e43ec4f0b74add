"""``procman init``: starter Procfile, queues.yml, procman.yml and .env.example for an existing
app directory, from ``templates/init/``, filled from what it holds. An existing file is never
replaced: it is skipped, and said so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from procman import __version__
from procman.errors import UsageError
from procman.pipeline.files import WriteError, Written, write_atomically
from procman.starter.detect import Detected, detect
from procman.templating import load_templates

STARTER_FILES = {
    "Procfile": "init/Procfile.j2",
    "queues.yml": "init/queues.yml.j2",
    "procman.yml": "init/procman.yml.j2",
    ".env.example": "init/env.example.j2",
}
"""Each file ``procman init`` writes, and its template."""


@dataclass(frozen=True, slots=True)
class InitOptions:
    root: Path = Path(".")
    template_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class InitResult:
    root: Path
    detected: Detected
    files: tuple[tuple[str, Written], ...]
    """Each starter file's name and whether it was created or skipped (it existed)."""


def init(options: InitOptions) -> InitResult:
    """Render every starter file first (a template error writes nothing), then write each that
    does not exist yet."""
    root = options.root
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory", "run procman init in the app's directory")
    detected = detect(root)
    templates = load_templates(options.template_dir)
    context = {"detected": detected, "app": app_name(root), "build": build_command(detected)}
    rendered = {
        name: templates.render(template, context) for name, template in STARTER_FILES.items()
    }
    files: list[tuple[str, Written]] = []
    for name, text in rendered.items():
        try:
            files.append((name, write_atomically(root / name, text, replace=False)))
        except WriteError as error:
            wrote = [done for done, written in files if written is Written.CREATED]
            raise WriteError(
                f"cannot write {root / name}: {error.reason}; "
                + (f"wrote only {', '.join(wrote)}" if wrote else "no starter file was written"),
                "run procman init in a directory you can write to",
            ) from None
    return InitResult(root=root, detected=detected, files=tuple(files))


def app_name(root: Path) -> str:
    """The directory's name as procman.yml's ``app`` allows it (``my app`` -> ``my-app``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name).lstrip("-_.")
    return name or "app"


def build_command(detected: Detected) -> str:
    install = {"requirements.txt": "-r requirements.txt ", "pyproject.toml": ". "}.get(
        detected.dependencies_file or "", ""
    )
    return f"python3 -m venv .venv && .venv/bin/pip install -q {install}procman=={__version__}"
