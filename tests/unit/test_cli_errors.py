"""The error funnel: ``procman.cli.main`` in-process, turning bad input into one line per problem.

``procman start`` is only called with input that must fail validation; Supervisor is replaced so
that a regression cannot spawn anything from a unit test.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

import procman.commands.start
from procman.cli import main
from procman.exitcodes import ExitStatus


class NotSupervised(AssertionError):
    pass


@pytest.fixture(autouse=True)
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("PROCMAN_TRACEBACK", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise NotSupervised("validation passed: start would have spawned processes")

    monkeypatch.setattr(procman.commands.start, "Supervisor", refuse)
    (tmp_path / "Procfile").write_text("web: python -m http.server $PORT\nworker: python w.py\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    status = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err.splitlines()


def fails(capsys: pytest.CaptureFixture[str], argv: Sequence[str], *expected: str) -> list[str]:
    """Run ``argv``; expect a non-zero exit and exactly the ``expected`` error lines (prefixes)."""
    status, lines = run(capsys, *argv)
    assert status != 0
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"procman: error: {start}"), line
    return lines


@pytest.mark.parametrize("command", ["check", "start"])
def test_bad_procfile_line(app_dir: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    (app_dir / "Procfile").write_text("web: serve\nnot a line\n")
    [line] = fails(capsys, [command], "Procfile:2: expected 'name: command'")
    assert line.endswith("comment it out with '#')")


def test_several_problems_one_line_each(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "Procfile").write_text("web serve\nweb: a\nweb: b\n")
    (app_dir / ".env").write_text("A=1\nBROKEN\n")
    fails(
        capsys,
        ["check"],
        f"{app_dir.resolve() / '.env'}:2: 'BROKEN' has no '='",
        "Procfile:1: expected 'name: command'",
        "Procfile:3: duplicate process name 'web', first defined on line 2",
    )


def test_missing_procfile(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "Procfile").unlink()
    fails(capsys, ["start"], "Procfile: no such file")


def test_unknown_process_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "start", "wbe")
    assert status == ExitStatus.USAGE
    assert lines == [
        "procman: error: unknown process type 'wbe' "
        "(did you mean 'web'? Procfile defines: web, worker)"
    ]


def test_unknown_type_in_formation(capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["start", "-m", "web=1,clock=1"], "-m/--formation: unknown process type 'clock'")


def test_negative_count(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "start", "-m", "web=-1")
    assert status == ExitStatus.USAGE  # a formation on the command line is usage
    assert lines == [
        "procman: error: -m/--formation: count for 'web' must be a whole number 0 or more, "
        "got '-1' (write it like 'web=2')"
    ]


def test_word_count(capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["start", "-m", "web=two"], "-m/--formation: count for 'web' must be")


def test_concurrency_spelling_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["start", "-c", "web=two"], "-c/--concurrency: count for 'web' must be")


def test_formation_starting_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["start", "-m", "all=0"], "the formation starts no process")


def test_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "start"):
        status, lines = run(capsys, command, "-p", "70000")
        assert status == ExitStatus.USAGE
        assert lines == [
            "procman: error: -p/--port: port 70000 is out of range (use a port from 1 to 65535)"
        ]


def test_port_not_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "start", "-p", "http")
    assert status == ExitStatus.USAGE
    assert len(lines) == 1
    assert lines[0].startswith("procman: error: Invalid value for '-p' / '--port'")


def test_formation_ports_above_65535(capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, ["start", "-p", "65500"], "worker.1 would get port 65600, above 65535")


def test_a_saved_formation_starting_nothing_names_its_file(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run(capsys, "scale", "all=0")  # no procman running: only saved
    assert status == 0
    saved = app_dir.resolve() / ".procman" / "formation.json"
    [line] = fails(
        capsys, ["start"], f"{saved}: the formation saved by 'procman scale' starts no process"
    )
    assert "procman scale TYPE=1" in line


def test_a_saved_formation_beyond_the_limits_names_its_file(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (app_dir / ".procman").mkdir()
    saved = app_dir.resolve() / ".procman" / "formation.json"
    saved.write_text('{"web": 60000}\n')
    [line] = fails(
        capsys,
        ["start"],
        f"{saved}: the formation saved by 'procman scale': web: 60000 instances is more than "
        "the 1000 a type may have",
    )
    assert line.endswith("(scale it down with 'procman scale', or start with -m/--formation)")
    saved.write_text('{"web": 40}\n')
    fails(
        capsys,
        ["start", "-p", "65500"],
        f"{saved}: the formation saved by 'procman scale': web.37 would get port 65536",
    )


def test_a_scale_count_of_thousands_of_digits_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [line] = fails(capsys, ["scale", "web=" + "9" * 5000], "web=999")
    assert "is more than the 65535 ports there are" in line


def test_scaling_beyond_the_limits_asks_for_fewer_instances(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [line] = fails(
        capsys, ["scale", "web=60000"], "web: 60000 instances is more than the 1000 a type may have"
    )
    assert line.endswith("(ask for fewer instances)")
    [line] = fails(capsys, ["scale", "-p", "65500", "web=40"], "web.37 would get port 65536")
    assert line.endswith("(ask for fewer instances)")


def test_bad_port_in_env_file(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / ".env").write_text("PORT=web\n")
    fails(capsys, ["start"], f"PORT='web' from {app_dir.resolve() / '.env'} is not a port")


def test_missing_env_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "start", "-e", "missing.env")
    assert status == ExitStatus.ERROR
    assert lines == [
        "procman: error: missing.env: no such env file (check the path given to -e/--env)"
    ]


def test_env_file_list_reports_each_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    fails(
        capsys,
        ["check", "-e", "a.env,b.env"],
        "a.env: no such env file",
        "b.env: no such env file",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_env_file(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "secret.env").write_text("A=1\n")
    (app_dir / "secret.env").chmod(0)
    fails(capsys, ["check", "-e", "secret.env"], "secret.env: cannot read: Permission denied")


def test_env_file_is_a_directory(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "conf").mkdir()
    fails(capsys, ["check", "-e", "conf"], "conf: is a directory")


def test_non_utf8_env_file(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "x.env").write_bytes(b"A=\xff\n")
    fails(capsys, ["start", "-e", "x.env"], "x.env:1: not valid UTF-8")


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "start", "--xyzzy")
    assert status == ExitStatus.USAGE
    assert lines == ["procman: error: No such option '--xyzzy'. (see 'procman start --help')"]


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "strat")
    assert status == ExitStatus.USAGE
    assert len(lines) == 1 and lines[0].startswith("procman: error: No such command 'strat'")


def test_traceback_flag_shows_one(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--traceback", "check", "-p", "70000"])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE
    assert err.count("Traceback (most recent call last)") == 1
    assert err.splitlines()[-1] == (
        "procman: error: -p/--port: port 70000 is out of range (use a port from 1 to 65535)"
    )


def test_traceback_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCMAN_TRACEBACK", "1")
    assert main(["check", "-m"]) == ExitStatus.USAGE
    assert "Traceback" in capsys.readouterr().err


def test_check_of_a_valid_app(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / ".env").write_text("A=1\nB=2\n")
    assert main(["check"]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == (
        f"valid Procfile: web, worker; valid env file {app_dir.resolve() / '.env'}; 2 variables\n"
    )


def test_unreadable_env_file_simulated(
    app_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.env":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    (app_dir / "secret.env").write_text("A=1\n")
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    status, lines = run(capsys, "start", "-e", "secret.env")
    assert status == ExitStatus.ERROR
    assert lines == ["procman: error: secret.env: cannot read: Permission denied"]


@pytest.mark.parametrize("timeout", ["nan", "inf", "1e400"])
def test_a_timeout_that_never_fires_is_refused(
    capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    status, lines = run(capsys, "start", "-t", timeout)
    assert status == ExitStatus.USAGE
    assert lines == [
        f"procman: error: Invalid value for '-t' / '--timeout': {timeout!r} is not a finite "
        "number of seconds (see 'procman start --help')"
    ]


@pytest.mark.parametrize("spec", ["", ",", " "])
def test_an_empty_env_file_name_is_refused(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    for command in ("check", "start"):
        [line] = fails(capsys, [command, "-e", spec], "-e/--env: no file name given")
        assert line.endswith("(name an env file, like -e .env)")


def test_a_root_that_is_a_file_is_one_error(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("check", "start", "ps", "logs", "stop"):
        fails(
            capsys,
            [command, "-d", "Procfile"],
            f"-d/--root: {app_dir.resolve() / 'Procfile'} is not a directory",
        )


def test_a_timeout_over_a_week_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = fails(capsys, ["start", "-t", "3000000"], "Invalid value for '-t' / '--timeout'")
    assert "'3000000' is more than a week (604800 seconds)" in line


def test_restart_env_refuses_local_options(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--env", "--environment"):  # --environment: the spelling before --env
        status, lines = run(capsys, "restart", flag, "production", "-p", "6000", "-e", "x.env")
        assert status == ExitStatus.USAGE
        assert lines == [
            "procman: error: -e/--env-file, -p: for the app running here, not with --env "
            "production (leave them out: the environment's hosts have their own files)"
        ]


def test_env_naming_no_environment_lists_them_and_says_env_files_go_with_e(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run(capsys, "restart", "--env", "production")
    assert status == ExitStatus.USAGE
    assert lines == [
        "procman: error: --env production: there is no procman.yml naming deployed environments "
        "(an env file goes with -e production or --env-file production; to deploy, write "
        "procman.yml (see docs/deploy.md))"
    ]
    (app_dir / "procman.yml").write_text(
        "app: demo\nenvironments:\n  staging:\n    hosts: [web1.example.com]\n    path: /srv/demo\n"
    )
    status, lines = run(capsys, "restart", "--env", "production")
    assert status == ExitStatus.USAGE
    assert lines == [
        "procman: error: --env production: procman.yml has no environment named 'production' "
        "(environments: staging) (an env file goes with -e production or --env-file production)"
    ]
    (app_dir / ".env.local").write_text("A=1\n")
    for flag in ("-e", "--env-file"):
        status, lines = run(capsys, "restart", flag, ".env.local")
        assert status == 1 and "no procman is running in" in lines[0]  # on to the local app


def test_restart_wait_is_for_environments_only(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(capsys, "restart", "--wait", "5")
    assert status == ExitStatus.USAGE
    assert lines == ["procman: error: --wait is for --env (a deploy lock) (leave it out)"]


def test_jobs_retry_without_an_id_says_so_before_reading_the_app_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The missing ID is a usage error found before -e is read (or Redis is looked for)."""
    status, lines = run(capsys, "jobs", "retry", "-e", ",")
    assert status == ExitStatus.USAGE
    assert lines == [
        "procman: error: give the ID of a failed job, or --all (see 'procman jobs failed')"
    ]


def test_library_errors_name_options_and_the_cli_spells_them_as_the_commands_flags(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Library messages refer to options by name (``errors.flag_of``); ``main`` spells each as
    the flags of the command that ran, and the alias the user typed keeps its own spelling."""
    fails(capsys, ["start", "-p", "70000"], "-p/--port: port 70000 is out of range")
    fails(capsys, ["start", "-m", "web=x"], "-m/--formation: count for 'web'")
    fails(capsys, ["start", "-c", "web=x"], "-c/--concurrency: count for 'web'")
    [line] = fails(capsys, ["check", "-d", "nowhere"], "-d/--root: ")
    assert "{option:" not in line


def test_an_error_rendered_outside_the_cli_names_its_options_in_words() -> None:
    from procman.errors import UsageError, flag_of

    error = UsageError(f"{flag_of('port')}: bad", f"pass {flag_of('allow_dirty')}")
    assert str(error) == "the port option: bad (pass the allow-dirty option)"
    assert error.render(lambda name: f"--{name}") == "--port: bad (pass --allow_dirty)"
