"""``procman init`` in existing app directories: for each kind of app it detects, the installed
procman writes starter files that the real ``procman check`` accepts; it never replaces a file;
and a Flask starter really serves under ``procman start``."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROCMAN, App, LiveOutput, free_port

VENV_BIN = Path(sys.executable).parent
STARTERS = ["Procfile", "queues.yml", "procman.yml", ".env.example"]
FLASK_APP = (
    "from flask import Flask\n\napp = Flask(__name__)\n\n\n"
    "@app.get('/')\ndef home():\n    return 'hello from the starter'\n"
)

KINDS = {
    "django-gunicorn": (
        {
            "manage.py": "import os\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n",
            "mysite/__init__.py": "",
            "mysite/settings.py": "DEBUG = False\n",
            "requirements.txt": "Django>=5\ngunicorn==22.0\npsycopg[binary]\n",
        },
        "gunicorn mysite.wsgi --bind 0.0.0.0:$PORT --access-logfile -",
        "manage.py (Django, settings mysite.settings); gunicorn in requirements.txt",
    ),
    "django-uvicorn-pyproject": (
        {
            "manage.py": 'os.environ.setdefault("DJANGO_SETTINGS_MODULE",'
            ' "shop.config.settings")\n',
            "pyproject.toml": '[project]\nname = "shop"\n'
            'dependencies = ["django", "uvicorn[standard]"]\n',
        },
        "uvicorn shop.config.asgi:application --host 0.0.0.0 --port $PORT",
        "manage.py (Django, settings shop.config.settings); uvicorn in pyproject.toml",
    ),
    "flask-factory-pyproject": (
        {
            "blog/__init__.py": "from flask import Flask\n\n\n"
            "def create_app():\n    return Flask(__name__)\n",
            "pyproject.toml": '[tool.poetry.dependencies]\nflask = "*"\ngunicorn = "*"\nrq = "*"\n',
        },
        "gunicorn 'blog:create_app()' --bind 0.0.0.0:$PORT --access-logfile -",
        "blog/__init__.py (Flask app factory create_app()); gunicorn in pyproject.toml",
    ),
    "fastapi-uvicorn": (
        {
            "src/api/main.py": "from fastapi import FastAPI\n\napi: FastAPI = FastAPI(title='x')\n",
            "requirements.txt": "fastapi\nuvicorn[standard]>=0.30\n",
        },
        "uvicorn api.main:api --host 0.0.0.0 --port $PORT",
        "src/api/main.py (FastAPI app 'api'); uvicorn in requirements.txt",
    ),
    "fastapi-gunicorn": (
        {
            "main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
            "requirements.txt": "fastapi\ngunicorn\nuvicorn\n",
        },
        "gunicorn main:app --bind 0.0.0.0:$PORT --worker-class uvicorn.workers.UvicornWorker"
        " --access-logfile -",
        "main.py (FastAPI app 'app'); gunicorn in requirements.txt; uvicorn in requirements.txt",
    ),
    "nothing": (
        {"README.md": "an app to be\n"},
        "gunicorn app:app --bind 0.0.0.0:$PORT --access-logfile -",
        "no Django, Flask or FastAPI app",
    ),
}


def procman(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PORT", "REDIS_URL")}
    return subprocess.run(
        [PROCMAN, *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=environment,
    )


def make_app(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_of_app_gets_starter_files_that_procman_check_accepts(
    tmp_path: Path, kind: str
) -> None:
    files, web, found = KINDS[kind]
    root = make_app(tmp_path / kind, files)

    done = procman(root, "init")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"procman: found {found}",
        *[f"procman: wrote {name}" for name in STARTERS],
        "procman: next: edit the hosts in procman.yml, then procman check",
    ]
    procfile = (root / "Procfile").read_text()
    assert f"\nweb: {web}\n" in procfile
    assert ("\nworker: procman worker\n" in procfile) == (kind == "flask-factory-pyproject")
    for args in [("check",), ("check", "-e", ".env.example")]:
        checked = procman(root, *args)
        assert checked.returncode == 0, (args, checked.stderr)
        assert checked.stdout.startswith("valid Procfile: web"), checked.stdout
        assert "valid procman.yml: staging (1 host), production" in checked.stdout
    if kind.startswith("django"):
        assert "release: .venv/bin/python manage.py migrate --noinput\n" in (
            (root / "procman.yml").read_text()
        )
        settings = "mysite.settings" if kind == "django-gunicorn" else "shop.config.settings"
        assert f"\nDJANGO_SETTINGS_MODULE={settings}\n" in (root / ".env.example").read_text()


def test_existing_files_are_skipped_and_left_as_they_are(tmp_path: Path) -> None:
    root = make_app(tmp_path, {"app.py": FLASK_APP, "Procfile": "web: ./serve\n"})
    (root / "procman.yml").write_text("mine: true\n")

    done = procman(root, "init")

    assert done.returncode == 0, done.stderr
    assert "procman: skipped Procfile: it exists (procman init never replaces a file)\n" in (
        done.stdout
    )
    assert "procman: skipped procman.yml: it exists" in done.stdout
    assert "procman: wrote queues.yml\n" in done.stdout
    assert (root / "Procfile").read_text() == "web: ./serve\n"
    assert (root / "procman.yml").read_text() == "mine: true\n"
    again = procman(root, "init")
    assert again.stdout.count("skipped") == 4 and "wrote" not in again.stdout


def test_a_template_that_fails_writes_nothing_and_names_its_line(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", {"app.py": FLASK_APP})
    override = tmp_path / "mine" / "init"
    override.mkdir(parents=True)
    (override / "env.example.j2").write_text("PORT=5000\n{{ detected.nothing }}\n")

    done = procman(root, "init", "--template-dir", str(tmp_path / "mine"))

    assert done.returncode == 1
    assert done.stderr.startswith(f"procman: error: {override / 'env.example.j2'}:2: ")
    assert done.stderr.count("\n") == 1
    assert sorted(p.name for p in root.iterdir()) == ["app.py"]


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = procman(tmp_path, "init", "-d", "nope")
    assert (done.returncode, done.stderr) == (
        2,
        "procman: error: nope is not a directory (run procman init in the app's directory)\n",
    )


def test_the_starter_procman_yml_generates_a_valid_pipeline(tmp_path: Path) -> None:
    root = make_app(tmp_path, {"app.py": FLASK_APP, "requirements.txt": "flask\ngunicorn\n"})
    assert procman(root, "init").returncode == 0

    done = procman(root, "pipeline", "generate", "gitlab")

    assert done.returncode == 0, done.stderr
    text = (root / ".gitlab-ci.yml").read_text()
    assert '    - "python -m pytest -q"\n' in text
    assert "    - procman deploy production\n" in text


@pytest.mark.timeout(60)
def test_a_flask_starter_serves_under_procman_start(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("gunicorn", path=str(VENV_BIN)) is None:
        pytest.fail(f"gunicorn is not in {VENV_BIN}: run scripts/test, which installs it")
    make_app(app.root, {"app.py": FLASK_APP, "requirements.txt": "flask\ngunicorn\n"})
    assert procman(app.root, "init").returncode == 0
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    port = free_port()

    process = app.spawn("start", "-p", str(port), "--no-color")
    output = LiveOutput(process)
    output.wait_for(f"Listening at: http://0.0.0.0:{port}", timeout=30)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello from the starter")
    finally:
        connection.close()

    os.killpg(process.pid, signal.SIGINT)
    status, log = output.finish(timeout=20)
    assert status == 130, log


def test_a_directory_that_cannot_be_written_is_a_one_line_error(tmp_path: Path) -> None:
    """/sys/kernel refuses new files even to root (whom chmod would not stop)."""
    done = procman(tmp_path, "init", "-d", "/sys/kernel")

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "procman: error: cannot write /sys/kernel/Procfile: Permission denied; no starter file"
        " was written (run procman init in a directory you can write to)\n"
    )


def test_a_django_apps_starter_files_are_the_golden_ones(tmp_path: Path) -> None:
    root = make_app(tmp_path / "mysite", KINDS["django-gunicorn"][0])
    (root / "requirements.txt").write_text("Django>=5\ngunicorn==22.0\nrq>=2\npytest\n")
    golden = Path(__file__).resolve().parents[1] / "golden" / "init" / "django"

    assert procman(root, "init").returncode == 0

    for name in STARTERS:
        written = (root / name).read_text()
        if os.environ.get("PROCMAN_UPDATE_GOLDEN"):
            golden.mkdir(parents=True, exist_ok=True)
            (golden / name).write_text(written)
        assert written == (golden / name).read_text(), name
