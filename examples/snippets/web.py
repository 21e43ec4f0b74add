"""The web process: list recent snippets, paste a new one, show one.

Pasting stores the snippet and enqueues ``snippets.jobs.highlight`` for the worker, so the request
returns at once; the snippet's page says "highlighting…" (and reloads itself) until the worker has
stored the highlighted HTML.

The Procfile serves it with gunicorn's application factory syntax, ``snippets.web:create_app()``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime

from flask import Flask, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from procman.errors import ProcmanError
from snippets import db
from snippets.config import Settings, load_settings
from snippets.jobs import FORMATTER, highlight

log = logging.getLogger("snippets.web")

MAX_TITLE = 200
MAX_CODE = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SETTINGS"] = settings or load_settings()
    app.config["MAX_CONTENT_LENGTH"] = MAX_CODE + 4096
    app.teardown_appcontext(_close_connection)
    app.add_template_filter(_timestamp, "timestamp")
    app.add_url_rule("/", view_func=index, methods=["GET", "POST"])
    app.add_url_rule("/s/<int:snippet_id>", view_func=show)
    app.add_url_rule("/health", view_func=health)
    return app


def index() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return render_template("index.html", snippets=db.recent(_connection()))
    title = request.form.get("title", "").strip() or "Untitled"
    code = request.form.get("code", "")
    error = _invalid(title, code)
    if error:
        page = render_template(
            "index.html", snippets=db.recent(_connection()), error=error, title=title, code=code
        )
        return page, 400
    snippet_id = db.add(_connection(), title, code, time.time())
    try:
        highlight.delay(snippet_id)
    except ProcmanError as error:  # no Redis: the snippet is shown without colours
        log.warning("could not enqueue highlighting of snippet %d: %s", snippet_id, error)
    return redirect(url_for("show", snippet_id=snippet_id), code=303)


def show(snippet_id: int) -> str:
    snippet = db.get(_connection(), snippet_id)
    if snippet is None:
        abort(404)
    return render_template("snippet.html", snippet=snippet, styles=_styles())


def health() -> tuple[str, int, dict[str, str]]:
    _connection().execute("SELECT 1")
    return "ok", 200, {"Content-Type": "text/plain"}


def _invalid(title: str, code: str) -> str | None:
    if not code.strip():
        return "Paste some code first."
    if len(title) > MAX_TITLE:
        return f"Keep the title under {MAX_TITLE} characters."
    if len(code) > MAX_CODE:
        return f"Keep the snippet under {MAX_CODE // 1024} KiB."
    return None


def _connection() -> sqlite3.Connection:
    if "db" not in g:
        g.db = db.connect(current_app.config["SETTINGS"].database)
    connection: sqlite3.Connection = g.db
    return connection


def _close_connection(error: BaseException | None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


def _styles() -> str:
    return FORMATTER.get_style_defs(".highlight")


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
