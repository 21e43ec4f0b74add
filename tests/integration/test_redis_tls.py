"""``rediss://``: procman against a real ``redis-server --tls-port`` with a certificate generated
for the test (self-signed, for 127.0.0.1): the error for an untrusted certificate says which URL
parameter to add, and with it the worker runs jobs over TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.queue import Queue

from tests.conftest import TAG, App, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A redis-server speaking only TLS on a free port, with a self-signed certificate for
    127.0.0.1 (its own CA): the port and the certificate."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    openssl = shutil.which("openssl")
    if binary is None or openssl is None:
        pytest.fail("redis-server and openssl are needed: run scripts/test, which installs them")
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "server.crt", base / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != TAG}
    server = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        client = redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    output = server.communicate()[0].decode(errors="replace")
                    pytest.fail(f"redis-server did not start with TLS on {port}:\n{output}")
                time.sleep(0.02)
        client.close()
        yield port, cert
    finally:
        server.kill()
        server.communicate()


def test_a_self_signed_certificate_gets_the_url_parameter_as_hint(
    app: App, tls_redis: tuple[int, Path]
) -> None:
    port, _ = tls_redis
    app.procfile("worker: procman worker\n")
    result = app.run("worker", "--burst", env={"REDIS_URL": f"rediss://127.0.0.1:{port}/0"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert "add ?ssl_ca_certs=/path/to/ca.pem to the URL" in result.stderr
    assert "?ssl_cert_reqs=none to skip the check" in result.stderr
    assert "redis-server" not in result.stderr


def test_a_certificate_for_another_host_says_so(app: App, tls_redis: tuple[int, Path]) -> None:
    port, cert = tls_redis
    app.procfile("worker: procman worker\n")
    url = f"rediss://localhost:{port}/0?ssl_ca_certs={cert}"
    result = app.run("jobs", env={"REDIS_URL": url})
    assert result.returncode == 1
    assert "does not name the host in the URL" in result.stderr, result.stderr
    assert "?ssl_check_hostname=false" in result.stderr


@pytest.mark.parametrize("parameter", ["ssl_cert_reqs=none", "ssl_ca_certs={cert}"])
def test_with_the_parameter_the_worker_runs_jobs_over_tls(
    app: App, tls_redis: tuple[int, Path], parameter: str
) -> None:
    port, cert = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?{parameter.format(cert=cert)}"
    app.procfile("worker: procman worker\n")
    connection = redis.Redis.from_url(url)
    connection.flushall()
    job = Queue("default", connection=connection).enqueue("operator.add", 2, 3)
    result = app.run("worker", "--burst", env={"REDIS_URL": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert Job.fetch(job.id, connection=connection).return_value() == 5
    connection.close()


def test_the_setting_relaxes_the_check_of_whichever_url_is_resolved(
    app: App, tls_redis: tuple[int, Path]
) -> None:
    """Heroku Redis: REDIS_URL is rotated by the provider and carries no parameter; the setting,
    in the app's .env, reaches the worker, procman jobs and the app's own enqueue alike."""
    port, _ = tls_redis
    app.procfile("worker: procman worker\n")
    app.write(".env", f"REDIS_URL=rediss://127.0.0.1:{port}/0\nPROCMAN_REDIS_SSL_CERT_REQS=none\n")
    connection = redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
    connection.flushall()
    enqueue = "from procman.queues import enqueue; print(enqueue('operator.add', 2, 3).id)"
    enqueued = app.run("run", sys.executable, "-c", enqueue)
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = enqueued.stdout.strip()
    listed = app.run("jobs")
    assert listed.returncode == 0, listed.stderr
    assert "ssl_cert_reqs=none from PROCMAN_REDIS_SSL_CERT_REQS" in listed.stdout
    result = app.run("worker", "--burst")
    assert result.returncode == 0, result.stdout + result.stderr
    assert Job.fetch(job_id, connection=connection).return_value() == 5
    connection.close()


def test_the_untrusted_certificate_hint_names_the_setting(
    app: App, tls_redis: tuple[int, Path]
) -> None:
    port, _ = tls_redis
    app.procfile("worker: procman worker\n")
    result = app.run("jobs", env={"REDIS_URL": f"rediss://127.0.0.1:{port}/0"})
    assert result.returncode == 1
    assert "set PROCMAN_REDIS_SSL_CERT_REQS=none instead" in result.stderr
