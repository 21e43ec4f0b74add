"""Day-two changes to a deployed environment (Heroku's ``config:set`` and ``ps:scale``): files
the environment keeps on every host (``shared/.env``, ``.procman/formation.json``) changed on
all hosts or on none, under the deploy lock, recorded in history, then applied to the processes.

A file is changed in two steps over the host group: staged on every host (the new text written
next to it with mode 0600, the old one kept), then renamed into place on every host. A host that
fails to stage leaves no host changed; a host that fails to rename has the hosts already changed
put back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from procman.deploy import steps
from procman.deploy.config import Environment
from procman.deploy.configvars import (
    Changes,
    ConfigVar,
    check_redis_provider,
    parse_shared_env,
    shared_env_text,
)
from procman.deploy.configvars import applied as applied_changes
from procman.deploy.configvars import listing as config_listing
from procman.deploy.history import OK, HistoryRecord, healthy_record
from procman.deploy.host import DeployHost
from procman.deploy.hostgroup import DeployError, GroupResult, HostGroup, HostGroupError
from procman.deploy.pipeline import Pipeline, host_formation, spread
from procman.errors import FormationError, ProcmanError
from procman.formation import apply_scale, parse_scale

Hosts = HostGroup[DeployHost]


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    environment: str
    changes: Changes
    hosts: tuple[str, ...]
    restarted: bool
    not_set: tuple[str, ...] = ()
    """Names asked to be unset that no host's ``shared/.env`` had."""


@dataclass(frozen=True, slots=True)
class Scaled:
    environment: str
    formation: dict[str, int]
    """The environment's count of every type after the change (all hosts together)."""
    per_host: dict[str, dict[str, int]]
    """What each host runs now of the types changed."""
    live: tuple[str, ...] = ()
    """Hosts whose running processes were scaled (the others start so at their next start)."""
    not_running: tuple[str, ...] = field(default=())


def read_config(pipeline: Pipeline, name: str) -> list[ConfigVar]:
    """The environment's variables: procman.yml's ``env:`` and every host's ``shared/.env``."""
    environment = pipeline.environment(name)
    with pipeline.hosts(environment, read_only=True) as hosts:
        shared = _shared_envs(hosts, "nothing was read")
    return config_listing(environment.env, shared)


def change_config(
    pipeline: Pipeline, name: str, changes: Changes, *, restart: bool = True, wait: float = 0.0
) -> ConfigChanged:
    """Set and unset variables in ``shared/.env`` on every host of the environment (all or
    none), record it (names only), then restart the current release one host at a time,
    unless ``restart`` is False or nothing is deployed."""
    environment = pipeline.environment(name)
    pipeline.config_state()
    started = time.monotonic()
    with pipeline.hosts(environment) as hosts:
        current = hosts[0].current()
        with pipeline.locked(hosts, environment, current or steps.NO_RELEASE, wait):
            shared = _shared_envs(hosts, "nothing was changed")
            texts: dict[str, str] = {}
            for host in hosts:
                values = applied_changes(shared[host.label] or {}, changes)
                check_redis_provider({**environment.env, **values}, f"{name} ({host.label})")
                texts[host.label] = shared_env_text(values)
            not_set = tuple(
                key
                for key in changes.unset
                if not any(key in (values or {}) for values in shared.values())
            )
            path = steps.shared_env_path(hosts[0].root)
            replace_everywhere(hosts, path, texts, pipeline.say)
            pipeline.say(f"{name}: {_described(changes)} in shared/.env on {_count(hosts)}")
            flags = [f"set:{','.join(changes.set)}"] if changes.set else []
            flags += [f"unset:{','.join(changes.unset)}"] if changes.unset else []
            _record(pipeline, hosts, "config", current, flags, started)
    restarted = bool(restart and current)
    if restarted:
        pipeline.restart(name, wait, rolling=True)  # one host at a time: some host keeps serving
    return ConfigChanged(name, changes, tuple(hosts.labels), restarted, not_set)


def scale(pipeline: Pipeline, name: str, specs: Sequence[str], wait: float = 0.0) -> Scaled:
    """Change the environment's formation (``worker=4``, ``web+1``: counts for all its hosts
    together, spread evenly over the hosts that run the type): kept on every host for every
    later start, deploy and promotion, applied live where the release runs, recorded."""
    changes = parse_scale(specs)  # bad syntax fails before connecting anywhere
    environment = pipeline.environment(name)
    pipeline.config_state()
    started = time.monotonic()
    with pipeline.hosts(environment) as hosts:
        current = hosts[0].current()
        if current is None:
            raise DeployError(
                f"nothing is deployed on {name} yet, so there is nothing to scale",
                f"deploy first (procman deploy {name}); procman.yml's formation applies then",
            )
        types = pipeline.types_of(hosts[0], current)
        with pipeline.locked(hosts, environment, current, wait):
            scaled_before = hosts[0].scaled_formation()
            before = {
                t: sum(
                    host_formation(environment, h, [t], scaled_before)[t] for h in environment.hosts
                )
                for t in types
            }
            after = apply_scale(before, changes)
            changed = {t: n for t, n in after.items() if n != before.get(t)}
            _check_scale(environment, types, after, changed)
            kept = {**scaled_before, **changed}
            per_host = {
                host.label: {
                    t: n
                    for t, n in host_formation(environment, host.host, changed, kept).items()
                    if host.host.runs(t)
                }
                for host in hosts
            }
            path = steps.formation_path(hosts[0].root)
            text = json.dumps(kept, sort_keys=True) + "\n"
            if changed:
                replace_everywhere(hosts, path, dict.fromkeys(hosts.labels, text), pipeline.say)
            live, idle = _scale_live(hosts, current, per_host, pipeline.say)
            flags = [f"{t}={n}" for t, n in changed.items()]
            if changed:
                _record(pipeline, hosts, "scale", current, flags, started)
    return Scaled(name, after, per_host, live, idle)


def _check_scale(
    environment: Environment, types: Sequence[str], after: Mapping[str, int], changed: Iterable[str]
) -> None:
    name = environment.name
    unknown = [t for t in after if t not in types]
    if unknown:
        raise FormationError(
            f"{name} runs no process type {', '.join(map(repr, unknown))} (types: "
            f"{', '.join(types)}); nothing was changed",
            "name a type of the Procfile of the release it runs",
        )
    unplaced = [t for t in changed if after[t] > 0 and not spread(after[t], environment, t)]
    if unplaced:
        raise FormationError(
            f"no host of {name} has the role {', '.join(map(repr, unplaced))}; nothing was changed",
            "add it to a host's roles in procman.yml and deploy, then scale",
        )


def _scale_live(
    hosts: Hosts,
    current: str,
    per_host: Mapping[str, Mapping[str, int]],
    say: Callable[[str], None],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Scale the supervisor running ``current`` on each host that runs a changed type; the hosts
    scaled, and those where it does not run. A failure names the hosts that did change."""
    idle: list[str] = []

    def apply(host: DeployHost) -> bool:
        counts = per_host[host.label]
        if not counts:
            return False
        if current not in host.supervisors():
            idle.append(host.label)
            return False
        host.scale(current, counts)
        return True

    result = hosts.run(apply)
    live = tuple(label for label, done in result.values.items() if done)
    failure = result.error(
        f"the formation is kept for {hosts[0].environment.name}'s next start; "
        + (f"scaled live on {', '.join(live)}" if live else "no host was scaled live")
    )
    if failure is not None:
        for error in failure.errors[:-1]:
            say(f"error: {error}")
        raise failure
    return live, tuple(label for label in hosts.labels if label in idle)


def replace_everywhere(
    hosts: Hosts, path: str, texts: Mapping[str, str], say: Callable[[str], None]
) -> None:
    """Replace ``path`` with each host's text (``texts`` by host label) on every host or on
    none: staged everywhere first, then renamed into place; the hosts already changed are put
    back when one fails."""
    try:
        staged = hosts.run(lambda host: host.stage_kept(path, texts[host.label]))
    except KeyboardInterrupt:
        say(f"interrupted: no host was changed; removing what was written beside {path}")
        _warn(hosts.run(lambda host: host.discard_kept(path)), say, "cleaning up")
        raise
    if not staged.ok:
        _warn(hosts.run(lambda host: host.discard_kept(path)), say, "cleaning up")
        staged.raise_on_failure("no host was changed", say)
    try:
        committed = hosts.run(lambda host: host.commit_kept(path))
    except KeyboardInterrupt:
        say(f"interrupted: putting back {path} on every host")
        _warn(hosts.run(lambda host: host.restore_kept(path)), say, "putting back")
        raise
    if not committed.ok:
        changed = hosts.only(committed.succeeded)
        back = changed.run(lambda host: host.restore_kept(path))
        _warn(back, say, "putting back")
        _warn(hosts.only(committed.failed).run(lambda h: h.discard_kept(path)), say, "cleaning up")
        restored = [h.label for h in back.succeeded]
        consequence = (
            f"the hosts already changed were put back ({', '.join(restored)})"
            if restored
            else "no other host had been changed"
        )
        if back.failed:
            consequence += f"; NOT put back: {', '.join(h.label for h in back.failed)}"
        raise _with(committed.error(consequence))
    _warn(hosts.run(lambda host: host.discard_kept(path)), say, "cleaning up")


def _described(changes: Changes) -> str:
    done = [f"set {', '.join(changes.set)}"] if changes.set else []
    done += [f"unset {', '.join(changes.unset)}"] if changes.unset else []
    return "; ".join(done)


def _count(hosts: Hosts) -> str:
    return f"{len(hosts)} host{'' if len(hosts) == 1 else 's'}"


def _with(error: HostGroupError | None) -> ProcmanError:
    assert error is not None
    return error


def _warn(result: GroupResult[DeployHost, None], say: Callable[[str], None], doing: str) -> None:
    for error in result.errors:
        say(f"warning: {doing}: {error}")


def _shared_envs(hosts: Hosts, consequence: str) -> dict[str, dict[str, str] | None]:
    """Every host's ``shared/.env`` variables (None where there is no such file)."""

    def read(host: DeployHost) -> dict[str, str] | None:
        path = steps.shared_env_path(host.root)
        text = host.read_kept(path)
        return None if text is None else parse_shared_env(text, f"{host.label}:{path}")

    result = hosts.run(read)
    result.raise_on_failure(consequence)
    return {label: result.values[label] for label in hosts.labels}


def _record(
    pipeline: Pipeline,
    hosts: Hosts,
    action: str,
    current: str | None,
    flags: list[str],
    started: float,
) -> None:
    """Append ``action`` to the history on every host, for the release current there."""
    release = ("", "", "")
    if current is not None:
        history = hosts[0].history()
        found: HistoryRecord | None = healthy_record(history, current) or next(
            (r for r in reversed(history) if r.release_id == current), None
        )
        release = (current, found.sha256, found.git_sha) if found else (current, "", "")
    pipeline.recorder(hosts, action, release, flags, started)(OK)
