"""``procman deploy ENV --plan``: every step and remote command a deploy would run on each host,
built by the same step builders (``steps``) a deploy runs, and run nowhere.

``host_plan`` is pure: given what a host has now (its current release, whether the artifact is
there and built, its formation), the steps in the order ``pipeline`` and ``host`` take them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from procman.deploy import steps

WEB = "web"
UNKNOWN_SHA256 = "0" * 64
"""Stands in for the sha256 of an artifact not built yet; shown as ``SHA256_SHOWN``."""
SHA256_SHOWN = "<sha256 of the artifact>"


@dataclass(frozen=True, slots=True)
class PlannedStep:
    step: str
    command: str
    """The remote command line (shell-quoted as the transport sends it), or what a transfer
    does."""


@dataclass(frozen=True, slots=True)
class HostState:
    """What a host has now, as read (read only) for the plan."""

    current: str | None
    artifact_sha256: str | None
    built: bool
    formation: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: str
    state: HostState
    steps: tuple[PlannedStep, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    environment: str
    action: str
    release_id: str
    sha256: str | None
    """None when the artifact is not built yet."""
    local: tuple[str, ...]
    """What would happen on this machine first (test stage, artifact), in words."""
    hosts: tuple[HostPlan, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Release:
    """The release a deploy would activate and what procman.yml says about running it."""

    release_id: str
    sha256: str | None
    artifact: str
    """The local artifact path (or where it would be built)."""
    build: str | None
    release_command: str | None
    shared: tuple[str, ...]
    env_text: str
    stop_timeout: float
    healthcheck_path: str
    healthcheck_timeout: float
    keep_releases: int


def _line(argv: Sequence[str]) -> str:
    return shlex.join(argv).replace(UNKNOWN_SHA256, SHA256_SHOWN)


def host_plan(
    root: str,
    state: HostState,
    release: Release,
    *,
    first: bool,
    holder: str,
    when: str,
) -> tuple[PlannedStep, ...]:
    """The steps of a deploy of ``release`` on one host whose state is ``state``, in order."""
    rid = release.release_id
    sha = release.sha256 or UNKNOWN_SHA256
    planned: list[PlannedStep] = []

    def add(step: str, argv: Sequence[str] | str) -> None:
        planned.append(PlannedStep(step, argv if isinstance(argv, str) else _line(argv)))

    add("check the host", steps.preflight(root, make_layout=True))
    add("lock", steps.take_lock(root, holder, when, rid))
    add("read current", steps.read_current(root))
    add("check release", steps.release_state(root, rid))
    uploaded = state.artifact_sha256 != release.sha256 or release.sha256 is None
    if uploaded:
        add("upload", f"sftp put {release.artifact} {steps.upload_path(root, rid)}")
        add("verify upload", steps.accept_checked_upload(root, rid, sha))
    if state.built and not uploaded:
        path = f"{steps.release_dir(root, rid)}/{steps.DEPLOY_ENV_FILE}"
        add("write env", steps.write_file(path, release.env_text))
    else:
        add("unpack", steps.unpack_release(root, rid, release.shared, release.env_text))
        if release.build:
            add(f"build (`{release.build}`)", steps.run_in_release(root, rid, release.build))
        add("check the build", steps.finish_build(root, rid))
    if first and release.release_command:
        command = ["run", "--", "sh", "-c", release.release_command]
        add(f"release phase (`{release.release_command}`)",
            steps.procman_in_release(root, rid, command))  # fmt: skip
    add("switch current", steps.switch_current(root, rid, release.shared))
    planned += _restart_steps(root, state, release)
    add("record history", steps.append_history(root, "<one JSON line: who, when, release, result>"))
    add("prune releases", f"rm -rf the releases beyond keep_releases={release.keep_releases} "
        "(never the current or the previous one), with their artifacts")  # fmt: skip
    add("unlock", steps.release_lock(root))
    return tuple(planned)


def _restart_steps(root: str, state: HostState, release: Release) -> list[PlannedStep]:
    """``DeployHost.restart``'s steps, the release ``state.current`` taken as the one running."""
    rid = release.release_id
    formation = state.formation
    wanted = {name: count for name, count in formation.items() if count > 0}
    web_first = WEB in wanted and len(wanted) > 1
    old = [state.current] if state.current and state.current != rid else []
    planned = [PlannedStep("list running processes", _line(steps.running_supervisors(root)))]
    wait = f"{release.stop_timeout:g}"
    for previous in old:
        targets = [WEB] if WEB in wanted else []
        argv = steps.procman_in_release(root, previous, ["stop", *targets, "--wait", wait])
        planned.append(PlannedStep(f"stop {previous}", _line(argv)))
    if not wanted:
        return planned
    first = {name: (count if not web_first or name == WEB else 0)
             for name, count in formation.items()}  # fmt: skip
    text = ",".join(f"{name}={count}" for name, count in first.items())
    start = steps.start_supervisor(
        root, rid, text, release.stop_timeout, list_processes=first.get(WEB, 0) > 0
    )
    planned.append(PlannedStep("start processes", _line(start)))
    if first.get(WEB, 0) > 0:
        check = steps.health_check(release.healthcheck_path, release.healthcheck_timeout, [])
        planned.append(PlannedStep("health check", _line(check) + " <the web ports>"))
    for previous in old:
        argv = steps.procman_in_release(root, previous, ["stop", "--wait", wait])
        planned.append(PlannedStep(f"stop {previous}", _line(argv)))
    if web_first:
        rest = [f"{name}={count}" for name, count in formation.items() if name != WEB]
        argv = steps.procman_in_release(root, rid, ["scale", *rest])
        planned.append(PlannedStep("scale up", _line(argv)))
    return planned
