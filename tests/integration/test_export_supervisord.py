"""``procman export supervisord``: a real supervisord (its own socket, pid file and logs in a
temporary directory) runs the generated config. Every process runs with its PORT, PS and the env
file values exactly; a stop sends SIGTERM to each and leaves no child behind."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import App, wait_until

pytestmark = pytest.mark.timeout(90)

BIN = Path(sys.executable).parent
PROBE = Path(__file__).with_name("export_probe.py")
ENV = "QUOTED=\"it's \\\"quoted\\\"\"\nSPACES='a  b ;c #d'\nDOLLAR='$HOME ${X}'\nPERCENT=100%\n"


class Supervisord:
    def __init__(self, directory: Path, include: Path) -> None:
        self.directory = directory
        self.config = directory / "supervisord.conf"
        (directory / "logs").mkdir(parents=True)
        self.config.write_text(
            f"[unix_http_server]\nfile={directory}/supervisor.sock\n"
            f"[supervisord]\nlogfile={directory}/supervisord.log\npidfile={directory}/sd.pid\n"
            f"childlogdir={directory}/logs\nnodaemon=true\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            f"[supervisorctl]\nserverurl=unix://{directory}/supervisor.sock\n"
            f"[include]\nfiles = {include}/*.conf\n"
        )
        self.process = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def shutdown(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def supervisord_for(tmp_path: Path) -> Iterator[list[Supervisord]]:
    started: list[Supervisord] = []
    yield started
    for each in started:
        each.shutdown()


def test_supervisord_runs_every_process_with_its_port_and_stops_them_with_sigterm(
    app: App, tmp_path: Path, supervisord_for: list[Supervisord]
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    python = sys.executable
    app.procfile(
        f"web: {python} {PROBE} {seen} 'it'\"'\"'s' \"100%\" '$HOME' a\\ b\n"
        f"worker: {python} {PROBE} {seen} x && echo never\n"
    )
    app.write(".env", ENV)
    out = tmp_path / "conf.d"
    result = app.run(
        "export", "supervisord", str(out), "-a", "demo", "-m", "web=2,worker=2", "-p", "6100",
        "-u", getpass.getuser(), "-t", "10",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (out / "unrelated.txt").write_text("not a config")

    supervisord = Supervisord(tmp_path / "sd", out)
    supervisord_for.append(supervisord)
    names = ["web.1", "web.2", "worker.1", "worker.2"]
    wait_until(
        lambda: all((seen / f"{name}.json").exists() for name in names),
        timeout=30,
        what="every exported process running under supervisord",
    )
    records = {name: json.loads((seen / f"{name}.json").read_text()) for name in names}
    ports = {name: record["env"]["PORT"] for name, record in records.items()}
    assert ports == {"web.1": "6100", "web.2": "6101", "worker.1": "6200", "worker.2": "6201"}
    for name, record in records.items():
        env = record["env"]
        assert env["PS"] == name
        assert env["QUOTED"] == 'it\'s "quoted"'
        assert env["SPACES"] == "a  b ;c #d"
        assert env["DOLLAR"] == "$HOME ${X}"
        assert env["PERCENT"] == "100%"
        assert record["argv"] == (
            ["it's", "100%", "$HOME", "a b"] if name.startswith("web") else ["x"]
        )
    wait_until(
        lambda: supervisord.ctl("status").stdout.count("RUNNING") == 4,
        timeout=15,
        what="supervisorctl status showing the 4 processes RUNNING (startsecs=1)",
    )
    status = supervisord.ctl("status").stdout
    assert "demo:demo-web.1" in status and "demo:demo-worker.2" in status

    stopped = supervisord.ctl("stop", "demo:*")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for name, record in records.items():
        assert (seen / f"{name}.term").read_text() == "SIGTERM"
        wait_until(
            lambda record=record: not _alive(record["pid"]) and not _alive(record["child"]),
            timeout=10,
            what=f"{name} and its child gone",
        )
    supervisord.shutdown()
    assert supervisord.process.returncode == 0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
