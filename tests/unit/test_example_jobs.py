"""The example app's background job in inline mode (no Redis, no worker): pasting a snippet
enqueues its highlighting, which runs at once and is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from procman.queues.testing import inline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("SNIPPETS_DB", str(tmp_path / "snippets.db"))
    from snippets.web import create_app

    return create_app().test_client()


def test_pasting_enqueues_highlighting_which_runs_inline(client: FlaskClient) -> None:
    with inline() as jobs:
        response = client.post("/", data={"title": "hello.py", "code": 'print("<hi>")'})
    assert response.status_code == 303
    assert [job.func_name for job in jobs] == ["snippets.jobs.highlight"]
    assert jobs[0].args == (1,) and jobs[0].origin == "default"
    assert jobs[0].return_value() is True
    page = client.get("/s/1").get_data(as_text=True)
    assert "highlighting…" not in page
    assert '<span class="nb">print</span>' in page and "&lt;hi&gt;" in page


def test_the_page_says_highlighting_until_the_job_has_run(client: FlaskClient) -> None:
    from snippets import db, jobs
    from snippets.config import load_settings

    connection = db.connect(load_settings().database)
    snippet_id = db.add(connection, "notes", "plain words", 0.0)
    page = client.get(f"/s/{snippet_id}").get_data(as_text=True)
    assert "highlighting…" in page and 'http-equiv="refresh"' in page
    with inline():
        jobs.highlight.delay(snippet_id)
    page = client.get(f"/s/{snippet_id}").get_data(as_text=True)
    assert "highlighting…" not in page and "plain words" in page
    assert jobs.highlight(999) is False  # deleted before the worker got to it
    connection.close()
