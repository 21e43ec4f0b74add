"""docs/export.md's unit for a deployed environment after a reboot does what the page says: it
verifies silently, and the command systemd reads from it starts the current release's Procfile in
``current``, which ``procman stop`` (as a deploy stops it) ends."""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROCMAN, free_port, wait_until
from tests.integration.test_export_systemd import command_line, dumped_units, verify
from tests.sshd_hosts import run_procman

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]


def documented_unit() -> str:
    page = (ROOT / "docs" / "export.md").read_text()
    section = page.split("## A deployed environment after a reboot", 1)[1]
    found = re.search(r"```ini\n(.*?)```", section, re.S)
    assert found is not None
    return found[1]


def test_the_documented_boot_unit_starts_the_current_release_and_a_deploy_can_stop_it(
    tmp_path: Path,
) -> None:
    base = tmp_path / "srv" / "snippets"
    release = base / "releases" / "20261203T100000Z-abc1234"
    (release / ".venv" / "bin").mkdir(parents=True)
    (release / ".venv" / "bin" / "procman").symlink_to(PROCMAN)
    (release / "Procfile").write_text("web: sleep 600\nclock: sleep 600\nworker: sleep 600\n")
    (release / ".procman-deploy.env").write_text(f"PORT={free_port()}\n")
    (release / ".env").write_text("GREETING=hi\n")
    (base / "current").symlink_to("releases/20261203T100000Z-abc1234")
    units = tmp_path / "units"
    units.mkdir()
    unit = (
        documented_unit()
        .replace("/srv/snippets", str(base))
        .replace("User=deploy", f"User={getpass.getuser()}")
    )
    (units / "snippets-production.service").write_text(unit)

    dumped = dumped_units(verify(units))["snippets-production.service"]
    (line,) = re.findall(r"Command Line: (.*)", dumped)
    (directory,) = re.findall(r"\t\tWorkingDirectory: (.*)", dumped)
    assert directory == str(base / "current")

    log = (tmp_path / "log").open("wb")
    process = subprocess.Popen(
        command_line(line), cwd=directory, stdout=log, stderr=log, process_group=0
    )
    try:
        current = base / "current"

        def running() -> bool:
            result = run_procman(current, "ps", "--json", timeout=20)
            if result.returncode != 0:
                return False
            states = [entry["state"] for entry in json.loads(result.stdout)]
            return states == ["running"] * 3

        wait_until(running, timeout=30, what="web, clock and worker running from current")
        stop = run_procman(
            current, "stop", "--wait", "20", "-e", ".procman-deploy.env,.env", timeout=40
        )
        assert stop.returncode == 0, stop.stderr
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
