"""The worker registry's pure parts: pool ids from worker names, where a pool runs, and telling
that a pool's process is gone (a real child process, reaped)."""

from __future__ import annotations

import os
import subprocess
import sys

from procman.queues.recovery import PoolPlace, pool_of, this_machine, this_pool


def test_a_worker_name_gives_its_pool_id_even_when_the_host_name_has_dots() -> None:
    assert pool_of("web1.example.com.4242.3") == "web1.example.com.4242"
    assert pool_of("vm.17.1") == "vm.17"


def test_where_a_pool_runs_survives_the_registry() -> None:
    place = this_pool()
    assert place.id.endswith(f".{os.getpid()}")
    assert PoolPlace.from_json(place.id, place.to_json().encode()) == place
    assert PoolPlace.from_json(place.id, b"not json") is None
    assert PoolPlace.from_json(place.id, b'{"pid": 1}') is None


def test_a_running_pool_is_not_gone_and_a_reaped_one_is() -> None:
    assert this_machine()  # Linux with /proc: the tests run there
    assert not this_pool().is_gone()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    place = this_pool(child.pid)  # noted while it runs
    child.wait()
    assert place.is_gone()


def test_a_pool_elsewhere_is_never_judged_by_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    elsewhere = PoolPlace(f"other.{child.pid}", "other-machine boot pid:[1]", child.pid, "1")
    assert not elsewhere.is_gone()
    unknown = PoolPlace(f"other.{child.pid}", "", child.pid, "1")
    assert not unknown.is_gone()


def test_a_reused_pid_is_not_taken_for_the_pool() -> None:
    mine = this_pool()
    earlier = PoolPlace(mine.id, mine.machine, mine.pid, str(int(mine.started) - 1))
    assert earlier.is_gone()
