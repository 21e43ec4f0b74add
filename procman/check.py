"""``procman check``: validate everything procman can find for an app, without running anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from procman.procfile import Procfile
from procman.settings import App, AppOptions
from procman.start import load_app_and_procfile


@dataclass(frozen=True, slots=True)
class CheckReport:
    app: App
    procfile: Procfile

    def summary(self) -> str:
        parts = [f"valid Procfile: {', '.join(self.procfile.names)}"]
        for path in self.app.env_files:
            parts.append(f"valid env file {path}")
        if self.app.env_files:
            count = len(self.app.env)
            parts.append(f"{count} variable{'' if count == 1 else 's'}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "procfile": str(self.app.procfile_path),
            "root": str(self.app.root),
            "processes": [
                {"name": p.name, "command": p.command, "line": p.line}
                for p in self.procfile.processes
            ],
            "env_files": [str(path) for path in self.app.env_files],
            "env": dict(self.app.env),
            "port": self.app.base_port,
        }


def check(options: AppOptions) -> CheckReport:
    """Raise every problem found (ManyErrors when several); otherwise what was parsed."""
    app, procfile = load_app_and_procfile(options)
    return CheckReport(app=app, procfile=procfile)
