"""``procman export systemd``: the generated units pass ``systemd-analyze verify`` with no output
at all (it exits 0 on many mistakes, so anything it prints fails the test), and systemd's own
reading of them (its debug dump of each unit) gives every command and env value back exactly."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procman.supervisor.spawn import shell_command
from tests.conftest import App

pytestmark = pytest.mark.timeout(120)
"""systemd-analyze comes with Debian's systemd package (scripts/test installs it)."""

PROCFILES = {
    "quotes": "web: python3 -c 'print(\"hi\")' --port $PORT\n"
    'worker: echo "it\'s" \'say "hi"\' && sleep 1\n',
    "percent_and_dollars": "web: printf '%s %d%%\\n' $PORT ${PS} 100\n"
    "clock: echo $HOME/${USER:-nobody} 50% done\n",
    "backslashes": "web: echo a\\ b c\\\\d \\\n"
    "worker: sh -c 'echo one; echo two' && echo three || echo four\n",
    "plain": "web: gunicorn app:wsgi --bind 0.0.0.0:$PORT\nworker: procman worker\n",
}
ENV = (
    'QUOTED="it\'s \\"quoted\\""\n'
    "SPACES='a  b   c'\n"
    "DOLLAR='$HOME and ${X}'\n"
    "PERCENT=100%\n"
    "BACKSLASH=back\\slash\\\n"
    'NEWLINE="one\\ntwo"\n'
)
ENV_VALUES = {
    "QUOTED": 'it\'s "quoted"',
    "SPACES": "a  b   c",
    "DOLLAR": "$HOME and ${X}",
    "PERCENT": "100%",
    "BACKSLASH": "back\\slash\\",
    "NEWLINE": "one\ntwo",
}


def verify(directory: Path) -> str:
    """systemd-analyze verify of every unit in ``directory``: all it printed, and its debug dump
    of the units (stdout)."""
    units = sorted(str(path) for path in directory.iterdir() if not path.name.startswith("."))
    quiet = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (quiet.returncode, quiet.stdout + quiet.stderr) == (0, "")
    dump = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "debug"},
    )
    return dump.stdout


def dumped_units(dump: str) -> dict[str, str]:
    """systemd's dump, split per unit (``-> Unit NAME:`` starts each)."""
    parts = re.split(r"^\t-> Unit (\S+):\n", dump, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def command_line(words: str) -> list[str]:
    """The words of systemd's ``Command Line:`` (each bare, or double-quoted with backslashes)."""
    return [
        re.sub(r"\\(.)", r"\1", quoted) if quoted else bare
        for quoted, bare in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', words)
    ]


@pytest.mark.parametrize("name", sorted(PROCFILES))
def test_units_verify_silently_and_systemd_reads_back_every_command_and_value(
    app: App, tmp_path: Path, name: str
) -> None:
    app.procfile(PROCFILES[name])
    app.write(".env", ENV)
    out = tmp_path / "units"
    result = app.run("export", "systemd", str(out), "-a", "demo", "-m", "all=2", "-u", "root")
    assert result.returncode == 0, result.stderr

    units = dumped_units(verify(out))

    procfile = dict(line.split(": ", 1) for line in PROCFILES[name].splitlines())
    expected_services = {f"demo-{kind}.{n}.service": (kind, n) for kind in procfile for n in (1, 2)}
    assert set(units) == {"demo.target", *expected_services}
    for unit, (kind, n) in expected_services.items():
        text = units[unit]
        (line,) = re.findall(r"Command Line: (.*)", text)
        argv = command_line(line)
        # systemd replaces $$ by $ when it runs the command: every $ was doubled
        assert argv[:2] == ["/bin/sh", "-c"]
        assert argv[2] == shell_command(procfile[kind]).replace("$", "$$")
        assert "$" not in argv[2].replace("$$", "")
        for variable, value in {**ENV_VALUES, "PS": f"{kind}.{n}"}.items():
            assert f"\t\tEnvironment: {variable}={value}\n" in text
        assert f"\t\tWorkingDirectory: {app.root}\n" in text
        assert "KillMode: " + ("mixed" if argv[2].startswith("exec ") else "control-group") in (
            text
        )


def test_a_unit_per_instance_with_ports_as_procman_start_gives_them(
    app: App, tmp_path: Path
) -> None:
    app.procfile("web: serve $PORT\nworker: work\n")
    out = tmp_path / "units"
    assert (
        app.run(
            "export", "systemd", str(out), "-a", "shop", "-m", "web=2,worker=1", "-p", "7000"
        ).returncode
        == 0
    )
    units = dumped_units(verify(out))
    ports = {
        unit: re.search(r"Environment: PORT=(\d+)", text)[1]  # type: ignore[index]
        for unit, text in units.items()
        if unit.endswith(".service")
    }
    assert ports == {
        "shop-web.1.service": "7000",
        "shop-web.2.service": "7001",
        "shop-worker.1.service": "7100",
    }
    target = (out / "shop.target").read_text()
    assert "Wants=shop-web.1.service shop-web.2.service shop-worker.1.service\n" in target
    for unit in ports:
        text = (out / unit).read_text()
        assert "PartOf=shop.target\n" in text and "WantedBy=shop.target\n" in text
        assert "Restart=always\n" in text and "RestartSec=5s\n" in text


def test_a_worker_may_stop_for_its_whole_job_timeout(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\nworker: procman worker\nother: procman worker -C jobs/q.yml\n")
    app.write("queues.yml", "timeout: 600\n")
    (app.root / "jobs").mkdir()
    app.write("jobs/q.yml", "timeout: 2\n")
    out = tmp_path / "units"
    assert app.run("export", "systemd", str(out), "-t", "20").returncode == 0
    verify(out)
    stops = {
        path.name: re.search(r"TimeoutStopSec=(\S+)", path.read_text())[1]  # type: ignore[index]
        for path in out.glob("*.service")
    }
    name = app.root.name
    assert stops == {
        f"{name}-web.1.service": "20",
        f"{name}-worker.1.service": "610",
        f"{name}-other.1.service": "20",
    }


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r"), min_size=1
        ),
        min_size=20,
        max_size=40,
    )
)
def test_systemd_reads_back_arbitrary_commands(commands: list[str]) -> None:
    """Arbitrary command texts (one run of systemd-analyze for a batch of them): what systemd
    reads from ExecStart is the text with each $ doubled (which it undoes when it runs it)."""
    import tempfile

    from procman.export.escaping import systemd_word

    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        for index, command in enumerate(commands):
            (out / f"x{index}.service").write_text(
                f"[Service]\nExecStart=/bin/sh -c {systemd_word(command)}\n"
            )
        units = dumped_units(verify(out))
        for index, command in enumerate(commands):
            (line,) = re.findall(r"Command Line: (.*)", units[f"x{index}.service"])
            assert command_line(line) == ["/bin/sh", "-c", command.replace("$", "$$")]


def test_paths_with_spaces_and_percent_signs_survive(tmp_path: Path) -> None:
    from tests.sshd_hosts import run_procman

    root = tmp_path / "my app 100%d"
    root.mkdir()
    (root / "Procfile").write_text("web: serve\n")
    out = tmp_path / "units %n"
    logs = tmp_path / "logs 50%"
    result = run_procman(
        root, "export", "systemd", str(out), "-a", "demo", "-l", str(logs), timeout=20
    )
    assert result.returncode == 0, result.stderr
    unit = dumped_units(verify(out))["demo-web.1.service"]
    assert f"\t\tWorkingDirectory: {root}\n" in unit
    assert f"\t\tStandardOutputFileToAppend: {logs}/web.1.log\n" in unit


def test_the_main_process_systemd_signals_is_the_program_itself(tmp_path: Path) -> None:
    """What systemd would run (its own reading of ExecStart and Environment, $$ made $ as it does
    at start): the process it starts is the program (sh exec'd it), so KillMode=mixed's SIGTERM
    to the main process reaches the program, not a shell that would not pass it on."""
    import json
    import signal
    import subprocess
    import sys

    from tests.conftest import wait_until
    from tests.sshd_hosts import run_procman

    probe = Path(__file__).with_name("export_probe.py")
    seen = tmp_path / "seen"
    seen.mkdir()
    root = tmp_path / "app"
    root.mkdir()
    (root / "Procfile").write_text(f"web: {sys.executable} {probe} {seen} \"it's\" '$PORT'\n")
    out = tmp_path / "units"
    assert (
        run_procman(root, "export", "systemd", str(out), "-a", "demo", timeout=20).returncode == 0
    )
    unit = dumped_units(verify(out))["demo-web.1.service"]
    (line,) = re.findall(r"Command Line: (.*)", unit)
    argv = [word.replace("$$", "$") for word in command_line(line)]
    env = dict(re.findall(r"\t\tEnvironment: ([^=\n]+)=(.*)", unit))
    process = subprocess.Popen(argv, cwd=root, env={**os.environ, **env})
    record: dict[str, object] = {}
    try:
        wait_until((seen / "web.1.json").exists, timeout=20, what="the probe running")
        record = json.loads((seen / "web.1.json").read_text())
        assert record["pid"] == process.pid
        assert record["argv"] == ["it's", "$PORT"]
        assert record["env"]["PORT"] == "5000"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert (seen / "web.1.term").read_text() == "SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if record:  # the probe's own child, which KillMode=mixed's SIGKILL would end
            os.kill(int(record["child"]), signal.SIGKILL)  # type: ignore[call-overload]
