"""What kind of app a directory holds: a Django project (``manage.py``), a FastAPI or Flask app
(an ``app = FastAPI(...)``, ``app = Flask(...)`` or a Flask ``create_app`` factory in its Python
files), and which of gunicorn, uvicorn, rq and pytest its dependencies name.

Reading only: a bounded number of small files, nothing imported or run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from procman.starter.requirements import names_in_pyproject, names_in_requirements

MAX_FILES = 500
MAX_BYTES = 256 * 1024
SKIPPED_DIRS = {"venv", "env", "node_modules", "site-packages", "build", "dist", "tests", "test"}

_DJANGO_SETTINGS = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"](?P<module>[\w.]+)['"]""")
_FASTAPI = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?::[^=\n]*)?=\s*FastAPI\(", re.M)
_FLASK = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?::[^=\n]*)?=\s*Flask\(", re.M)
_FACTORY = re.compile(r"^def (?P<name>create_app|make_app)\(", re.M)
_IMPORTS_FLASK = re.compile(r"^\s*(?:from flask import|import flask)\b", re.M)


@dataclass(frozen=True, slots=True)
class Detected:
    """What ``procman init`` found, and the commands it derives from it."""

    framework: str | None
    """``django``, ``fastapi``, ``flask``, or None when no app was found."""
    target: str | None
    """What the server loads: ``mysite.wsgi``, ``main:app``, ``app:create_app()``."""
    server: str
    """``gunicorn`` or ``uvicorn``."""
    server_listed: bool
    """Whether the dependencies name the server (else the Procfile says to add it)."""
    dependencies_file: str | None
    """``requirements.txt`` or ``pyproject.toml``, whichever was read."""
    dependencies: frozenset[str]
    findings: tuple[str, ...]
    """What was found, in words, for the user: ``manage.py (Django, settings mysite.settings)``."""

    @property
    def uses_rq(self) -> bool:
        return "rq" in self.dependencies

    @property
    def web_command(self) -> str:
        target = self.target or "app:app"
        if self.server == "uvicorn":
            if self.framework == "django":
                target = f"{target.removesuffix('.wsgi')}.asgi:application"
            factory = " --factory" if target.endswith("()") else ""
            target = target.removesuffix("()")
            return f"uvicorn {shlex.quote(target)}{factory} --host 0.0.0.0 --port $PORT"
        worker = (
            " --worker-class uvicorn.workers.UvicornWorker" if self.framework == "fastapi" else ""
        )
        return f"gunicorn {shlex.quote(target)} --bind 0.0.0.0:$PORT{worker} --access-logfile -"

    @property
    def test_command(self) -> str:
        if "pytest" in self.dependencies or self.framework != "django":
            return "python -m pytest -q"
        return "python manage.py test"

    @property
    def release_command(self) -> str | None:
        if self.framework == "django":
            return ".venv/bin/python manage.py migrate --noinput"
        return None

    @property
    def settings_module(self) -> str | None:
        if self.framework == "django" and self.target:
            return f"{self.target.removesuffix('.wsgi')}.settings"
        return None


def detect(app_dir: Path) -> Detected:
    findings: list[str] = []
    dependencies, dependencies_file = _dependencies(app_dir)
    framework, target = _django(app_dir, findings)
    if framework is None:
        framework, target = _python_app(app_dir, findings)
    listed = [name for name in ("gunicorn", "uvicorn") if name in dependencies]
    for name in listed:
        findings.append(f"{name} in {dependencies_file}")
    if framework == "fastapi":
        server = "gunicorn" if listed == ["gunicorn", "uvicorn"] else "uvicorn"
    elif framework == "django" and listed == ["uvicorn"]:
        server = "uvicorn"
    else:
        server = "gunicorn"
    if not findings:
        findings.append("no Django, Flask or FastAPI app")
    return Detected(
        framework=framework,
        target=target,
        server=server,
        server_listed=server in listed,
        dependencies_file=dependencies_file,
        dependencies=dependencies,
        findings=tuple(findings),
    )


def _dependencies(app_dir: Path) -> tuple[frozenset[str], str | None]:
    requirements = _read(app_dir / "requirements.txt")
    if requirements is not None:
        return names_in_requirements(requirements), "requirements.txt"
    pyproject = _read(app_dir / "pyproject.toml")
    if pyproject is not None:
        return names_in_pyproject(pyproject), "pyproject.toml"
    return frozenset(), None


def _django(app_dir: Path, findings: list[str]) -> tuple[str | None, str | None]:
    manage = _read(app_dir / "manage.py")
    if manage is None:
        return None, None
    match = _DJANGO_SETTINGS.search(manage)
    if match is None:
        findings.append("manage.py (Django; no DJANGO_SETTINGS_MODULE found in it)")
        return "django", None
    settings = match["module"]
    findings.append(f"manage.py (Django, settings {settings})")
    package = settings.rsplit(".", 1)[0] if "." in settings else settings
    return "django", f"{package}.wsgi"


def _python_app(app_dir: Path, findings: list[str]) -> tuple[str | None, str | None]:
    flask: tuple[str, str] | None = None
    for path, module in _python_files(app_dir):
        text = _read(path)
        if text is None:
            continue
        where = path.relative_to(app_dir).as_posix()
        if match := _FASTAPI.search(text):
            findings.append(f"{where} (FastAPI app '{match['name']}')")
            return "fastapi", f"{module}:{match['name']}"
        if flask is None and (match := _FLASK.search(text)):
            flask = (f"{where} (Flask app '{match['name']}')", f"{module}:{match['name']}")
        elif flask is None and _IMPORTS_FLASK.search(text) and (match := _FACTORY.search(text)):
            flask = (
                f"{where} (Flask app factory {match['name']}())",
                f"{module}:{match['name']}()",
            )
    if flask is None:
        return None, None
    findings.append(flask[0])
    return "flask", flask[1]


def _python_files(app_dir: Path) -> list[tuple[Path, str]]:
    """The app's Python files near the top (the directory, its packages, and a ``src/``
    layout's), shallowest first, each with its module name."""
    found: list[tuple[Path, str]] = []
    roots = [(app_dir, "")]
    if (app_dir / "src").is_dir():
        roots.append((app_dir / "src", ""))
    for depth in range(3):
        for root, _ in roots:
            for path in sorted(root.glob("/".join(["*"] * depth + ["*.py"]))):
                parts = path.relative_to(root).parts
                if any(p.startswith(".") or p in SKIPPED_DIRS or p == "src" for p in parts[:-1]):
                    continue
                if not all(p.isidentifier() for p in [*parts[:-1], path.stem]):
                    continue
                names = [*parts[:-1], path.stem]
                if names[-1] == "__init__":
                    names.pop()
                if names:
                    found.append((path, ".".join(names)))
                if len(found) >= MAX_FILES:
                    return found
    return found


def _read(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
