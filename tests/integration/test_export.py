"""``procman export`` through the installed executable: layout, re-export, template overrides,
honcho's exporters, and bad input (one-line errors, nothing half-written)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from tests.conftest import App

pytestmark = pytest.mark.timeout(60)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "export"


def listing(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` and its text."""
    return {
        str(path.relative_to(directory)): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def one_line_error(result: object, *needles: str) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert stderr.startswith("procman: error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


@pytest.mark.parametrize("kind", ["systemd", "supervisord"])
def test_rendered_files_match_the_golden_files(app: App, tmp_path: Path, kind: str) -> None:
    """The full text of each file (UPDATE_GOLDEN=1 rewrites them after a deliberate change)."""
    app.procfile(
        "web: gunicorn app:wsgi --bind 0.0.0.0:$PORT\n"
        "worker: procman worker\n"
        'report: echo "it\'s" 50% done && ./report.sh \\\n'
    )
    app.write(".env", 'DATABASE_URL=postgres://db/app\nGREETING="say \\"hi\\" 100%"\n')
    app.write("queues.yml", "timeout: 300\n")
    out = tmp_path / "out"
    result = app.run(
        "export", kind, str(out), "-a", "golden", "-u", "deploy", "-l", "/var/log/golden",
        "-m", "web=2,worker=1,report=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    venv_bin = str(Path(sys.executable).parent)
    files = {
        name: text.replace(str(app.root), "/srv/golden").replace(venv_bin, "/venv/bin")
        for name, text in listing(out).items()
    }
    expected_dir = GOLDEN / kind
    if os.environ.get("UPDATE_GOLDEN"):
        expected_dir.mkdir(parents=True, exist_ok=True)
        for old in expected_dir.iterdir():
            old.unlink()
        for name, text in files.items():
            (expected_dir / name.lstrip(".")).write_text(text)
    expected = {
        ("." + path.name if path.name.endswith(".procman-export") else path.name): path.read_text()
        for path in sorted(expected_dir.iterdir())
    }
    assert files == expected


def test_reexport_replaces_that_apps_files_only(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\nworker: work\n")
    out = tmp_path / "units"
    assert app.run("export", "systemd", str(out), "-a", "demo", "-m", "all=2").returncode == 0
    assert app.run("export", "systemd", str(out), "-a", "demo-x").returncode == 0
    (out / "hand-written.service").write_text("[Service]\nExecStart=/bin/true\n")
    before = listing(out)

    result = app.run("export", "systemd", str(out), "-a", "demo", "-m", "web=1,worker=0")

    assert result.returncode == 0, result.stderr
    assert f"removed {out}/demo-web.2.service\n" in result.stdout
    after = listing(out)
    assert sorted(after) == sorted(
        [
            ".demo.procman-export",
            ".demo-x.procman-export",
            "demo.target",
            "demo-web.1.service",
            "demo-x.target",
            "demo-x-web.1.service",
            "demo-x-worker.1.service",
            "hand-written.service",
        ]
    )
    for name in ("demo-x.target", "demo-x-web.1.service", "hand-written.service"):
        assert after[name] == before[name]
    assert after["demo.target"].count(".service") == 1
    assert not list(out.glob(".procman-export-*")), "the staging directory is removed"


def test_a_template_dir_overrides_one_template_and_the_rest_are_procmans(
    app: App, tmp_path: Path
) -> None:
    app.procfile("web: serve\n")
    overrides = tmp_path / "mine" / "systemd"
    overrides.mkdir(parents=True)
    (overrides / "app.target.j2").write_text(
        "# my target for {{ app }}: {{ services|join(',') }}\n"
    )
    out = tmp_path / "units"
    result = app.run(
        "export", "systemd", str(out), "-a", "demo", "--template-dir", str(tmp_path / "mine")
    )
    assert result.returncode == 0, result.stderr
    assert (out / "demo.target").read_text() == "# my target for demo: demo-web.1.service\n"
    assert 'ExecStart=/bin/sh -c "exec serve"\n' in (out / "demo-web.1.service").read_text()


def test_honchos_own_exporters_run_through_procman(app: App, tmp_path: Path) -> None:
    """honcho's runit exporter (a honcho_exporters entry point), its `run` template overridden
    from --template-dir/runit/ and its `log/run` its own."""
    app.procfile("web: serve --port $PORT\n")
    app.write(".env", "GREETING=hi\n")
    mine = tmp_path / "mine" / "runit"
    mine.mkdir(parents=True)
    (mine / "run").write_text("#!/bin/sh\n# mine\ncd {{ app_root }}\nexec {{ process.cmd }}\n")
    out = tmp_path / "sv"
    result = app.run(
        "export", "runit", str(out), "-a", "demo", "-p", "7000", "--template-dir",
        str(tmp_path / "mine"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = listing(out)
    assert files["demo-web-1/env/PORT"] == "7000"
    assert files["demo-web-1/env/PS"] == "web.1"
    assert files["demo-web-1/env/GREETING"] == "hi"
    assert files["demo-web-1/run"] == f"#!/bin/sh\n# mine\ncd {app.root}\nexec serve --port $PORT"
    assert "svlogd" in files["demo-web-1/log/run"]
    assert (out / "demo-web-1" / "run").stat().st_mode & stat.S_IXUSR


def test_an_exporter_written_for_honcho_is_a_procman_format(app: App, tmp_path: Path) -> None:
    """A third party's ``honcho_exporters`` entry point (an installed distribution on the path)."""
    site = tmp_path / "site"
    (site / "plainexp-1.0.dist-info").mkdir(parents=True)
    (site / "plainexp-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: plainexp\nVersion: 1.0\n"
    )
    (site / "plainexp-1.0.dist-info" / "entry_points.txt").write_text(
        "[honcho_exporters]\nplain = plainexp:Export\n"
    )
    (site / "plainexp.py").write_text(
        "import jinja2\n"
        "from honcho.export.base import BaseExport, File\n"
        "class Export(BaseExport):\n"
        "    def get_template_loader(self):\n"
        "        return jinja2.DictLoader({'line': '{{ p.name }} {{ p.env.PORT }} {{ p.cmd }}'})\n"
        "    def render(self, processes, context):\n"
        "        tpl = self.get_template('line')\n"
        "        text = '\\n'.join(tpl.render(p=p) for p in processes)\n"
        "        return [File(context['app'] + '.txt', text + '\\n')]\n"
    )
    app.procfile("web: serve\nworker: work\n")
    out = tmp_path / "out"
    result = app.run(
        "export", "plain", str(out), "-a", "demo", "-m", "web=2", env={"PYTHONPATH": str(site)}
    )
    assert result.returncode == 0, result.stderr
    assert (
        out / "demo.txt"
    ).read_text() == "web.1 5000 serve\nweb.2 5001 serve\nworker.1 5100 work\n"


def test_an_unknown_format_is_one_line_listing_the_formats(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\n")
    result = app.run("export", "systemdd", str(tmp_path / "out"))
    one_line_error(
        result, "unknown export format 'systemdd'", "did you mean 'systemd'", "supervisord", "runit"
    )
    assert result.returncode == 2
    assert not (tmp_path / "out").exists()


def test_a_formation_naming_an_unknown_type_is_one_line(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\nworker: work\n")
    result = app.run("export", "systemd", str(tmp_path / "out"), "-m", "web=1,wroker=2")
    one_line_error(result, "-m/--formation: unknown process type 'wroker'", "did you mean 'worker'")
    assert not (tmp_path / "out").exists()


def test_an_unwritable_directory_is_one_line_and_the_old_export_stays(
    app: App, tmp_path: Path
) -> None:
    app.procfile("web: serve\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = app.run("export", "systemd", str(blocker / "units"))
    one_line_error(result, f"cannot write to {blocker / 'units'}", "nothing was changed")

    if os.geteuid() != 0:  # root writes anywhere; the case above holds for root as well
        out = tmp_path / "units"
        assert app.run("export", "systemd", str(out), "-a", "demo").returncode == 0
        before = listing(out)
        out.chmod(0o555)
        try:
            result = app.run("export", "systemd", str(out), "-a", "demo", "-m", "web=2")
        finally:
            out.chmod(0o755)
        one_line_error(result, f"cannot write to {out}", "Permission denied")
        assert listing(out) == before


@pytest.mark.parametrize(
    ("template", "line", "words"),
    [
        ("[Unit]\nDescription={{ app }}\n{{ nothing.here }}\n", 3, "nothing"),
        ("[Unit]\n{% if %}\n", 2, "Expected an expression"),
    ],
)
def test_a_template_that_fails_names_its_file_and_line_and_writes_nothing(
    app: App, tmp_path: Path, template: str, line: int, words: str
) -> None:
    app.procfile("web: serve\nworker: work\n")
    out = tmp_path / "units"
    assert app.run("export", "systemd", str(out), "-a", "demo").returncode == 0
    before = listing(out)
    broken = tmp_path / "mine" / "systemd" / "process.service.j2"
    broken.parent.mkdir(parents=True)
    broken.write_text(template)

    result = app.run(
        "export", "systemd", str(out), "-a", "demo", "-m", "web=3", "--template-dir",
        str(tmp_path / "mine"),
    )  # fmt: skip

    one_line_error(result, f"{broken}:{line}: ", words)
    assert listing(out) == before


def test_bad_app_and_user_names_are_one_line(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\n")
    one_line_error(
        app.run("export", "systemd", str(tmp_path / "o"), "-a", "my app"), "app name 'my app'"
    )
    one_line_error(
        app.run("export", "systemd", str(tmp_path / "o"), "-u", "a b"), "'a b' is not a user name"
    )
    assert not (tmp_path / "o").exists()


def test_without_m_the_formation_saved_by_scale_is_exported(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\nworker: work\n")
    assert app.run("scale", "worker=2,web=0").returncode == 0
    out = tmp_path / "units"
    assert app.run("export", "systemd", str(out), "-a", "demo").returncode == 0
    assert sorted(p.name for p in out.glob("*.service")) == [
        "demo-worker.1.service",
        "demo-worker.2.service",
    ]


def test_a_formation_that_exports_nothing_is_one_line(app: App, tmp_path: Path) -> None:
    app.procfile("web: serve\n")
    result = app.run("export", "systemd", str(tmp_path / "out"), "-m", "web=0")
    one_line_error(result, "the formation exports no process")
    assert not (tmp_path / "out").exists()


def test_a_rename_failing_half_way_puts_the_old_files_back(app: App, tmp_path: Path) -> None:
    """The third file of the new set cannot be renamed into place (a directory has its name):
    the two already replaced get their old text back, and nothing new stays."""
    app.procfile("web: serve\n")
    out = tmp_path / "units"
    assert app.run("export", "systemd", str(out), "-a", "demo").returncode == 0
    (out / "demo-web.2.service" / "in-the-way").mkdir(parents=True)
    before = listing(out)
    app.write(".env", "NEW=1\n")

    result = app.run("export", "systemd", str(out), "-a", "demo", "-m", "web=2")

    one_line_error(result, f"cannot write to {out}", "nothing was changed there")
    assert listing(out) == before
    assert sorted(p.name for p in out.iterdir()) == [
        ".demo.procman-export",
        "demo-web.1.service",
        "demo-web.2.service",
        "demo.target",
    ]


def test_d_keeps_a_symlinked_app_directory_as_named(app: App, tmp_path: Path) -> None:
    """``-d /srv/app/current`` stays the unit's WorkingDirectory (followed at every start), not
    the release it points at today."""
    release = tmp_path / "releases" / "r1"
    release.mkdir(parents=True)
    (release / "Procfile").write_text("web: serve\n")
    (tmp_path / "current").symlink_to(release)
    out = tmp_path / "units"
    result = app.run("export", "systemd", str(out), "-a", "demo", "-d", str(tmp_path / "current"))
    assert result.returncode == 0, result.stderr
    text = (out / "demo-web.1.service").read_text()
    assert f"WorkingDirectory={tmp_path / 'current'}\n" in text
