"""Reading a ``config/sidekiq.yml`` as Sidekiq reads it, before procman validates its own keys.

Sidekiq (6 and 7, ``Sidekiq::CLI#parse_config``) merges the block of the current environment
(``production:``) over the top level, shallowly, and ignores every key it does not know, so real
files carry keys of its plugins and of older versions. This module does the same merge and sets
those keys aside, each with one warning line saying what procman does instead; what is left is
validated by ``procman.queues.config`` as strictly as procman's own ``queues.yml``:

- the environment is named by ``PROCMAN_ENV``, else ``APP_ENV``, ``RAILS_ENV`` or ``RACK_ENV``
  (Sidekiq's order), else ``development``; the blocks of other environments are left out;
- keys of Sidekiq's plugins or of Sidekiq itself that procman does not act on (``limits``,
  ``labels``, ``require``, ``max_retries`` ...): warned about, never acted on;
- keys Sidekiq 6 dropped (``daemon``, ``logfile``, ``pidfile``): warned about;
- sidekiq-scheduler's entries (``schedule:`` or ``scheduler: schedule:``, told from procman's own
  ``schedule:`` entries by their ``class:`` key) are handed back for the validator to schedule
  when their class is a Python function it can import, or to warn about.

Pure: the environment is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procman.errors import ProcmanError, QueueConfigError

ENVIRONMENT_VARIABLES = ("PROCMAN_ENV", "APP_ENV", "RAILS_ENV", "RACK_ENV")
DEFAULT_ENVIRONMENT = "development"
ENVIRONMENT_NAMES = ("development", "test", "staging", "production")
"""Top-level keys taken as environment blocks whatever they hold (other names are taken as one
when their mapping holds only config keys)."""

_CAP_A_QUEUE = "to cap a queue, serve it from a worker of its own with fewer processes"
_LOGGING = "procman logs one line per job; its worker's verbose option (PROCMAN_VERBOSE=1) logs all"
IGNORED_KEYS = {
    "limits": f"sidekiq-limit_fetch's queue limits are not applied; {_CAP_A_QUEUE}",
    "process_limits": f"sidekiq-limit_fetch's queue limits are not applied; {_CAP_A_QUEUE}",
    "qlimit": f"sidekiq-qlimit's queue limits are not applied; {_CAP_A_QUEUE}",
    "dynamic": "the plugins' dynamic mode is off: procman reads queues and schedule at start",
    "labels": "Sidekiq's process labels are ignored: procman lists workers by host and pid",
    "tag": "Sidekiq's process tag is ignored: procman lists workers by host and pid",
    "require": (
        "Sidekiq's app to load is ignored: procman imports each job by its dotted path from "
        "the app directory"
    ),
    "max_retries": "Sidekiq's default retry count is ignored: procman's is the 'retry' key",
    "retry_interval": (
        "ignored: procman's retries back off as Sidekiq's do (15, 16, 31, 96, 271 s ...)"
    ),
    "verbose": f"ignored: {_LOGGING}",
    "loglevel": f"ignored: {_LOGGING}",
    "redis": (
        "ignored: procman reads the Redis URL from REDIS_URL (or the variable REDIS_PROVIDER names)"
    ),
    "strict": "ignored, as Sidekiq ignores it: the order comes from the queues' weights",
    "capsules": (
        "Sidekiq 7 capsules are not run: serve each capsule's queues from a worker line of its "
        "own in the Procfile"
    ),
    "environment": (
        "ignored: the environment comes from PROCMAN_ENV, APP_ENV, RAILS_ENV or RACK_ENV"
    ),
}
"""Keys that Sidekiq or one of its plugins reads and procman does not act on: what it does
instead."""
DROPPED_KEYS = ("daemon", "logfile", "pidfile")
DROPPED = (
    "dropped in Sidekiq 6, and not acted on: procman supervises the worker (no daemon, no pid "
    "file) and writes its log to standard output"
)
SCHEDULER_KEY = "scheduler"
SCHEDULE_KEY = "schedule"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A sidekiq.yml's top level as procman validates it, and what was set aside."""

    document: dict[Any, Any]
    environment: str
    environment_source: str
    """The variable that named the environment, or 'the default'."""
    other_environments: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    scheduler_entries: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """sidekiq-scheduler's entries: name -> (key path of the entry, its mapping)."""
    sidekiq_shaped: bool = False
    """Whether the file reads like Sidekiq's (a ':key', or a key only Sidekiq's files have)."""


def environment_name(env: Mapping[str, str]) -> tuple[str, str]:
    """The environment and the variable it came from (Sidekiq's order, PROCMAN_ENV first)."""
    for variable in ENVIRONMENT_VARIABLES:
        value = env.get(variable, "")
        if value:
            return value, variable
    return DEFAULT_ENVIRONMENT, "the default"


def bare(key: Any) -> Any:
    """A key without Sidekiq's leading colon."""
    return key[1:] if isinstance(key, str) and key.startswith(":") else key


def prepare(
    document: dict[Any, Any],
    path: str,
    env: Mapping[str, str],
    config_keys: tuple[str, ...],
    errors: list[ProcmanError],
) -> Prepared:
    """Merge the environment's block over the top level and set the keys procman does not act
    on aside (``config_keys`` are procman's own top-level keys)."""
    name, source = environment_name(env)
    known = (*config_keys, *IGNORED_KEYS, *DROPPED_KEYS, SCHEDULER_KEY)
    top: dict[Any, Any] = {}
    block: dict[Any, Any] = {}
    others: list[str] = []
    for key, value in document.items():
        if bare(key) == name and bare(key) not in config_keys:
            if not isinstance(value, dict):
                errors.append(
                    QueueConfigError(
                        f"{path}: {bare(key)}: the block of the {name} environment must be a "
                        "mapping of keys to values",
                        "write it as 'key: value' lines indented under it",
                    )
                )
                continue
            block = value
        elif _environment_block(key, value, known):
            others.append(str(bare(key)))
        else:
            top[key] = value
    merged = _merge(top, block)
    warnings: list[str] = []
    entries: dict[str, tuple[str, Any]] = {}
    result: dict[Any, Any] = {}
    for key, value in merged.items():
        plain = bare(key)
        if plain in IGNORED_KEYS:
            warnings.append(f"{path}: {plain}: {IGNORED_KEYS[plain]}")
        elif plain in DROPPED_KEYS:
            warnings.append(f"{path}: {plain}: {DROPPED}")
        elif plain == SCHEDULER_KEY:
            _scheduler(path, value, entries, warnings)
        elif plain == SCHEDULE_KEY and isinstance(value, dict):
            own = _split_schedule(SCHEDULE_KEY, value, entries)
            if own or not entries:
                result[key] = own
        else:
            result[key] = value
            if plain == "timeout" and key != plain:
                warnings.append(
                    f"{path}: timeout: Sidekiq's ':timeout:' is its shutdown wait; procman reads "
                    "it as each job's time limit (a job running longer is stopped and failed)"
                )
    shaped = any(isinstance(k, str) and k.startswith(":") for k in merged) or bool(
        others or block or warnings or entries
    )
    return Prepared(
        document=result,
        environment=name,
        environment_source=source,
        other_environments=tuple(others),
        warnings=tuple(warnings),
        scheduler_entries=entries,
        sidekiq_shaped=shaped,
    )


def _environment_block(key: Any, value: Any, known: tuple[str, ...]) -> bool:
    if not isinstance(key, str) or bare(key) in known or not isinstance(value, dict):
        return False
    if bare(key) in ENVIRONMENT_NAMES:
        return True
    return bool(value) and all(bare(inner) in known for inner in value)


def _merge(top: dict[Any, Any], block: dict[Any, Any]) -> dict[Any, Any]:
    """Sidekiq's ``opts.merge(environment block)``: a key of the block replaces the top level's,
    whichever spelling (``:concurrency`` or ``concurrency``) each uses."""
    merged = dict(top)
    for key, value in block.items():
        for same in [k for k in merged if bare(k) == bare(key)]:
            del merged[same]
        merged[key] = value
    return merged


def _split_schedule(
    key_path: str, value: dict[Any, Any], entries: dict[str, tuple[str, Any]]
) -> dict[Any, Any]:
    """procman's own entries; sidekiq-scheduler's (those with a ``class:``) go to ``entries``."""
    own: dict[Any, Any] = {}
    for name, entry in value.items():
        if isinstance(entry, dict) and any(bare(k) == "class" for k in entry):
            entries[str(name)] = (f"{key_path}.{name}", entry)
        else:
            own[name] = entry
    return own


def _scheduler(
    path: str, value: Any, entries: dict[str, tuple[str, Any]], warnings: list[str]
) -> None:
    """sidekiq-scheduler's ``scheduler:`` block: its ``schedule:`` entries, and a warning for
    its settings (``enabled``, ``dynamic`` ...), which procman has no use for."""
    if not isinstance(value, dict):
        warnings.append(f"{path}: scheduler: not a mapping; ignored")
        return
    settings = []
    for key, inner in value.items():
        if bare(key) == SCHEDULE_KEY and isinstance(inner, dict):
            for name, entry in inner.items():
                entries[str(name)] = (f"scheduler.schedule.{name}", entry)
        else:
            settings.append(str(bare(key)))
    if settings:
        warnings.append(
            f"{path}: scheduler: sidekiq-scheduler's settings ({', '.join(settings)}) are "
            "ignored: procman's worker pool enqueues the schedule's due jobs itself"
        )
