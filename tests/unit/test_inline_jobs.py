"""The app-facing enqueue API without Redis: inline mode, argument checks, retry policies."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from rq import Retry

from procman.queues import enqueue, enqueue_call, job
from procman.queues.enqueueing import backoff_intervals, reference, retry_policy
from procman.queues.testing import INLINE_VARIABLE, inline, inline_enabled
from tests.queues_app import jobs


@pytest.fixture(autouse=True)
def nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Redis anywhere: inline mode must not try one."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("REDIS_PROVIDER", raising=False)
    monkeypatch.delenv(INLINE_VARIABLE, raising=False)
    jobs.calls.clear()


def test_inline_runs_the_job_at_once_and_records_it() -> None:
    with inline() as ran:
        first = enqueue(jobs.add, 2, 3)
        second = enqueue("tests.queues_app.jobs.add", 4, b=5, queue="critical")
    assert first.return_value() == 5 and first.get_status() == "finished"
    assert second.return_value() == 9 and second.origin == "critical"
    assert [j.func_name for j in ran] == ["tests.queues_app.jobs.add"] * 2
    assert jobs.calls == [("add", (2, 3), {}), ("add", (4, 5), {})]


def test_decorated_job_delays_inline_and_stays_a_plain_function() -> None:
    assert jobs.shout("hi") == "HI!"
    with inline() as ran:
        done = jobs.shout.delay("hey", times=2)
    assert done.return_value() == "HEY!HEY!"
    assert ran[0].func_name == "tests.queues_app.jobs.shout"
    assert ran[0].origin == "low"
    assert jobs.shout.__doc__ == jobs.shout.func.__doc__
    assert jobs.shout.__name__ == "shout"


def test_scheduled_jobs_run_at_once_inline_and_remember_when() -> None:
    with inline():
        soon = jobs.plain.enqueue_in(timedelta(minutes=5), 4)
        seconds = jobs.plain.enqueue_in(60, 5)
        later = jobs.plain.enqueue_at(datetime(2030, 1, 1, 9), 6)
    assert [soon.return_value(), seconds.return_value(), later.return_value()] == [8, 10, 12]
    assert soon.scheduled_for is not None
    assert timedelta(minutes=4) < soon.scheduled_for - datetime.now().astimezone()
    assert later.scheduled_for == datetime(2030, 1, 1, 9)


def test_a_failing_job_raises_out_of_enqueue_by_default() -> None:
    with inline(), pytest.raises(RuntimeError, match="boom"):
        enqueue(jobs.fail, "boom")


def test_raise_errors_false_keeps_the_failure_on_the_job() -> None:
    with inline(raise_errors=False) as ran:
        failed = enqueue(jobs.fail, "boom")
        ok = enqueue(jobs.add, 1, 1)
    assert failed.get_status() == "failed" and failed.is_failed
    assert isinstance(failed.error, RuntimeError)
    assert ok.is_finished
    assert [j.status for j in ran] == ["failed", "finished"]


def test_arguments_are_copied_as_a_worker_would_receive_them() -> None:
    items = [1, 2]
    with inline():
        result = enqueue(jobs.mutate, items)
    assert result.return_value() == [1, 2, 99]
    assert items == [1, 2]


def test_arguments_a_worker_could_not_receive_fail_inline() -> None:
    with inline(), pytest.raises(Exception, match="pickle"):
        enqueue(jobs.add, lambda: 1, 2)


def test_environment_variable_turns_inline_mode_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INLINE_VARIABLE, "1")
    assert enqueue(jobs.add, 1, 2).return_value() == 3
    with pytest.raises(RuntimeError, match="boom"):
        enqueue(jobs.fail, "boom")
    assert inline_enabled({INLINE_VARIABLE: "true"})
    assert not inline_enabled({INLINE_VARIABLE: "0"})
    assert not inline_enabled({})
    with pytest.raises(ValueError, match="PROCMAN_JOBS_INLINE='maybe'"):
        inline_enabled({INLINE_VARIABLE: "maybe"})


def test_inline_blocks_nest_and_end() -> None:
    with inline() as outer:
        with inline() as inner:
            enqueue(jobs.add, 1, 1)
        enqueue(jobs.add, 2, 2)
    assert len(inner) == 1 and len(outer) == 1
    assert not inline_enabled({})


def test_unimportable_functions_are_refused_before_anything_runs() -> None:
    def nested() -> None:
        pass

    with pytest.raises(ValueError, match="lambda or a nested function"):
        reference(nested)
    with pytest.raises(ValueError, match="lambda or a nested function"):
        reference(lambda: None)
    with pytest.raises(ValueError, match="dotted path"):
        reference("send_mail")
    with pytest.raises(TypeError, match="module-level function"):
        reference(print.__self__)  # type: ignore[arg-type]
    assert reference(jobs.shout) == "tests.queues_app.jobs.shout"
    assert reference(jobs.add) == "tests.queues_app.jobs.add"
    with inline(), pytest.raises(ValueError, match=r"import tests\.queues_app\.jobs\.missing"):
        enqueue("tests.queues_app.jobs.missing")


def test_job_functions_whose_parameters_are_named_like_options_use_enqueue_call() -> None:
    with inline():
        done = enqueue_call(jobs.add, (1,), {"b": 2}, queue="low")
    assert done.return_value() == 3 and done.origin == "low"


def test_retry_policies() -> None:
    assert retry_policy(None) is None
    assert retry_policy(0) == 0
    assert retry_policy(False) == 0
    three = retry_policy(3)
    assert isinstance(three, Retry)
    assert three.max == 3 and three.intervals == [15, 16, 31]
    given = Retry(max=2, interval=5)
    assert retry_policy(given) is given
    with pytest.raises(TypeError, match="retry=True"):
        retry_policy(True)
    with pytest.raises(ValueError, match="negative"):
        retry_policy(-1)
    assert backoff_intervals(5) == [15, 16, 31, 96, 271]
    assert backoff_intervals(0) == []


def test_bad_options_are_refused_when_decorating_and_enqueueing() -> None:
    with pytest.raises(ValueError, match="queue='no queue'"):
        job(queue="no queue")(jobs.add)
    with pytest.raises(ValueError, match="at least 1 second"):
        job(timeout=0)(jobs.add)
    with pytest.raises(TypeError, match="retry='5'"):
        enqueue(jobs.add, 1, 2, retry="5")  # type: ignore[arg-type]
    with inline():
        assert enqueue(jobs.add, 1, 2, timeout=timedelta(minutes=1)).return_value() == 3
        assert enqueue(jobs.add, 1, 2, timeout=-1).return_value() == 3
