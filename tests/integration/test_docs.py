"""The documentation shows what the installed procman really does: docs/cli.md quotes every
command's --help verbatim, and the example app's Procfile and .env pass the real validator."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROCMAN

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        *["", "start", "check", "run", "scale", "ps", "restart", "stop", "logs", "worker"],
        *["jobs", "jobs failed", "jobs show", "jobs retry", "jobs delete", "jobs clear"],
        *["deploy", "releases", "rollback", "unlock"],
        "export",
        *["pipeline", "pipeline generate", "init"],
        *["config", "config set", "config unset"],
        *["hosts trust"],
    ],
)
def test_cli_reference_quotes_each_help_verbatim(command: str) -> None:
    help_text = subprocess.run(
        [PROCMAN, *command.split(), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    reference = (ROOT / "docs" / "cli.md").read_text()
    assert f"```\n{help_text}```" in reference, (
        f"docs/cli.md does not quote `procman {command} --help` as it is now:\n{help_text}"
    )


def test_example_app_files_are_valid() -> None:
    result = subprocess.run(
        [PROCMAN, "check", "--json"],
        cwd=ROOT / "examples",
        capture_output=True,
        text=True,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "PORT"},
    )
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert [p["name"] for p in parsed["processes"]] == ["web", "clock", "worker"]
    assert set(parsed["env"]) == {"SNIPPETS_DB", "SNIPPET_TTL", "CLOCK_INTERVAL"}
    assert parsed["port"] == 5000


def test_control_reference_documents_every_verb() -> None:
    from procman.supervisor.control.protocol import VERBS

    reference = (ROOT / "docs" / "control.md").read_text()
    for verb in VERBS:
        assert f"### {verb}\n" in reference, f"docs/control.md has no section for '{verb}'"
        assert f'{{"verb":"{verb}"' in reference, f"docs/control.md shows no '{verb}' request"
