"""The dashboard against a real Redis: its JSON endpoints, its actions, its safety (auth, CSRF,
escaping, headers), mounting in a Flask app, and the worker's job counts. Requests go through
Flask's test client (the WSGI app itself, no server); jobs are run by RQ's SimpleWorker in this
process, or by the installed ``procman worker``/``procman start`` where the test is about them."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.worker import SimpleWorker
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from procman.commands.dashboard import build, wsgi_app
from procman.commands.jobs import JobsOptions
from procman.queues import browse, stats
from procman.settings import AppOptions
from tests.conftest import App, LiveOutput, wait_until

pytestmark = pytest.mark.timeout(90)

JOBS = "tests.integration.monitoring_jobs"
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Procfile").write_text("web: sleep 60\n")
    (tmp_path / "jobs.py").write_text("def cleanup():\n    pass\n")
    (tmp_path / "queues.yml").write_text(
        "queues:\n  - [critical, 5]\n  - [default, 3]\nschedule:\n"
        "  nightly: {cron: '0 3 * * *', func: jobs.cleanup, queue: default}\n"
    )
    for name in ("PROCMAN_DASHBOARD_USER", "PROCMAN_DASHBOARD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PROCMAN_DASHBOARD_PASSWORD_HASH", raising=False)
    return tmp_path


def dashboard(app_dir: Path, redis_url: str) -> Flask:
    options = JobsOptions(app=AppOptions(root=app_dir), redis_url=redis_url)
    return build(options, require_credentials=False)


@pytest.fixture
def web(app_dir: Path, redis_url: str) -> FlaskClient:
    return dashboard(app_dir, redis_url).test_client()


def enqueue(connection: redis.Redis, queue: str, func: str, *args: object) -> Job:
    return Queue(queue, connection=connection).enqueue(f"{JOBS}.{func}", *args)


def work(connection: redis.Redis, *queues: str) -> None:
    SimpleWorker(list(queues or ["default"]), connection=connection).work(burst=True)


def failed_jobs(connection: redis.Redis, count: int, message: str = "boom") -> list[Job]:
    jobs = [enqueue(connection, "default", "fail", f"{message} {n}") for n in range(count)]
    work(connection)
    return jobs


def token(web: FlaskClient) -> str:
    web.get("/")
    cookie = web.get_cookie("procman_csrf")
    assert cookie is not None
    return cookie.value


def post(web: FlaskClient, path: str, **fields: str) -> Any:
    return web.post(path, data={"csrf_token": token(web), "next": "/", **fields})


# -- JSON endpoints ---------------------------------------------------------------------------


def test_overview_json_has_queues_workers_counts_and_no_processes(
    web: FlaskClient, connection: redis.Redis
) -> None:
    enqueue(connection, "critical", "add", 1, 2)
    data = web.get("/api/overview").get_json()
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["critical"]["weight"] == 5 and queues["critical"]["queued"] == 1
    assert queues["default"]["weight"] == 3
    assert data["workers"] == []
    assert set(data["counts"]) == {"minutes", "days", "processed_total", "failed_total"}
    assert len(data["counts"]["minutes"]["processed"]) == 60
    assert len(data["counts"]["days"]["processed"]) == 30
    assert data["processes"]["running"] is False
    assert "no 'procman start' is running" in data["processes"]["note"]


def test_pending_jobs_page_oldest_and_newest_first(
    web: FlaskClient, connection: redis.Redis
) -> None:
    ids = [enqueue(connection, "default", "add", n, n).id for n in range(25)]
    first = web.get("/api/queues/default?limit=10").get_json()
    assert [job["id"] for job in first["jobs"]] == ids[:10]
    assert first["total"] == 25 and first["more"] is True
    last = web.get("/api/queues/default?limit=10&offset=20").get_json()
    assert [job["id"] for job in last["jobs"]] == ids[20:]
    assert last["more"] is False
    newest = web.get("/api/queues/default?limit=10&order=newest").get_json()
    assert [job["id"] for job in newest["jobs"]] == ids[::-1][:10]
    tail = web.get("/api/queues/default?limit=10&offset=20&order=newest").get_json()
    assert [job["id"] for job in tail["jobs"]] == ids[::-1][20:]
    assert newest["jobs"][0]["function"] == f"{JOBS}.add"


def test_failed_jobs_page_with_traceback_and_search(
    web: FlaskClient, connection: redis.Redis
) -> None:
    failed_jobs(connection, 3)
    enqueue(connection, "default", "add", "x", 1)  # TypeError: a different function fails
    work(connection)
    page = web.get("/api/failed?limit=2").get_json()
    assert page["total"] == 4 and len(page["jobs"]) == 2 and page["more"] is True
    rest = web.get("/api/failed?limit=2&offset=2").get_json()
    assert rest["more"] is False
    jobs = page["jobs"] + rest["jobs"]
    assert len({job["id"] for job in jobs}) == 4
    errors = sorted(job["error"] for job in jobs)
    assert errors[0].startswith("TypeError")
    assert errors[1:] == [f"ValueError: boom {n}" for n in range(3)]
    assert all(job["traceback"].startswith("Traceback") for job in jobs)
    found = web.get("/api/failed?search=FAIL").get_json()
    assert sorted(job["error"] for job in found["jobs"]) == errors[1:]
    assert {job["function"] for job in found["jobs"]} == {f"{JOBS}.fail"}
    assert found["searched"] == 4
    assert web.get("/api/failed?search=nothing_like_it").get_json()["jobs"] == []


def test_a_search_goes_in_slices_and_goes_on_where_it_stopped(
    web: FlaskClient, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed_jobs(connection, 5)
    monkeypatch.setattr(browse, "SEARCH_SLICE", 2)
    everything = web.get("/api/failed?search=monitoring_jobs.fail&limit=10").get_json()
    assert everything["searched"] == 5 and len(everything["jobs"]) == 5
    assert everything["next_offset"] is None and everything["more"] is False
    newest_first = [job["id"] for job in everything["jobs"]]
    monkeypatch.setattr(browse, "SEARCH_SCAN", 3)
    first = web.get("/api/failed?search=fail&limit=10").get_json()
    assert first["searched"] == 3 and first["next_offset"] == 3
    rest = web.get("/api/failed?search=fail&limit=10&offset=3").get_json()
    assert rest["searched"] == 2 and rest["next_offset"] is None
    assert [job["id"] for job in first["jobs"] + rest["jobs"]] == newest_first
    monkeypatch.setattr(browse, "SEARCH_SCAN", 100)
    full_page = web.get("/api/failed?search=fail&limit=2").get_json()  # stops mid-slice
    assert [job["id"] for job in full_page["jobs"]] == newest_first[:2]
    after = web.get(f"/api/failed?search=fail&limit=2&offset={full_page['next_offset']}").get_json()
    assert [job["id"] for job in after["jobs"]] == newest_first[2:4]
    page = web.get("/failed?search=fail&limit=2").get_data(as_text=True)
    assert "2 matching \u201cfail\u201d among failed jobs 1\u20132 of 5" in page
    assert "search further" in page


def test_scheduled_and_periodic_jobs(web: FlaskClient, connection: redis.Redis) -> None:
    queue = Queue("default", connection=connection)
    later = queue.enqueue_in(timedelta(hours=2), f"{JOBS}.add", 1, 1)
    soon = queue.enqueue_in(timedelta(minutes=5), f"{JOBS}.add", 2, 2)
    data = web.get("/api/scheduled").get_json()
    assert [job["id"] for job in data["jobs"]] == [soon.id, later.id]
    when = datetime.fromisoformat(data["jobs"][0]["scheduled_for"])
    assert timedelta(minutes=4) < when - datetime.now(UTC) <= timedelta(minutes=5)
    (nightly,) = data["periodic"]
    assert nightly["name"] == "nightly" and nightly["cron"] == "0 3 * * *"
    assert datetime.fromisoformat(nightly["next_run"]).astimezone().hour == 3


def test_job_detail_and_unknown_job(web: FlaskClient, connection: redis.Redis) -> None:
    (job,) = failed_jobs(connection, 1)
    detail = web.get(f"/api/jobs/{job.id}").get_json()
    assert detail["status"] == "failed" and detail["args"] == ["'boom 0'"]
    missing = web.get("/api/jobs/no-such-job")
    assert missing.status_code == 400
    assert "no job with id" in missing.get_json()["error"]


def test_every_page_renders(web: FlaskClient, connection: redis.Redis) -> None:
    (job,) = failed_jobs(connection, 1)
    enqueue(connection, "default", "add", 1, 1)
    for path in ("/", "/queues", "/queues/default", "/workers", "/failed", "/scheduled"):
        response = web.get(path)
        assert response.status_code == 200, path
    assert web.get(f"/jobs/{job.id}").status_code == 200
    assert web.get("/queues/nosuch").status_code == 400


# -- actions ----------------------------------------------------------------------------------


def test_move_to_front_and_delete_a_pending_job(web: FlaskClient, connection: redis.Redis) -> None:
    ids = [enqueue(connection, "default", "add", n, n).id for n in range(4)]
    response = post(web, f"/queues/default/jobs/{ids[2]}/front", next="/queues/default")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/queues/default?notice=")
    key = Queue("default", connection=connection).key
    assert [raw.decode() for raw in connection.lrange(key, 0, -1)] == [
        ids[2],
        ids[0],
        ids[1],
        ids[3],
    ]
    post(web, f"/queues/default/jobs/{ids[0]}/delete")
    assert [raw.decode() for raw in connection.lrange(key, 0, -1)] == [ids[2], ids[1], ids[3]]
    assert not connection.exists(Job.key_for(ids[0]))
    again = post(web, f"/queues/default/jobs/{ids[0]}/front")
    assert again.status_code == 400


def test_retry_and_delete_one_failed_job(web: FlaskClient, connection: redis.Redis) -> None:
    first, second = failed_jobs(connection, 2)
    assert post(web, f"/failed/{first.id}/retry").status_code == 303
    assert Job.fetch(first.id, connection=connection).get_status() == JobStatus.QUEUED
    assert Queue("default", connection=connection).job_ids == [first.id]
    assert post(web, f"/failed/{second.id}/delete").status_code == 303
    assert not connection.exists(Job.key_for(second.id))
    assert FailedJobRegistry("default", connection=connection).count == 0


def test_retry_all_and_delete_all_go_in_batches(
    web: FlaskClient, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "BATCH", 3)
    jobs = failed_jobs(connection, 7)
    connection.delete(Job.key_for(jobs[0].id))  # data gone: dropped, not requeued
    response = post(web, "/failed/retry-all", queue="", next="/failed")
    assert "requeued+6+failed+jobs" in response.headers["Location"]
    assert FailedJobRegistry("default", connection=connection).count == 0
    assert sorted(Queue("default", connection=connection).job_ids) == sorted(j.id for j in jobs[1:])
    work(connection)
    assert FailedJobRegistry("default", connection=connection).count == 6
    post(web, "/failed/delete-all", queue="default")
    assert FailedJobRegistry("default", connection=connection).count == 0
    assert not any(connection.exists(Job.key_for(job.id)) for job in jobs)
    assert connection.keys("rq:job:*") == []
    # only the results of the job whose hash the test deleted by hand (not through RQ) are left
    assert connection.keys("rq:results:*") == [f"rq:results:{jobs[0].id}".encode()]


def test_enqueue_a_scheduled_job_now(web: FlaskClient, connection: redis.Redis) -> None:
    job = Queue("default", connection=connection).enqueue_in(
        timedelta(hours=1), f"{JOBS}.add", 1, 2
    )
    assert post(web, f"/scheduled/{job.id}/enqueue").status_code == 303
    assert Queue("default", connection=connection).job_ids == [job.id]
    assert web.get("/api/scheduled").get_json()["total"] == 0
    work(connection)
    assert Job.fetch(job.id, connection=connection).return_value() == 3


def test_stop_a_procman_worker_pool_warm(
    app: App,
    redis_url: str,
    connection: redis.Redis,
    live: type[LiveOutput],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.procfile("worker: procman worker\n")
    app.write("queues.yml", "concurrency: 1\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    procman = app.spawn("worker")
    output = live(procman)
    wait_until(lambda: web_workers(app.root, redis_url), timeout=20, what="a registered worker")
    web = dashboard(app.root, redis_url).test_client()
    (worker,) = web.get("/api/workers").get_json()["workers"]
    response = post(web, f"/workers/{worker['name']}/stop", next="/workers")
    assert "asked+the+pool" in response.headers["Location"]
    code, text = output.finish(timeout=20)
    assert code == 0, text
    assert "stop asked from the dashboard: no job running: stopping" in text


def test_stop_a_plain_rq_worker_sends_rq_s_shutdown_command(
    web: FlaskClient, connection: redis.Redis
) -> None:
    import json

    from rq.worker import Worker

    worker = Worker(["default"], connection=connection, name="plain-rq-worker")
    worker.register_birth()
    pubsub = connection.pubsub()
    pubsub.subscribe("rq:pubsub:plain-rq-worker")
    pubsub.get_message(timeout=5)  # the subscription's confirmation
    try:
        response = post(web, "/workers/plain-rq-worker/stop", next="/workers")
        assert "asked+worker+plain-rq-worker+to+stop" in response.headers["Location"]
        message = pubsub.get_message(timeout=5)
        assert message is not None
        assert json.loads(message["data"]) == {"command": "shutdown"}
        assert post(web, "/workers/nobody/stop").status_code == 400
    finally:
        pubsub.close()
        worker.register_death()


def web_workers(root: Path, redis_url: str) -> list[Any]:
    workers: list[Any] = (
        dashboard(root, redis_url).test_client().get("/api/workers").get_json()["workers"]
    )
    return workers


def test_overview_shows_the_processes_of_a_running_procman_start(
    app: App, redis_url: str, live: type[LiveOutput]
) -> None:
    app.procfile("web: sleep 30\nclock: sleep 30\n")
    procman = app.spawn("start", "--redis-url", redis_url)
    output = live(procman)
    output.wait_for("clock.1")
    web = dashboard(app.root, redis_url).test_client()

    def running() -> bool:
        processes = web.get("/api/overview").get_json()["processes"]
        return bool(processes["running"]) and all(
            p["state"] == "running" for p in processes["processes"]
        )

    wait_until(running, timeout=15, what="both processes running")
    data = web.get("/api/overview").get_json()["processes"]
    assert data["formation"] == {"web": 1, "clock": 1}
    assert [p["name"] for p in data["processes"]] == ["web.1", "clock.1"]
    html = web.get("/").get_data(as_text=True)
    assert "web.1" in html and "clock.1" in html


# -- safety -----------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    web: FlaskClient, connection: redis.Redis
) -> None:
    (job,) = failed_jobs(connection, 1)
    web.get("/")
    assert web.post(f"/failed/{job.id}/delete", data={"next": "/"}).status_code == 403
    wrong = web.post(f"/failed/{job.id}/delete", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    other_site = web.post(
        f"/failed/{job.id}/delete",
        data={"csrf_token": token(web)},
        headers={"Origin": "http://evil.example"},
    )
    assert other_site.status_code == 403
    assert connection.exists(Job.key_for(job.id))
    assert FailedJobRegistry("default", connection=connection).count == 1


def test_get_never_changes_anything(web: FlaskClient, connection: redis.Redis) -> None:
    (job,) = failed_jobs(connection, 1)
    for path in (f"/failed/{job.id}/retry", f"/failed/{job.id}/delete", "/failed/delete-all"):
        assert web.get(path).status_code == 405
    assert FailedJobRegistry("default", connection=connection).get_job_ids() == [job.id]


def test_job_data_is_escaped_everywhere(web: FlaskClient, connection: redis.Redis) -> None:
    (job,) = failed_jobs(connection, 1, message=PAYLOAD)
    Queue(PAYLOAD[:20], connection=connection).enqueue(f"{JOBS}.add", PAYLOAD, 1)
    for path in ("/", "/queues", "/failed", f"/jobs/{job.id}", "/failed?search=%3Cscript%3E"):
        html = web.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
    failed = web.get("/failed").get_data(as_text=True)
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in failed
    )
    notice = web.get("/?notice=" + PAYLOAD).get_data(as_text=True)
    assert "<script>alert" not in notice


def test_every_response_carries_the_content_security_policy(web: FlaskClient) -> None:
    for path in ("/", "/api/overview", "/static/dashboard.js", "/nowhere"):
        headers = web.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
    html = web.get("/").get_data(as_text=True)
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "an inline script"
    assert " style=" not in html and "<style" not in html


def auth(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def test_basic_auth_when_credentials_are_set(
    app_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCMAN_DASHBOARD_USER", "admin")
    monkeypatch.setenv("PROCMAN_DASHBOARD_PASSWORD", "s3cret")
    web = dashboard(app_dir, redis_url).test_client()
    refused = web.get("/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert web.get("/", headers=auth("admin", "wrong")).status_code == 401
    assert web.get("/api/overview", headers=auth("other", "s3cret")).status_code == 401
    assert web.get("/", headers=auth("admin", "s3cret")).status_code == 200
    assert web.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_basic_auth_with_a_password_hash(
    app_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from werkzeug.security import generate_password_hash

    monkeypatch.setenv("PROCMAN_DASHBOARD_USER", "admin")
    monkeypatch.setenv("PROCMAN_DASHBOARD_PASSWORD_HASH", generate_password_hash("s3cret"))
    web = dashboard(app_dir, redis_url).test_client()
    assert web.get("/", headers=auth("admin", "s3cret")).status_code == 200
    assert web.get("/", headers=auth("admin", "s3cre")).status_code == 401


def test_serving_off_loopback_needs_credentials(app: App, redis_url: str) -> None:
    app.procfile("web: sleep 1\n")
    result = app.run("dashboard", "--bind", "0.0.0.0", "--redis-url", redis_url)
    assert result.returncode != 0
    assert result.stderr.startswith("procman: error: refusing to serve the dashboard on 0.0.0.0")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    assert (
        f"$ procman dashboard --bind 0.0.0.0\n{result.stderr}```" in docs
    )  # the page's transcript


def test_mounting_without_credentials_is_refused(app_dir: Path, redis_url: str) -> None:
    from procman.errors import ProcmanError

    with pytest.raises(ProcmanError, match="without a password"):
        wsgi_app(app_dir, redis_url=redis_url)


def test_the_redis_password_never_appears(
    app_dir: Path, redis_url: str, connection: redis.Redis
) -> None:
    connection.execute_command("ACL", "SETUSER", "dash", "on", ">hunter2-pw", "~*", "&*", "+@all")
    try:
        with_password = redis_url.replace("redis://", "redis://dash:hunter2-pw@")
        web = dashboard(app_dir, with_password).test_client()
        failed_jobs(connection, 1)
        for path in ("/", "/queues", "/workers", "/failed", "/scheduled", "/api/overview"):
            body = web.get(path).get_data(as_text=True)
            assert "hunter2-pw" not in body, path
        assert "dash:***@" in web.get("/").get_data(as_text=True) or "127.0.0.1" in body
    finally:
        connection.execute_command("ACL", "DELUSER", "dash")


def test_with_redis_away_pages_say_so_without_the_password(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("PROCMAN_DASHBOARD_USER", "admin")
    monkeypatch.setenv("PROCMAN_DASHBOARD_PASSWORD", "pw")
    away = f"redis://:hunter2-pw@127.0.0.1:{free_port()}/0"
    web = wsgi_app(app_dir, redis_url=away).test_client()  # a mounted app still starts
    page = web.get("/", headers=auth("admin", "pw"))
    assert page.status_code == 503
    text = page.get_data(as_text=True)
    assert "cannot reach Redis at redis://:***@127.0.0.1" in text and "hunter2-pw" not in text
    api = web.get("/api/failed", headers=auth("admin", "pw"))
    assert api.status_code == 503 and "hunter2-pw" not in api.get_data(as_text=True)


# -- mounting ---------------------------------------------------------------------------------


def test_mounted_in_a_flask_app_under_a_prefix(
    app_dir: Path, redis_url: str, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCMAN_DASHBOARD_USER", "admin")
    monkeypatch.setenv("PROCMAN_DASHBOARD_PASSWORD", "pw")
    site = Flask("site")

    @site.get("/")
    def home() -> str:
        return "the user's app"

    import procman.dashboard

    assert procman.dashboard.wsgi_app is wsgi_app  # the name docs/dashboard.md uses
    # the line docs/dashboard.md gives
    site.wsgi_app = DispatcherMiddleware(
        site.wsgi_app, {"/jobs": wsgi_app(app_dir, redis_url=redis_url)}
    )  # type: ignore[method-assign]
    web = site.test_client()
    assert web.get("/").get_data(as_text=True) == "the user's app"
    assert web.get("/jobs/").status_code == 401
    page = web.get("/jobs/", headers=auth("admin", "pw"))
    html = page.get_data(as_text=True)
    assert 'href="/jobs/static/dashboard.css"' in html and 'href="/jobs/failed"' in html
    assert web.get("/jobs/static/dashboard.js", headers=auth("admin", "pw")).status_code == 200
    (job,) = failed_jobs(connection, 1)
    cookie = web.get_cookie("procman_csrf", path="/jobs")
    assert cookie is not None
    response = web.post(
        f"/jobs/failed/{job.id}/retry",
        data={"csrf_token": cookie.value, "next": "/failed"},
        headers=auth("admin", "pw"),
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/jobs/failed?notice=")
    assert Queue("default", connection=connection).job_ids == [job.id]


def test_mounted_in_a_django_app_s_wsgi_py(
    app_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            ROOT_URLCONF="tests.integration.django_site",
            ALLOWED_HOSTS=["localhost"],
            SECRET_KEY="test",
            MIDDLEWARE=[],
        )
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client

    monkeypatch.setenv("PROCMAN_DASHBOARD_USER", "admin")
    monkeypatch.setenv("PROCMAN_DASHBOARD_PASSWORD", "pw")
    dashboard_app = wsgi_app(app_dir, redis_url=redis_url)
    # the line docs/dashboard.md gives for wsgi.py
    application = DispatcherMiddleware(get_wsgi_application(), {"/jobs": dashboard_app})
    web = Client(application)
    assert web.get("/").get_data(as_text=True) == "the user's Django app"
    page = web.get("/jobs/queues", headers=auth("admin", "pw"))
    assert page.status_code == 200
    assert 'href="/jobs/static/dashboard.css"' in page.get_data(as_text=True)


# -- the worker's counts ----------------------------------------------------------------------


def test_counts_per_minute_and_per_day(connection: redis.Redis) -> None:
    now = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    with connection.pipeline() as pipeline:
        stats.count_job(pipeline, failed=False, moment=now)
        stats.count_job(pipeline, failed=False, moment=now - timedelta(minutes=45))
        stats.count_job(pipeline, failed=True, moment=now - timedelta(minutes=45))
        stats.count_job(pipeline, failed=False, moment=now - timedelta(days=2))
        stats.count_job(pipeline, failed=False, moment=now - timedelta(days=40))
        pipeline.execute()
    counts = stats.read_counts(connection, now)
    assert counts.minutes.labels[-1] == "00:30" and counts.minutes.processed[-1] == 1
    assert counts.minutes.labels[14] == "23:45"
    assert (counts.minutes.processed[14], counts.minutes.failed[14]) == (1, 1)
    assert sum(counts.minutes.processed) == 2
    assert counts.days.labels[-1] == "2026-03-01" and counts.days.processed[-1] == 1
    assert counts.days.labels[-2] == "2026-02-28"
    assert (counts.days.processed[-2], counts.days.failed[-2]) == (1, 1)
    assert counts.days.processed[-3] == 1 and sum(counts.days.processed) == 3
    assert (counts.processed_total, counts.failed_total) == (4, 1)
    assert 0 < connection.ttl(stats.minute_key(now)) <= stats.HOUR_KEEP


def test_procman_worker_counts_each_job_it_runs(
    app: App, redis_url: str, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.write("jobs.py", "def ok():\n    return 1\n\ndef bad():\n    raise ValueError('x')\n")
    app.write("queues.yml", "concurrency: 1\nretry: false\n")
    app.procfile("worker: procman worker\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    queue = Queue("default", connection=connection)
    for _ in range(3):
        queue.enqueue("jobs.ok")
    queue.enqueue("jobs.bad")
    result = app.run("worker", "--burst", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = stats.read_counts(connection)
    assert (sum(counts.minutes.processed), sum(counts.minutes.failed)) == (3, 1)
    assert (counts.days.processed[-1], counts.days.failed[-1]) == (3, 1)


def test_the_dashboard_command_serves(app: App, redis_url: str, live: type[LiveOutput]) -> None:
    from tests.conftest import free_port

    app.procfile("web: sleep 1\n")
    port = free_port()
    procman = app.spawn("dashboard", "--port", str(port), "--redis-url", redis_url)
    output = live(procman)
    output.wait_for(f"procman dashboard: serving http://127.0.0.1:{port}/ (Ctrl-C to stop)\n")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    shown = f"$ procman dashboard\n{output.text.replace(str(port), '9181')}```"
    assert shown in docs  # the page's transcript, on the default port
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/queues", timeout=10) as reply:
        assert reply.status == 200
    procman.send_signal(subprocess.signal.SIGINT)  # type: ignore[attr-defined]
    code, _ = output.finish(timeout=10)
    assert code == 130
