"""``deploy --plan``'s steps, from a host's state, by exact strings (the same builders a deploy
runs; tests/integration/test_day_two.py checks that planning touches nothing on real hosts)."""

from __future__ import annotations

from dataclasses import replace

from procman.deploy.plan import SHA256_SHOWN, HostState, Release, host_plan

ROOT = "/srv/app"
RELEASE = Release(
    release_id="20261203T110739Z-4dc6aea",
    sha256=None,
    artifact="/repo/.procman/releases/20261203T110739Z-4dc6aea.tar.gz",
    build="make",
    release_command="migrate",
    shared=(".env",),
    env_text="A='1'\n",
    stop_timeout=30.0,
    healthcheck_path="/health",
    healthcheck_timeout=10,
    keep_releases=3,
)


def names(state: HostState, release: Release = RELEASE, first: bool = True) -> list[str]:
    planned = host_plan(ROOT, state, release, first=first, holder="me@here", when="T")
    return [step.step for step in planned]


def test_a_first_deploy_uploads_builds_and_starts_web_first() -> None:
    state = HostState(current=None, artifact_sha256=None, built=False,
                      formation={"web": 1, "worker": 2})  # fmt: skip
    assert names(state) == [
        "check the host", "lock", "read current", "check release", "upload", "verify upload",
        "unpack", "build (`make`)", "check the build", "release phase (`migrate`)",
        "switch current", "list running processes", "start processes", "health check",
        "scale up", "record history", "prune releases", "unlock",
    ]  # fmt: skip
    planned = {s.step: s.command for s in host_plan(ROOT, state, RELEASE, first=True,
                                                    holder="me@here", when="T")}  # fmt: skip
    assert planned["upload"] == (
        "sftp put /repo/.procman/releases/20261203T110739Z-4dc6aea.tar.gz "
        "/srv/app/.procman/artifacts/20261203T110739Z-4dc6aea.tar.gz.part"
    )
    assert SHA256_SHOWN in planned["verify upload"]
    assert planned["scale up"].endswith(" scale worker=2")
    assert " -m web=1,worker=0 -t 30" in planned["start processes"]
    assert planned["unlock"] == "rm -rf -- /srv/app/.procman/lock"


def test_a_release_already_built_there_is_neither_uploaded_nor_built_again() -> None:
    sha = "a" * 64
    built = replace(RELEASE, sha256=sha)
    state = HostState(current="20261201T000000Z-1111111", artifact_sha256=sha, built=True,
                      formation={"worker": 1})  # fmt: skip
    assert names(state, built, first=False) == [
        "check the host", "lock", "read current", "check release", "write env",
        "switch current", "list running processes", "stop 20261201T000000Z-1111111",
        "start processes", "stop 20261201T000000Z-1111111", "record history", "prune releases",
        "unlock",
    ]  # fmt: skip
