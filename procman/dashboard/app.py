"""The dashboard: a Flask application over ``procman.queues`` (monitoring, browse, stats) and the
running supervisor's snapshot.

Every listing is a page and a JSON endpoint (``/api/...``) built from the same typed result.
Pages are Jinja2 templates under ``templates/dashboard/`` rendered through
``procman.templating`` (autoescaped: nothing read from Redis is ever markup); the CSS and the one
small script are served from the package. GET never changes anything; every action is a POST
carrying the CSRF token, answered by a redirect back to the page it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, jsonify, redirect, request, send_from_directory, url_for

from procman.dashboard import security
from procman.errors import ProcmanError
from procman.queues import browse, monitoring, stats
from procman.queues.connection import RedisUnavailable
from procman.templating import Templates, load_templates, packaged_templates_dir

if TYPE_CHECKING:
    from procman.supervisor.snapshot import Snapshot

PAGE_SIZES = (20, 50, 100)
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Processes:
    """What the running ``procman start`` reported: a Snapshot, or why there is none."""

    snapshot: Snapshot | None
    note: str


@dataclass(slots=True)
class Sources:
    store: browse.Store
    processes: Callable[[], Processes]
    credentials: security.Credentials | None
    app_name: str = ""


def create_app(sources: Sources, template_dir: Path | None = None) -> Flask:
    """The dashboard as a WSGI application (mount it anywhere: its URLs follow SCRIPT_NAME)."""
    static = packaged_templates_dir() / "dashboard" / "static"
    app = Flask("procman.dashboard", static_folder=None)
    templates = load_templates(template_dir, filters=FILTERS)
    _security(app, sources.credentials)
    _pages(app, sources, templates)
    _actions(app, sources)
    _api(app, sources)

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Response:
        return send_from_directory(static, name, max_age=300)

    @app.errorhandler(ProcmanError)
    def procman_error(error: ProcmanError) -> tuple[Any, int]:
        status = 503 if isinstance(error, RedisUnavailable) else 400
        if request.path.startswith("/api/"):
            return jsonify({"error": str(error), "hint": error.hint}), status
        body = _render(templates, sources, "error.html", error=str(error), hint=error.hint)
        return body, status

    return app


# -- security ---------------------------------------------------------------------------------


def _security(app: Flask, credentials: security.Credentials | None) -> None:
    @app.before_request
    def check() -> Response | None:
        if credentials is not None:
            given = security.basic_auth(request.headers.get("Authorization"))
            if given is None or not credentials.check(*given):
                return Response(
                    "authentication required\n",
                    401,
                    {"WWW-Authenticate": 'Basic realm="procman dashboard", charset="UTF-8"'},
                    mimetype="text/plain",
                )
        if request.method not in ("GET", "HEAD"):
            if request.method != "POST":
                abort(405)
            submitted = request.form.get(security.CSRF_FIELD) or request.headers.get(
                security.CSRF_HEADER
            )
            cookie = request.cookies.get(security.CSRF_COOKIE)
            origin_ok = security.same_origin(request.headers.get("Origin"), request.host)
            if not origin_ok or not security.csrf_ok(cookie, submitted):
                return Response(
                    "refused: this action's CSRF token is missing or wrong (reload the page and "
                    "try again)\n",
                    403,
                    mimetype="text/plain",
                )
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.update(security.HEADERS)
        if request.cookies.get(security.CSRF_COOKIE) is None:
            response.set_cookie(
                security.CSRF_COOKIE,
                _csrf_token(),
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
                path=request.script_root or "/",
            )
        return response


def _csrf_token() -> str:
    """This browser's token: its cookie's, else one made now (set as the cookie on the way
    out, see ``headers``)."""
    from flask import g

    token = request.cookies.get(security.CSRF_COOKIE) or g.get("csrf_token")
    if token is None:
        token = g.csrf_token = security.new_csrf_token()
    return str(token)


# -- pages ------------------------------------------------------------------------------------


def _pages(app: Flask, sources: Sources, templates: Templates) -> None:
    def page(name: str, **context: Any) -> str:
        return _render(templates, sources, name, **context)

    @app.get("/")
    def overview() -> str:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, sources.store.config)
            counts = stats.read_counts(connection)
        processes = sources.processes()
        busy = sum(1 for worker in data.workers if worker.job_id is not None)
        return page(
            "overview.html",
            active="overview",
            overview=data,
            counts=counts,
            processes=processes,
            busy=busy,
            idle=len(data.workers) - busy,
            minute_chart=_chart(counts.minutes),
            day_chart=_chart(counts.days),
        )

    @app.get("/queues")
    def queues() -> str:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, sources.store.config)
        return page("queues.html", active="queues", overview=data)

    @app.get("/queues/<name>")
    def queue(name: str) -> str:
        offset, limit = _paging()
        newest = request.args.get("order") == "newest"
        with sources.store.connection() as connection:
            listing = browse.pending_jobs(
                connection,
                sources.store.config,
                name,
                offset=offset,
                limit=limit,
                newest_first=newest,
            )
        return page("queue.html", active="queues", page=listing, pager=_pager(listing))

    @app.get("/workers")
    def workers() -> str:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, sources.store.config)
        return page("workers.html", active="workers", overview=data)

    @app.get("/failed")
    def failed() -> str:
        offset, limit = _paging()
        queue_name = request.args.get("queue") or None
        search = (request.args.get("search") or "").strip() or None
        with sources.store.connection() as connection:
            listing = browse.failed_listing(
                connection,
                sources.store.config,
                queue_name,
                offset=offset,
                limit=limit,
                search=search,
            )
            names = browse.queue_names(connection, sources.store.config)
        return page(
            "failed.html", active="failed", page=listing, pager=_pager(listing), queues=names
        )

    @app.get("/scheduled")
    def scheduled() -> str:
        offset, limit = _paging()
        with sources.store.connection() as connection:
            listing = browse.scheduled_jobs(
                connection, sources.store.config, offset=offset, limit=limit
            )
        periodic = browse.periodic_jobs(sources.store.config)
        return page(
            "scheduled.html",
            active="scheduled",
            page=listing,
            pager=_pager(listing),
            periodic=periodic,
        )

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> str:
        with sources.store.connection() as connection:
            detail = monitoring.job_detail(connection, job_id)
        return page("job.html", active="", job=detail)


# -- actions ----------------------------------------------------------------------------------


def _actions(app: Flask, sources: Sources) -> None:
    @contextmanager
    def acting() -> Iterator[Any]:
        with sources.store.connection() as connection:
            yield connection

    config = sources.store.config

    @app.post("/queues/<name>/jobs/<job_id>/delete")
    def delete_pending(name: str, job_id: str) -> Response:
        with acting() as connection:
            browse.delete_pending(connection, config, name, job_id)
        return _back(f"deleted job {job_id}")

    @app.post("/queues/<name>/jobs/<job_id>/front")
    def move_to_front(name: str, job_id: str) -> Response:
        with acting() as connection:
            browse.move_to_front(connection, config, name, job_id)
        return _back(f"job {job_id} is next in queue {name}")

    @app.post("/workers/<name>/stop")
    def stop_worker(name: str) -> Response:
        with acting() as connection:
            what = browse.stop_worker(connection, name)
        if what == "pool":
            return _back(f"asked the pool of {name} to stop (warm: running jobs finish first)")
        return _back(f"asked worker {name} to stop (warm: its running job finishes first)")

    @app.post("/failed/<job_id>/retry")
    def retry(job_id: str) -> Response:
        with acting() as connection:
            ref = monitoring.retry_job(connection, job_id)
        return _back(f"requeued job {ref.id} on queue {ref.queue}")

    @app.post("/failed/<job_id>/delete")
    def delete_failed(job_id: str) -> Response:
        with acting() as connection:
            monitoring.delete_job(connection, job_id)
        return _back(f"deleted job {job_id}")

    @app.post("/failed/retry-all")
    def retry_all() -> Response:
        with acting() as connection:
            report = browse.retry_all_failed(connection, config, request.form.get("queue") or None)
        return _back(f"requeued {report.done} failed jobs" + _missing(report))

    @app.post("/failed/delete-all")
    def delete_all() -> Response:
        with acting() as connection:
            report = browse.delete_all_failed(connection, config, request.form.get("queue") or None)
        return _back(f"deleted {report.done} failed jobs" + _missing(report))

    @app.post("/scheduled/<job_id>/enqueue")
    def enqueue_now(job_id: str) -> Response:
        with acting() as connection:
            queue = browse.enqueue_scheduled_now(connection, job_id)
        return _back(f"enqueued job {job_id} on queue {queue}")


def _missing(report: browse.BulkReport) -> str:
    return f" ({report.missing} whose data had expired dropped)" if report.missing else ""


def _back(notice: str) -> Response:
    """303 to the page the form was on (a path of this app only), with the notice shown."""
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    path, _, query = target.partition("?")
    kept = [part for part in query.split("&") if part and not part.startswith("notice=")]
    kept.append(urlencode({"notice": notice}))
    response = redirect(f"{request.script_root}{path}?{'&'.join(kept)}", code=303)
    return response  # type: ignore[return-value]


# -- JSON -------------------------------------------------------------------------------------


def _api(app: Flask, sources: Sources) -> None:
    config = sources.store.config

    @app.get("/api/overview")
    def api_overview() -> Response:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, config)
            counts = stats.read_counts(connection)
        processes = sources.processes()
        return jsonify(
            {
                **data.as_json(),
                "redis": sources.store.label,
                "counts": counts.as_json(),
                "processes": _processes_json(processes),
            }
        )

    @app.get("/api/queues")
    def api_queues() -> Response:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, config)
        return jsonify({"queues": [queue.as_json() for queue in data.queues]})

    @app.get("/api/queues/<name>")
    def api_queue(name: str) -> Response:
        offset, limit = _paging()
        newest = request.args.get("order") == "newest"
        with sources.store.connection() as connection:
            listing = browse.pending_jobs(
                connection, config, name, offset=offset, limit=limit, newest_first=newest
            )
        return jsonify(listing.as_json())

    @app.get("/api/workers")
    def api_workers() -> Response:
        with sources.store.connection() as connection:
            data = monitoring.overview(connection, config)
        return jsonify({"workers": [worker.as_json() for worker in data.workers]})

    @app.get("/api/failed")
    def api_failed() -> Response:
        offset, limit = _paging()
        search = (request.args.get("search") or "").strip() or None
        with sources.store.connection() as connection:
            listing = browse.failed_listing(
                connection,
                config,
                request.args.get("queue") or None,
                offset=offset,
                limit=limit,
                search=search,
            )
        return jsonify(listing.as_json())

    @app.get("/api/scheduled")
    def api_scheduled() -> Response:
        offset, limit = _paging()
        with sources.store.connection() as connection:
            listing = browse.scheduled_jobs(connection, config, offset=offset, limit=limit)
        return jsonify(
            {
                **listing.as_json(),
                "periodic": [entry.as_json() for entry in browse.periodic_jobs(config)],
            }
        )

    @app.get("/api/jobs/<job_id>")
    def api_job(job_id: str) -> Response:
        with sources.store.connection() as connection:
            return jsonify(monitoring.job_detail(connection, job_id).as_json())

    @app.get("/api/stats")
    def api_stats() -> Response:
        with sources.store.connection() as connection:
            return jsonify(stats.read_counts(connection).as_json())


def _processes_json(processes: Processes) -> dict[str, Any]:
    from procman.supervisor.control.protocol import process_json

    if processes.snapshot is None:
        return {"running": False, "note": processes.note}
    return {
        "running": True,
        "formation": dict(processes.snapshot.formation),
        "processes": [process_json(process) for process in processes.snapshot.processes],
    }


# -- helpers ----------------------------------------------------------------------------------


def _render(templates: Templates, sources: Sources, name: str, **context: Any) -> str:
    return templates.render(
        f"dashboard/{name}",
        {
            "url_for": url_for,
            "csrf_field": security.CSRF_FIELD,
            "csrf_token": _csrf_token(),
            "notice": request.args.get("notice"),
            "here": request.full_path.rstrip("?"),
            "redis": sources.store.label,
            "app_name": sources.app_name,
            "active": "",
            "now": datetime.now(UTC),
            **context,
        },
    )


def _paging() -> tuple[int, int]:
    try:
        offset = max(0, int(request.args.get("offset", 0)))
        limit = min(MAX_LIMIT, max(1, int(request.args.get("limit", PAGE_SIZES[0]))))
    except ValueError:
        abort(400)
    return offset, limit


@dataclass(frozen=True, slots=True)
class Pager:
    first: int
    last: int
    total: int
    previous: str | None
    next: str | None


def _pager(listing: browse.Page) -> Pager:
    def link(offset: int) -> str:
        args = {key: value for key, value in request.args.items() if key != "notice"}
        args["offset"] = str(offset)
        return f"{request.script_root}{request.path}?{urlencode(args)}"

    shown = len(listing.jobs)
    if listing.search is not None:  # a search goes on from where the last one stopped
        following = link(listing.next_offset) if listing.next_offset is not None else None
        return Pager(0, 0, listing.total, link(0) if listing.offset else None, following)
    previous = link(max(0, listing.offset - listing.limit)) if listing.offset > 0 else None
    following = link(listing.offset + listing.limit) if listing.more else None
    first = listing.offset + 1 if shown else 0
    return Pager(first, listing.offset + shown, listing.total, previous, following)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    height: float
    failed_height: float
    label: str
    processed: int
    failed: int


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    width: float
    height: float
    peak: int


CHART_HEIGHT = 80.0


def _chart(series: stats.Series) -> Chart:
    """Bars for an SVG drawn by the template (no script, no library): processed, and failed
    over it."""
    peak = max([*series.processed, *series.failed, 1])
    width = 6.0
    bars = tuple(
        Bar(
            x=index * (width + 2),
            height=CHART_HEIGHT * done / peak,
            failed_height=CHART_HEIGHT * failed / peak,
            label=label,
            processed=done,
            failed=failed,
        )
        for index, (label, done, failed) in enumerate(
            zip(series.labels, series.processed, series.failed, strict=True)
        )
    )
    return Chart(bars=bars, width=len(bars) * (width + 2), height=CHART_HEIGHT, peak=peak)


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    text = _duration(abs(seconds))
    return f"in {text}" if future else f"{text} ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{math.floor(seconds)}s"
    if seconds < 3600:
        return f"{math.floor(seconds / 60)}m {math.floor(seconds % 60)}s"
    if seconds < 86400:
        return f"{math.floor(seconds / 3600)}h {math.floor(seconds % 3600 / 60)}m"
    return f"{math.floor(seconds / 86400)}d {math.floor(seconds % 86400 / 3600)}h"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS: dict[str, Callable[..., Any]] = {"ago": _ago, "duration": _duration, "when": _when}
