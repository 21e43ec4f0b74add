"""The deploy pipeline across an environment's hosts: deploy (test, build, ship), promote (ship the
artifact that is current and healthy on the source environment, unchanged), rollback, restart,
releases and unlock.

Hosts are worked on in parallel, one thread and one connection each. The lock is taken on every
host before anything changes and released on every reachable host at the end, on failure too. No
host switches unless every host has the release unpacked and built; a failed health check
switches every host back.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from procman.deploy import steps
from procman.deploy.config import DeployConfig, Environment, Host
from procman.deploy.connect import Connect, Say, environment_hosts, ssh_connector
from procman.deploy.history import (
    ALLOW_DIRTY_CONFIG,
    FAILED,
    FORCE_STALE_SOURCE,
    INTERRUPTED,
    OK,
    ROLLED_BACK,
    HistoryRecord,
    ReleaseRow,
    current_healthy,
    healthy_record,
    previous_healthy,
    record_rows,
    release_rows,
)
from procman.deploy.host import WEB, DeployHost, LockHeld, Restarted, StepFailed
from procman.deploy.hostgroup import DeployError, HostGroup, HostGroupError
from procman.deploy.plan import HostPlan, HostState, Plan, host_plan
from procman.deploy.plan import Release as PlannedRelease
from procman.deploy.progress import Progress
from procman.deploy.release import (
    STORE,
    Artifact,
    ReleaseError,
    build_release,
    check_clean,
    config_state,
    default_builder,
    dirty_paths,
    load_artifact,
    read_manifest,
    release_id_for,
    resolve_commit,
    sha256_hex,
    store_artifact,
    validate_release_id,
)
from procman.deploy.transport.base import TransportError
from procman.errors import ProcmanError, UsageError, flag_of

__all__ = ["DeployError", "DeployOptions", "Outcome", "Pipeline", "ssh_connector"]

Hosts = HostGroup[DeployHost]
T = TypeVar("T")
DEFAULT_STOP_TIMEOUT = 30.0
STOP_MARGIN = 10.0
"""Seconds beyond the longest job timeout that a worker gets to finish before SIGKILL."""
LOCK_POLL = 1.0


@dataclass
class DeployOptions:
    commit: str | None = None
    """None: HEAD, with the working tree checked for uncommitted changes."""
    allow_dirty: bool = False
    skip_tests: bool = False
    wait: float = 0.0
    """Seconds to wait for a held lock before giving up."""
    release: str | None = None
    """For a promotion: the source release to promote instead of its current one."""
    allow_dirty_config: bool = False
    """For a promotion: go on although procman.yml has uncommitted changes (recorded)."""
    force_stale_source: bool = False
    """For a promotion: go on although the source release is not running healthily now
    (recorded)."""


@dataclass
class Outcome:
    """What a deploy, promotion or rollback did, for the summary line and the benchmarks."""

    environment: str
    action: str
    release_id: str
    sha256: str
    uploaded: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    artifact_built: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def host_formation(
    environment: Environment,
    host: Host,
    types: Iterable[str],
    scaled: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Instances of each type on ``host``, 0 for the types it does not run. A type in ``scaled``
    (``procman scale --env``: a count for the whole environment) is spread evenly over the hosts
    that run it, the first ones taking one more; the others have procman.yml's ``formation``
    count on each host (default 1)."""
    counts = environment.formation
    result = {}
    for name in types:
        if not host.runs(name):
            result[name] = 0
        elif scaled is not None and name in scaled:
            result[name] = spread(scaled[name], environment, name)[host]
        else:
            result[name] = counts.get(name, 0) if counts is not None else 1
    return result


def spread(total: int, environment: Environment, name: str) -> dict[Host, int]:
    """``total`` instances of ``name`` over the hosts that run it, as evenly as can be."""
    running = [host for host in environment.hosts if host.runs(name)]
    if not running:
        return {}
    share, extra = divmod(total, len(running))
    return {host: share + (1 if index < extra else 0) for index, host in enumerate(running)}


def queues_text(artifact: bytes) -> str | None:
    """The release's queues.yml, if it has one."""
    try:
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
            member = tar.extractfile("queues.yml")
            return member.read().decode() if member is not None else None
    except (KeyError, tarfile.TarError, OSError, UnicodeDecodeError):
        return None


def stop_timeout_for(queues_yml: str | None) -> float:
    """How long a worker may take to stop: the release's job timeout (queues.yml) plus a margin,
    so a running job finishes rather than being killed."""
    from procman.errors import ConfigError
    from procman.queues.config import parse_queue_config

    text = queues_yml
    if text is None:
        return DEFAULT_STOP_TIMEOUT
    try:
        config = parse_queue_config(text, "queues.yml")
    except ConfigError:
        return DEFAULT_STOP_TIMEOUT
    return max(float(config.timeout) + STOP_MARGIN, DEFAULT_STOP_TIMEOUT)


def deploy_hint(environment: Environment) -> str:
    """The command that gives ``environment`` its first release: for a promoted one, deploying
    its source first (``deploy`` refuses a promotion from nothing)."""
    if environment.promote_from is None:
        return f"procman deploy {environment.name}"
    return (
        f"procman deploy {environment.promote_from}, then procman deploy {environment.name}, "
        f"which promotes what runs on {environment.promote_from}"
    )


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


class Pipeline:
    """Deploys ``config`` from the git repository ``repo``."""

    def __init__(
        self,
        repo: Path,
        config: DeployConfig,
        say: Say,
        connect: Connect | None = None,
        who: str | None = None,
        progress: bool = False,
    ) -> None:
        self.repo = repo
        self.config = config
        self.say = say
        self.connect = connect or ssh_connector(config)
        self.who = who or default_builder()
        self.store = repo / STORE
        self._wait = 0.0
        """Seconds to wait for a held lock."""
        self.progress = Progress()
        self.show_progress = progress
        """Print a line every 10 s of a long step (when standard output is a terminal)."""
        self._config_state: tuple[str, bool] | None = None
        """The sha256 of procman.yml and whether it has uncommitted changes, once read."""

    def environment(self, name: str) -> Environment:
        return self.config.environment(name)

    def hosts(
        self, environment: Environment, *, read_only: bool = False, check: bool = True
    ) -> AbstractContextManager[Hosts]:
        """Connected hosts of ``environment`` as a group, each checked (tools; the layout made,
        unless only reading from them; without ``check``, not yet: see ``environment_hosts``);
        closed at the end. Meanwhile, long steps show progress,
        and a Ctrl-C says what it waits for."""
        return environment_hosts(
            self.config,
            environment,
            self.connect,
            self.say,
            self.progress,
            read_only=read_only,
            show_progress=self.show_progress,
            check=check,
        )

    def _each(self, hosts: Hosts, step: Callable[[DeployHost], T]) -> dict[str, T]:
        """``step``'s value on every host, by label, read on all hosts at once; a failure raises
        (naming every failed host, the last in the error)."""
        result = hosts.run(step)
        result.raise_on_failure(None, self.say)
        return {label: result.values[label] for label in hosts.labels}

    def config_state(self) -> tuple[str, bool]:
        """The sha256 of the procman.yml this command uses, and whether it differs from the
        committed one; read once, before connecting anywhere, and recorded in history."""
        if self._config_state is None:
            self._config_state = config_state(Path(self.config.path))
        return self._config_state

    # -- deploy ------------------------------------------------------------------------------

    def deploy(self, name: str, options: DeployOptions) -> Outcome:
        environment = self.environment(name)
        self._wait = options.wait
        if environment.promote_from is not None:
            given = [
                flag
                for flag, used in [
                    (f"{flag_of('commit')} {options.commit}", options.commit is not None),
                    (flag_of("allow_dirty"), options.allow_dirty),
                    (flag_of("skip_tests"), options.skip_tests),
                ]
                if used
            ]
            if given:
                raise UsageError(
                    f"{', '.join(given)}: {name} is promoted from {environment.promote_from}, "
                    "so nothing is built or tested for it",
                    f"deploy {environment.promote_from} with them first, or promote an older "
                    f"release of it with {flag_of('release')} ID",
                )
            return self.promote(environment, options)
        if options.release is not None:
            raise DeployError(
                f"{flag_of('release')} is for promotions; {name} has no promote_from",
                f"deploy a commit with {flag_of('commit')}, "
                f"or roll back with procman rollback {name} ID",
            )
        promotion_only = [
            flag
            for flag, used in [
                (flag_of("allow_dirty_config"), options.allow_dirty_config),
                (flag_of("force_stale_source"), options.force_stale_source),
            ]
            if used
        ]
        if promotion_only:
            raise UsageError(
                f"{', '.join(promotion_only)}: for promotions only; {name} has no promote_from",
                "to deploy uncommitted changes, procman.yml's included, "
                f"pass {flag_of('allow_dirty')}",
            )
        self.config_state()
        started = time.monotonic()
        flags: list[str] = []
        commit = options.commit or "HEAD"
        git_sha = resolve_commit(self.repo, commit)
        dirty = dirty_paths(self.repo) if commit == "HEAD" else []
        if dirty:
            if not options.allow_dirty:
                check_clean(dirty, self.repo)
            flags.append("allow-dirty")
        self._test_stage(options, git_sha, flags)
        artifact, fresh = self._artifact(git_sha, bool(dirty), options)
        outcome = Outcome(name, "deploy", artifact.release_id, artifact.sha256)
        outcome.artifact_built = fresh
        outcome.timings["artifact"] = time.monotonic() - started
        self.say(
            f"release {artifact.release_id} (sha256 {artifact.sha256[:12]}, "
            f"{'built' if fresh else 'cached'}, {_size(artifact.path)}) to {environment.summary()}"
        )
        return self._activate(environment, artifact, "deploy", flags, started, outcome)

    def _test_stage(self, options: DeployOptions, git_sha: str, flags: list[str]) -> None:
        if self.config.test is None:
            return
        if options.skip_tests:
            flags.append("skip-tests")
            self.say(f"test: skipped ({flag_of('skip_tests')}): {self.config.test}")
            return
        if resolve_commit(self.repo, "HEAD") != git_sha:
            raise DeployError(
                f"the test stage runs in the working tree, which is not at {options.commit} "
                f"({git_sha[:7]}); nothing was deployed",
                f"check it out first (git checkout {options.commit}), "
                f"or pass {flag_of('skip_tests')}",
            )
        self.say(f"test: {self.config.test}")
        began = time.monotonic()
        try:
            done = subprocess.run(["sh", "-c", self.config.test], cwd=self.repo, check=False)
        except OSError as error:
            raise DeployError(f"test stage: cannot run sh ({error.strerror})") from None
        if done.returncode != 0:
            raise DeployError(
                f"test stage failed (exit status {done.returncode}): {self.config.test}; "
                "nothing was deployed",
                f"fix the tests, or deploy anyway with {flag_of('skip_tests')} "
                "(recorded in history)",
            )
        self.say(f"test: passed in {time.monotonic() - began:.1f}s")

    def _artifact(self, git_sha: str, dirty: bool, options: DeployOptions) -> tuple[Artifact, bool]:
        """The cached artifact of this commit if there is one (a clean tree only), else a new
        one; True when it was built now."""
        if not dirty:
            cached = self._cached_for_commit(git_sha)
            if cached is not None:
                return cached, False
        artifact = build_release(
            self.repo,
            app=self.config.app,
            commit=git_sha,
            allow_dirty=True,  # checked above, with the commit the user named
            builder=self.who,
            store=self.store,
        )
        return artifact, True

    def _cached_for_commit(self, git_sha: str) -> Artifact | None:
        if not self.store.is_dir():
            return None
        for path in sorted(self.store.glob(f"*-{git_sha[:7]}.tar.gz"), reverse=True):
            release_id = path.name.removesuffix(".tar.gz")
            try:
                artifact = load_artifact(self.store, validate_release_id(release_id))
            except ReleaseError:
                continue
            if (
                artifact is not None
                and artifact.manifest.git_sha == git_sha
                and not artifact.manifest.dirty
                and artifact.manifest.app == self.config.app
            ):
                return artifact
        return None

    # -- plan ------------------------------------------------------------------------------

    def plan(self, name: str, options: DeployOptions) -> Plan:
        """What ``deploy`` would do, per host, run nowhere: the hosts are only read (their
        current release, whether the artifact is there and built, their formation); nothing
        is built, tested, uploaded or locked."""
        environment = self.environment(name)
        local: list[str] = []
        if environment.promote_from is not None:
            source = self.environment(environment.promote_from)
            with self.hosts(source, read_only=True) as source_hosts:
                record = self._source_release(source, source_hosts, options.release)
            cached = load_artifact(self.store, record.release_id)
            action, release_id, sha256 = "promote", record.release_id, record.sha256
            if cached is None:
                local.append(f"download {release_id} from {source_hosts[0].label}")
            artifact = self.store / f"{release_id}.tar.gz"
            data = cached.path.read_bytes() if cached is not None else None
        else:
            git_sha = resolve_commit(self.repo, options.commit or "HEAD")
            dirty = dirty_paths(self.repo) if options.commit is None else []
            if self.config.test and not options.skip_tests:
                local.append(f"test stage: {self.config.test}")
            found = None if dirty else self._cached_for_commit(git_sha)
            action = "deploy"
            if found is None:
                release_id = release_id_for(datetime.now(UTC), git_sha)
                sha256 = None
                local.append(f"build the artifact of git {git_sha[:7]}"
                             + (" (uncommitted changes included)" if dirty else ""))  # fmt: skip
                artifact, data = self.store / f"{release_id}.tar.gz", None
            else:
                release_id, sha256, artifact = found.release_id, found.sha256, found.path
                local.append(f"use the cached artifact {artifact}")
                data = artifact.read_bytes()
        queues = queues_text(data) if data is not None else _read_or_none(self.repo / "queues.yml")
        types = self._planned_types(data)
        release = PlannedRelease(
            release_id=release_id,
            sha256=sha256,
            artifact=str(artifact),
            build=self.config.build,
            release_command=self.config.release,
            shared=self.config.shared,
            env_text=steps.dotenv_text(dict(environment.env)),
            stop_timeout=stop_timeout_for(queues),
            healthcheck_path=environment.healthcheck.path,
            healthcheck_timeout=environment.healthcheck.timeout,
            keep_releases=self.config.keep_releases,
        )
        when = _now()
        with self.hosts(environment, read_only=True) as hosts:

            def read(host: DeployHost) -> HostPlan:
                present, built = host.release_state(release_id)
                scaled = host.scaled_formation()
                state = HostState(
                    current=host.current(),
                    artifact_sha256=present,
                    built=built,
                    formation=host_formation(environment, host.host, types, scaled),
                )
                planned = host_plan(host.root, state, release, first=host is hosts[0],
                                    holder=self.who, when=when)  # fmt: skip
                return HostPlan(host.label, state, planned)

            result = hosts.run(read)
            result.raise_on_failure("nothing was changed", self.say)
        plans = tuple(result.values[label] for label in hosts.labels)
        return Plan(name, action, release_id, sha256, tuple(local), plans)

    def _planned_types(self, artifact: bytes | None) -> tuple[str, ...]:
        """The process types of the release: its manifest's, else the Procfile here."""
        from procman.procfile import parse_procfile

        if artifact is not None:
            manifest = read_manifest(artifact, "the artifact")
            return tuple(manifest.process_types)
        text = _read_or_none(self.repo / "Procfile") or ""
        return tuple(parse_procfile(text, str(self.repo / "Procfile")).names)

    # -- promote -----------------------------------------------------------------------------

    def promote(self, environment: Environment, options: DeployOptions) -> Outcome:
        started = time.monotonic()
        assert environment.promote_from is not None
        if options.release is not None:
            validate_release_id(options.release)  # before connecting anywhere
        flags: list[str] = []
        self._check_config_committed(environment, options, flags)
        source = self.environment(environment.promote_from)
        with self.hosts(source, read_only=True) as source_hosts:
            record = self._source_release(source, source_hosts, options.release)
            if options.release is None:
                self._check_source_live(source, source_hosts, record, options, flags)
            artifact = self._promoted_artifact(record, source_hosts)
        outcome = Outcome(environment.name, "promote", artifact.release_id, artifact.sha256)
        outcome.timings["artifact"] = time.monotonic() - started
        self.say(
            f"promoting {artifact.release_id} (sha256 {artifact.sha256[:12]}) from "
            f"{source.name} to {environment.summary()}"
        )
        return self._activate(environment, artifact, "promote", flags, started, outcome)

    def _check_config_committed(
        self, environment: Environment, options: DeployOptions, flags: list[str]
    ) -> None:
        """A promotion uses this procman.yml (env:, build:, hosts) on the target: refuse one with
        uncommitted changes, unless allowed (then recorded)."""
        _, dirty = self.config_state()
        if not dirty:
            return
        if not options.allow_dirty_config:
            raise DeployError(
                f"{self.config.path} has uncommitted changes, which this promotion would apply "
                f"to {environment.name} unreviewed; nothing was promoted",
                "commit them first (git status shows them), or promote anyway with "
                f"{flag_of('allow_dirty_config')} (recorded in history)",
            )
        flags.append(ALLOW_DIRTY_CONFIG)

    def _check_source_live(
        self,
        source: Environment,
        hosts: Hosts,
        record: HistoryRecord,
        options: DeployOptions,
        flags: list[str],
    ) -> None:
        """History says ``record`` is current and healthy on the source: check that it runs and
        answers its health check there now, on every host, or refuse (unless forced: recorded)."""
        problems: list[str] = []

        def check(host: DeployHost) -> None:
            web = host_formation(source, host.host, [WEB], host.scaled_formation())[WEB] > 0
            problem = host.liveness(record.release_id, web)
            if problem is not None:
                problems.append(f"{host.label}: {problem}")

        hosts.run(check).raise_on_failure("nothing was promoted", self.say)
        if not problems:
            return
        found = "; ".join(sorted(problems))
        if not options.force_stale_source:
            raise DeployError(
                f"cannot promote from {source.name}: {record.release_id} is current there by "
                f"history but not running healthily now ({found}); nothing was promoted",
                f"start it again with procman restart --env {source.name}, or deploy "
                f"{source.name} again; to promote it anyway, pass {flag_of('force_stale_source')} "
                "(recorded in history)",
            )
        self.say(
            f"warning: {record.release_id} is not running healthily on {source.name} now "
            f"({found}); promoting it anyway ({flag_of('force_stale_source')})"
        )
        flags.append(FORCE_STALE_SOURCE)

    def _source_release(
        self, source: Environment, hosts: Hosts, wanted: str | None
    ) -> HistoryRecord:
        """The release current and healthy on every source host (or ``wanted``, healthy there
        before); else "cannot skip" with what the source hosts have."""
        found: list[tuple[DeployHost, HistoryRecord | None, str | None]] = []
        states = self._each(hosts, lambda host: (host.history(), host.current()))
        for host in hosts:
            history, current = states[host.label]
            if wanted is not None:
                record = healthy_record(history, validate_release_id(wanted))
            else:
                latest = current_healthy(history)
                record = latest if latest is not None and latest.release_id == current else None
            found.append((host, record, current))
        skip_hint = f"deploy to {source.name} first (procman deploy {source.name})"
        if wanted is not None and any(record is None for _, record, _ in found):
            missing = [host.label for host, record, _ in found if record is None]
            raise DeployError(
                f"release {wanted} was never healthy on {source.name} ({', '.join(missing)})",
                f"list what was: procman releases {source.name}",
            )
        if any(record is None for _, record, _ in found):
            raise DeployError(
                f"cannot skip {source.name}: {skip_hint}",
                f"no release is current and healthy on {source.name}",
            )
        ids = {(record.release_id, record.sha256) for _, record, _ in found if record}
        if len(ids) > 1:
            seen = ", ".join(
                f"{host.label} has {record.release_id}" for host, record, _ in found if record
            )
            raise DeployError(
                f"cannot skip {source.name}: {skip_hint}",
                f"its hosts disagree ({seen}); deploy to {source.name} again",
            )
        record = found[0][1]
        assert record is not None
        return record

    def _promoted_artifact(self, record: HistoryRecord, hosts: Hosts) -> Artifact:
        cached = load_artifact(self.store, record.release_id)
        if cached is not None and cached.sha256 == record.sha256:
            return cached
        self.store.mkdir(parents=True, exist_ok=True)
        download = self.store / f".{record.release_id}.download"
        try:
            hosts[0].fetch(record.release_id, download)
            data = download.read_bytes()
        except TransportError as error:
            raise DeployError(
                f"release {record.release_id} is neither cached here nor downloadable from "
                f"{hosts[0].label} ({error.problem}); nothing was promoted",
                "it may have been pruned (keep_releases); promote a release that is still kept",
            ) from None
        finally:
            download.unlink(missing_ok=True)
        if sha256_hex(data) != record.sha256:
            raise DeployError(
                f"{hosts[0].label}: the artifact of {record.release_id} has sha256 "
                f"{sha256_hex(data)}, but history records {record.sha256}; nothing was promoted",
                "the file on the host was changed; deploy the source environment again",
            )
        manifest = read_manifest(data, f"{hosts[0].label}:{record.release_id}")
        self.say(f"downloaded {record.release_id} from {hosts[0].label}")
        return store_artifact(self.store, manifest, data)

    # -- the shared second half: lock, ship, build, release phase, switch, restart, check ----

    def _activate(
        self,
        environment: Environment,
        artifact: Artifact,
        action: str,
        flags: list[str],
        started: float,
        outcome: Outcome,
    ) -> Outcome:
        data = artifact.path.read_bytes()
        stop_timeout = stop_timeout_for(queues_text(data))
        types = artifact.manifest.process_types
        with (
            self.hosts(environment) as hosts,
            self._locked(hosts, environment, artifact.release_id),
        ):
            release = (artifact.release_id, artifact.sha256, artifact.manifest.git_sha)
            record = self._recorder(hosts, action, release, flags, started)
            previous = self._each(hosts, DeployHost.current)

            try:
                self._stage_all(hosts, environment, artifact, record, outcome)
            except KeyboardInterrupt:
                self._interrupted(hosts, previous, types, stop_timeout, record, switching=False)
                raise
            began = time.monotonic()
            self._switch_or_roll_back(
                hosts, artifact.release_id, previous, types, stop_timeout, record
            )
            outcome.timings["restart"] = time.monotonic() - began
            pruned = hosts.run(
                lambda host: host.prune(
                    self.config.keep_releases, [artifact.release_id, previous[host.label]]
                )
            )
            for each in pruned.outcomes:
                if each.error is not None:
                    self.say(f"warning: {each.error}")
                elif each.value:
                    self.say(f"{each.host}: pruned {', '.join(each.value)}")
        outcome.timings["total"] = time.monotonic() - started
        self.say(
            f"{environment.name} now runs {artifact.release_id} "
            f"({action}, {outcome.timings['total']:.1f}s)"
        )
        return outcome

    def _stage_all(
        self,
        hosts: Hosts,
        environment: Environment,
        artifact: Artifact,
        record: Callable[..., None],
        outcome: Outcome,
    ) -> None:
        """Upload and build on every host at once, then the release phase on the first one; on
        any failure, history records ``failed`` and no host is switched."""
        began = time.monotonic()

        def ship_and_build(host: DeployHost) -> None:
            uploaded, built = host.stage(
                artifact,
                self.config.build,
                self.config.shared,
                steps.dotenv_text(dict(environment.env)),
            )
            if uploaded:
                outcome.uploaded.append(host.label)
            if built:
                outcome.built.append(host.label)

        shipped = hosts.run(ship_and_build)
        outcome.timings["ship_and_build"] = time.monotonic() - began
        if not shipped.ok:
            record(FAILED)
            shipped.raise_on_failure("no host was switched", self.say)
        self.say(
            f"shipped to {len(hosts)} host{'s' if len(hosts) != 1 else ''} "
            f"(uploaded to {len(outcome.uploaded)}, built on {len(outcome.built)}) "
            f"in {outcome.timings['ship_and_build']:.1f}s"
        )
        if not self.config.release:
            return
        self.say(f"release phase on {hosts[0].label}: {self.config.release}")
        try:
            hosts[0].release_phase(artifact.release_id, self.config.release)
        except ProcmanError as error:
            record(FAILED)
            raise DeployError(f"{error.message}; no host was switched", error.hint) from None

    def locked(
        self, hosts: Hosts, environment: Environment, release_id: str, wait: float = 0.0
    ) -> AbstractContextManager[None]:
        """The environment's deploy lock, taken on every host (waiting up to ``wait`` seconds
        for another command's) and released on every reachable host at the end."""
        self._wait = wait
        return self._locked(hosts, environment, release_id)

    def recorder(
        self,
        hosts: Hosts,
        action: str,
        release: tuple[str, str, str],
        flags: list[str],
        started: float,
    ) -> Callable[[str], None]:
        """A function appending this command's outcome to the history on every host."""
        return self._recorder(hosts, action, release, flags, started)

    @contextmanager
    def _locked(self, hosts: Hosts, environment: Environment, release_id: str) -> Iterator[None]:
        holder = self.who
        when = _now()
        taken: list[DeployHost] = []
        deadline = time.monotonic() + self._wait

        def take(host: DeployHost) -> None:
            host.lock(holder, when, release_id)

        while True:
            locked = hosts.only([h for h in hosts if h not in taken]).run(take)
            taken += locked.succeeded
            errors = locked.errors
            held = [e for e in errors if isinstance(e, LockHeld)]
            if not errors:
                break
            if held and len(held) == len(errors) and time.monotonic() < deadline:
                time.sleep(LOCK_POLL)
                continue
            self._unlock(hosts.only(taken))
            if held:
                info = held[0].info
                raise DeployError(
                    f"{held[0].host}: {environment.name} is locked by {info['holder']} since "
                    f"{info['time']} (release {info['release']}); nothing was changed",
                    f"wait for that deploy (or pass {flag_of('wait')} SECONDS); "
                    "if it died, break the lock "
                    f"with procman unlock {environment.name}",
                )
            locked.raise_on_failure("nothing was changed", self.say)
        try:
            yield
        finally:
            self._unlock(hosts.only(taken))

    def _unlock(self, hosts: Hosts) -> None:
        for error in hosts.run(DeployHost.unlock).errors:
            self.say(
                f"warning: {error}; the lock is still held there: when the host is back, run "
                f"procman unlock {hosts[0].environment.name}"
            )

    def _recorder(
        self,
        hosts: Hosts,
        action: str,
        release: tuple[str, str, str],
        flags: list[str],
        started: float,
    ) -> Callable[[str], None]:
        """A function that appends this command's outcome to the history on every host;
        ``release`` is (release id, sha256, git sha)."""
        when = _now()
        release_id, sha256, git_sha = release
        config_sha256, config_dirty = self.config_state()

        def record(result: str, interrupted: bool = False) -> None:
            entry = HistoryRecord(
                who=self.who,
                when=when,
                action=action,
                release_id=release_id,
                sha256=sha256,
                git_sha=git_sha,
                result=result,
                duration=time.monotonic() - started,
                flags=(*flags, INTERRUPTED) if interrupted else tuple(flags),
                config_sha256=config_sha256,
                config_dirty=config_dirty,
            )
            for error in hosts.run(lambda host: host.append_history(entry)).errors:
                self.say(f"warning: history not recorded: {error}")

        return record

    def _switch_or_roll_back(
        self,
        hosts: Hosts,
        release_id: str,
        previous: dict[str, str | None],
        types: Sequence[str],
        stop_timeout: float,
        record: Callable[..., None],
    ) -> None:
        """Switch and restart every host, recording ``ok``; on a failure or Ctrl-C, every host
        switched goes back to its previous release and history records ``failed, rolled
        back``."""
        try:
            failure, touched = self._switch_all(hosts, release_id, types, stop_timeout)
        except KeyboardInterrupt:
            self._interrupted(hosts, previous, types, stop_timeout, record, switching=True)
            raise
        if failure is not None:
            self._roll_back(touched, previous, types, stop_timeout)
            record(ROLLED_BACK)
            raise failure
        record(OK)

    def _interrupted(
        self,
        hosts: Hosts,
        previous: dict[str, str | None],
        types: Sequence[str],
        stop_timeout: float,
        record: Callable[..., None],
        switching: bool,
    ) -> None:
        """Ctrl-C: the step under way has finished on every host (the threads are joined). Before
        the switch nothing changed; from the switch on, every host goes back to what it ran."""
        if not switching:
            self.say("interrupted: no host was switched")
            record(FAILED, interrupted=True)
            return
        self.say("interrupted: putting every host back on its previous release")
        self._roll_back(hosts, previous, types, stop_timeout)
        record(ROLLED_BACK, interrupted=True)

    def _switch_all(
        self,
        hosts: Hosts,
        release_id: str,
        types: Sequence[str],
        stop_timeout: float,
        switch_current: bool = True,
        only: Sequence[str] = (),
        rolling: bool | None = None,
    ) -> tuple[HostGroupError | None, Hosts]:
        """Switch and restart every host (one at a time when rolling, stopping at the first
        failure): the error that stopped it, and the hosts that were touched. Without
        ``switch_current``, a restart of the current release: nothing to roll back to; with
        ``only`` too, of those types alone, on the hosts that run them."""

        def switch(host: DeployHost) -> None:
            if switch_current:
                host.switch(release_id)
            if only:
                restarted = host.restart_types(release_id, only, stop_timeout)
            else:
                scaled = host.scaled_formation()
                formation = host_formation(host.environment, host.host, types, scaled)
                restarted = host.restart(release_id, formation, stop_timeout)
            self._check_health(host, release_id, restarted)

        if only:
            hosts = hosts.only([h for h in hosts if any(h.host.runs(t) for t in only)])
        if rolling is None:
            rolling = hosts[0].environment.rolling
        switched = hosts.one_by_one(switch) if rolling else hosts.run(switch)
        touched = hosts.only(switched.ran)
        consequence = (
            "rolled back"
            if switch_current
            else f"{release_id} stays current (nothing to roll back to)"
        )
        failure = switched.error(consequence)
        if failure is not None:
            for error in failure.errors[:-1]:
                self.say(f"error: {error}")
        return failure, touched

    def _check_health(self, host: DeployHost, release_id: str, restarted: Restarted) -> None:
        if restarted.healthy:
            if restarted.web_ports:
                ports = ", ".join(str(p) for p in restarted.web_ports)
                self.say(f"{host.label}: healthy (web on {ports})")
            else:
                self.say(f"{host.label}: restarted")
            return
        failing = ", ".join(
            f"port {port}: {status}"
            for port, status in restarted.health.items()
            if not status.startswith("2")
        )
        lines = host.log_tail(release_id, only="web")
        self.say(f"{host.label}: last web log lines of {release_id}:")
        for line in lines.splitlines() or ["(none)"]:
            self.say(f"  {line}")
        check = host.environment.healthcheck
        raise StepFailed(
            host.label,
            "health check",
            f"GET {check.path} did not answer 2xx within {check.timeout}s ({failing})",
            "see the log lines above; fix the app and deploy again",
        )

    def _roll_back(
        self,
        hosts: Hosts,
        previous: dict[str, str | None],
        types: Sequence[str],
        stop_timeout: float,
    ) -> None:
        def back(host: DeployHost) -> None:
            before = previous[host.label]
            if before is None:
                host.stop_all(stop_timeout)
                host.remove_current()
                return
            host.switch(before)
            formation = host_formation(host.environment, host.host, types, host.scaled_formation())
            host.restart(before, formation, stop_timeout)

        result = hosts.run(back)
        for error in result.errors:
            self.say(f"error: rolling back: {error}")
        for host in result.succeeded:
            before = previous[host.label]
            self.say(
                f"{host.label}: rolled back to {before}"
                if before
                else f"{host.label}: stopped (there was no previous release)"
            )

    # -- rollback, releases, unlock ----------------------------------------------------------

    def rollback(self, name: str, release_id: str | None, wait: float = 0.0) -> Outcome:
        environment = self.environment(name)
        if release_id is not None:
            validate_release_id(release_id)  # before connecting anywhere
        self.config_state()
        started = time.monotonic()
        self._wait = wait
        with self.hosts(environment) as hosts:
            target = self._rollback_target(name, hosts, release_id)
            outcome = Outcome(name, "rollback", target.release_id, target.sha256)
            self.say(f"rolling {name} back to {target.release_id} (git {target.git_sha[:7]})")
            with self._locked(hosts, environment, target.release_id):
                previous = self._each(hosts, DeployHost.current)
                queues = hosts[0].read_release_file(target.release_id, "queues.yml")
                stop_timeout = stop_timeout_for(queues)
                types = self.types_of(hosts[0], target.release_id)
                record = self._recorder(
                    hosts,
                    "rollback",
                    (target.release_id, target.sha256, target.git_sha),
                    [],
                    started,
                )
                self._switch_or_roll_back(
                    hosts, target.release_id, previous, types, stop_timeout, record
                )
        outcome.timings["total"] = time.monotonic() - started
        self.say(f"{name} now runs {target.release_id} (rollback)")
        return outcome

    def restart(
        self,
        name: str,
        wait: float = 0.0,
        only: Sequence[str] = (),
        rolling: bool | None = None,
    ) -> Outcome:
        """Start or restart the release ``current`` points at on every host (after a reboot, say),
        health-checked, one host at a time when rolling (``rolling``: whether or not the
        environment is), recorded as ``restart``. With ``only``
        (process types), just the instances of those types, on the hosts that run them, in the
        supervisor running there (graceful: each instance is stopped as ``procman restart``
        stops it; recorded with the types as flags). There is nothing to roll back to: a failure
        leaves what was started, and history says ``failed``."""
        environment = self.environment(name)
        self.config_state()
        started = time.monotonic()
        self._wait = wait
        with self.hosts(environment) as hosts:
            target = self._restart_target(environment, hosts)
            release_id = target.release_id
            outcome = Outcome(name, "restart", release_id, target.sha256)
            types = self.types_of(hosts[0], release_id)
            self._check_types(environment, release_id, types, only)
            one_by_one = environment.rolling if rolling is None else rolling
            what = f"{', '.join(only)} of " if only else ""
            self.say(
                f"restarting {what}{release_id} (git {target.git_sha[:7]}) on "
                f"{environment.summary()}{', one host at a time' if one_by_one else ''}"
            )
            with self._locked(hosts, environment, release_id):
                stop_timeout = stop_timeout_for(
                    hosts[0].read_release_file(release_id, "queues.yml")
                )
                release = (release_id, target.sha256, target.git_sha)
                flags = [f"types:{','.join(only)}"] if only else []
                record: Callable[..., None] = self._recorder(
                    hosts, "restart", release, flags, started
                )
                try:
                    failure, _ = self._switch_all(
                        hosts,
                        release_id,
                        types,
                        stop_timeout,
                        switch_current=False,
                        only=only,
                        rolling=one_by_one,
                    )
                except KeyboardInterrupt:
                    self.say("interrupted: the hosts not restarted yet run what they ran")
                    record(FAILED, interrupted=True)
                    raise
                record(FAILED if failure is not None else OK)
                if failure is not None:
                    raise failure
        outcome.timings["total"] = time.monotonic() - started
        self.say(f"{name} now runs {release_id} (restart, {outcome.timings['total']:.1f}s)")
        return outcome

    def _check_types(
        self, environment: Environment, release_id: str, types: Sequence[str], only: Sequence[str]
    ) -> None:
        """Every one of ``only`` is a type of the release that some host runs."""
        unknown = [t for t in only if t not in types]
        if unknown:
            raise DeployError(
                f"{release_id} has no process type {', '.join(map(repr, unknown))} "
                f"(types: {', '.join(types)}); nothing was restarted",
                "name types of its Procfile",
            )
        idle = [t for t in only if not any(h.runs(t) for h in environment.hosts)]
        if idle:
            raise DeployError(
                f"no host of {environment.name} runs {', '.join(idle)} (see its roles in "
                f"{self.config.path}); nothing was restarted",
                "name a type one of its hosts runs",
            )

    def _restart_target(self, environment: Environment, hosts: Hosts) -> HistoryRecord:
        """The release ``current`` points at on every host, as history last recorded it."""
        name = environment.name
        currents = self._each(hosts, DeployHost.current)
        if not any(currents.values()):
            raise DeployError(
                f"nothing to restart: no release is current on {name}",
                f"deploy first ({deploy_hint(environment)})",
            )
        if len(set(currents.values())) > 1:
            seen = ", ".join(f"{label}: {cur or 'none'}" for label, cur in currents.items())
            raise DeployError(
                f"the hosts of {name} do not run the same release ({seen}); nothing was restarted",
                f"put them on one with procman rollback {name} ID, or deploy {name} again",
            )
        release_id = currents[hosts[0].label]
        assert release_id is not None
        records = [r for r in hosts[0].history() if r.release_id == release_id]
        if not records:
            raise DeployError(
                f"{hosts[0].label}: {release_id} is current but has no history record; "
                "nothing was restarted",
                f"deploy {name} again, or roll back to a release listed by procman releases {name}",
            )
        return healthy_record(records, release_id) or records[-1]

    def _rollback_target(self, name: str, hosts: Hosts, release_id: str | None) -> HistoryRecord:
        """The release to roll back to, by the first host's history: ``release_id``, else the
        previous healthy one; it must have been healthy and still be kept on every host."""
        history = hosts[0].history()
        if release_id is None:
            target = previous_healthy(history)
            if target is None:
                raise DeployError(
                    f"{name} has no earlier healthy release to roll back to",
                    f"see procman releases {name}",
                )
        else:
            target = healthy_record(history, validate_release_id(release_id))
            if target is None:
                raise DeployError(
                    f"release {release_id} was never healthy on {name}",
                    f"pick one marked ok in procman releases {name}",
                )
        kept = self._each(hosts, DeployHost.releases)
        missing = [host.label for host in hosts if target.release_id not in kept[host.label]]
        if missing:
            raise DeployError(
                f"release {target.release_id} is no longer kept on {', '.join(missing)}",
                f"roll back to a kept release (procman releases {name}), or raise keep_releases",
            )
        return target

    def types_of(self, host: DeployHost, release_id: str) -> tuple[str, ...]:
        """The process types of a release on a host, from the Procfile the release carries."""
        from procman.procfile import parse_procfile

        text = host.read_release_file(release_id, "Procfile") or ""
        return tuple(parse_procfile(text, f"{host.label}:{release_id}/Procfile").names)

    def releases(self, name: str, every_record: bool = False) -> tuple[list[ReleaseRow], list[str]]:
        """The environment's releases (from its first host; with ``every_record``, its every
        history record), and warnings when hosts differ."""
        environment = self.environment(name)
        warnings: list[str] = []
        with self.hosts(environment, read_only=True) as hosts:
            history = hosts[0].history()
            kept = hosts[0].releases()
            currents = self._each(hosts, DeployHost.current)
        current = currents[hosts[0].label]
        if len(set(currents.values())) > 1:
            seen = ", ".join(f"{label}: {cur or 'none'}" for label, cur in currents.items())
            warnings.append(f"the hosts of {name} run different releases ({seen})")
        rows = record_rows if every_record else release_rows
        return rows(history, current, kept), warnings

    def unlock(self, name: str) -> list[str]:
        """Break the environment's lock on every host; one line per host saying who held it."""
        environment = self.environment(name)

        def unlock(host: DeployHost) -> str:
            info = host.read_lock()
            if info is None:
                return f"{host.label}: not locked"
            host.unlock()
            return (
                f"{host.label}: unlocked (held by {info['holder']} since {info['time']}, "
                f"release {info['release']})"
            )

        with self.hosts(environment, read_only=True) as hosts:
            return list(self._each(hosts, unlock).values())
