"""The templates ship in the wheel: build it (``pip wheel --no-deps``), install it into a fresh
virtualenv outside the source tree (its dependencies from this environment, through a .pth file,
so no index is needed for them), and render every export format from there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import PROCMAN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh virtualenv with procman installed from its wheel."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    names = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in names.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", source)
    (wheel,) = (base / "dist").glob("procman-*.whl")
    fresh = base / "fresh"
    run(sys.executable, "-m", "venv", fresh)
    purelib = run(
        fresh / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    ).strip()
    (Path(purelib) / "procman-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(fresh / "bin" / "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    return fresh / "bin"


def test_the_installed_package_has_every_template_and_each_parses(
    installed: Path, tmp_path: Path
) -> None:
    script = (
        "import procman.templating as t, sys\n"
        "d = t.packaged_templates_dir()\n"
        "print(d)\n"
        "templates = t.load_templates()\n"
        "for p in sorted(d.rglob('*')):\n"
        "    if p.is_file() and p.suffix in ('.j2', '.html'):\n"
        "        templates.environment.parse(p.read_text(), str(p.relative_to(d)))\n"
        "        print(p.relative_to(d))\n"
    )
    lines = run(installed / "python", "-c", script, cwd=tmp_path).splitlines()
    assert lines[0].startswith(str(installed.parent)), "templates come from the installed package"
    source = ROOT / "templates"
    expected = sorted(
        str(p.relative_to(source))
        for p in source.rglob("*")
        if p.is_file() and p.suffix in (".j2", ".html")
    )
    assert lines[1:] == expected and expected


@pytest.mark.parametrize("kind", ["systemd", "supervisord", "runit"])
def test_every_export_format_renders_from_the_installed_package_as_from_the_source(
    installed: Path, tmp_path: Path, kind: str
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("web: serve $PORT\nworker: procman worker\n")
    (app / ".env").write_text('GREETING="it\'s 100%"\n')
    from_wheel, from_source = tmp_path / "wheel", tmp_path / "source"
    for procman, out in ((installed / "procman", from_wheel), (PROCMAN, from_source)):
        run(procman, "export", kind, out, "-a", "demo", "-u", "deploy", "-m", "all=2", cwd=app)
    wheel_files = {
        str(p.relative_to(from_wheel)): p.read_text()
        .replace(str(from_wheel), "OUT")
        .replace(str(installed), "BIN")
        for p in from_wheel.rglob("*")
        if p.is_file()
    }
    source_files = {
        str(p.relative_to(from_source)): p.read_text()
        .replace(str(from_source), "OUT")
        .replace(str(Path(PROCMAN).parent), "BIN")
        for p in from_source.rglob("*")
        if p.is_file()
    }
    assert wheel_files == source_files
    assert len(wheel_files) > 1


def test_starter_files_and_pipelines_render_from_the_installed_package_as_from_the_source(
    installed: Path, tmp_path: Path
) -> None:
    """``procman init`` (templates/init/) and ``procman pipeline generate`` (templates/pipeline/)
    from the wheel write the same files as from the source tree."""
    outputs = {}
    for label, procman in (("wheel", installed / "procman"), ("source", Path(PROCMAN))):
        app = tmp_path / label / "shop"  # the same name: the app is named after its directory
        app.mkdir(parents=True)
        (app / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
        (app / "requirements.txt").write_text("flask\ngunicorn\n")
        run(procman, "init", cwd=app)
        run(procman, "pipeline", "generate", "github", cwd=app)
        run(procman, "pipeline", "generate", "gitlab", cwd=app)
        outputs[label] = {
            str(p.relative_to(app)): p.read_text().replace(str(app), "APP")
            for p in app.rglob("*")
            if p.is_file()
        }
    assert outputs["wheel"] == outputs["source"]
    assert {"Procfile", "procman.yml", ".gitlab-ci.yml"} <= set(outputs["wheel"])
    assert any(name.startswith(".github/workflows/") for name in outputs["wheel"])
