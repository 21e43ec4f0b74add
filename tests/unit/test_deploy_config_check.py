"""``procman check`` validates procman.yml next to the Procfile, and reports its problems with
the others."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def check(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "procman", "check"],
        check=False,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_summarises_procman_yml(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: a\nworker: b\n")
    (tmp_path / "procman.yml").write_text(
        "app: demo\nenvironments:\n"
        "  staging: {hosts: [s1], path: /srv/demo}\n"
        "  production:\n    promote_from: staging\n    path: /srv/demo\n"
        "    hosts: [{host: w1, roles: [web]}, {host: j1, roles: [worker]}]\n"
    )
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "valid Procfile: web, worker; valid procman.yml: "
        "staging (1 host), production (2 hosts, promoted from staging)\n"
    )


def test_check_reports_procman_yml_problems_with_the_others(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: a\nthis is wrong\n")
    (tmp_path / "procman.yml").write_text(
        "app: demo\nenvironments:\n  staging: {hosts: ['x y'], path: /srv/demo, rollin: true}\n"
    )
    result = check(tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("procman: error: Procfile:2: expected 'name: command'")
    assert lines[1:] == [
        "procman: error: procman.yml: environments.staging: unknown key 'rollin' "
        "(did you mean 'rolling'?)",
        "procman: error: procman.yml: environments.staging.hosts[0]: cannot read host 'x y' "
        "(write [user@]host[:port], like deploy@web1.example.com or web1.example.com:2222)",
    ]


def test_a_bad_deploy_path_is_refused_by_the_cli_before_any_connection(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: a\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        (tmp_path / "procman.yml").write_text(
            "app: demo\nenvironments:\n"
            f"  staging: {{hosts: ['127.0.0.1:{port}'], path: /srv/../x}}\n"
        )
        expected = (
            "procman: error: procman.yml: environments.staging.path: must not go up with '..' "
            "(got the string '/srv/../x') (the absolute directory on each host, like /srv/snippets)"
        )
        checked = check(tmp_path)
        assert (checked.returncode, checked.stderr.splitlines()) == (1, [expected])
        listed = subprocess.run(
            [sys.executable, "-m", "procman", "releases", "staging"],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode != 0
        assert expected in listed.stderr.splitlines()
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected to the host
