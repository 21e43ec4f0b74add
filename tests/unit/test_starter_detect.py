"""procman init's detection: whatever the app's files hold, an answer (never an exception), and
the commands it derives are ones the Procfile parser accepts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from procman.procfile import parse_procfile
from procman.starter.detect import detect

FAST = settings(max_examples=150, deadline=None)
NAMES = ["manage.py", "app.py", "main.py", "pkg/__init__.py", "src/api/main.py", "requirements.txt",
         "pyproject.toml", "tests/app.py", ".hidden/app.py", "my-dir/app.py"]  # fmt: skip
SNIPPETS = st.sampled_from(
    [
        "from flask import Flask\n",
        "app = Flask(__name__)\n",
        "api: FastAPI = FastAPI()\n",
        "def create_app():\n",
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.b.settings')\n",
        "gunicorn\n",
        "uvicorn[standard]\n",
        "rq>=2\n",
        '[project]\ndependencies = ["uvicorn"]\n',
    ]
)
CONTENTS = st.lists(st.one_of(SNIPPETS, st.text(max_size=40)), max_size=5).map("".join)


@FAST
@given(st.dictionaries(st.sampled_from(NAMES), CONTENTS, max_size=6))
def test_any_app_directory_gives_a_valid_web_line(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)

        detected = detect(root)

    assert detected.findings
    assert detected.server in {"gunicorn", "uvicorn"}
    assert parse_procfile(f"web: {detected.web_command}\n").names == ["web"]
    if detected.target is not None:
        assert "\n" not in detected.target
    if "manage.py" in files:
        assert detected.framework == "django"
