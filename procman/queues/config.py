"""The queue YAML (``queues.yml``): which queues a worker serves, how, and the periodic jobs.

Shaped like Sidekiq's ``sidekiq.yml`` so a Sidekiq user recognises it, and a ``sidekiq.yml`` is read
as Sidekiq reads it: every key may also be spelled with Sidekiq's leading colon (``:queues:``), the
text goes through a small ERB subset first (``procman.queues.erb``), the current environment's
block is merged over the top level and the keys of Sidekiq's plugins are set aside with a warning
(``procman.queues.sidekiq``). Everything is validated before a worker starts; each problem is
reported with the file and its key path (``queues.yml: queues[1]: ...``), and independent
problems are reported together.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from croniter import croniter

from procman.errors import ProcmanError, QueueConfigError, excerpt, flag_of, raise_collected
from procman.queues import erb, sidekiq
from procman.queues.weighting import queue_mode
from procman.textfile import FileWords, read_text
from procman.yamlconfig import KeyPathChecker, describe, is_int, load_yaml

DEFAULT_FILE = "queues.yml"

DEFAULT_CONCURRENCY = 2
"""Worker processes per ``procman worker`` when the file does not say. Sidekiq's default of 5 is
threads sharing one process; procman's workers are processes, each holding its own interpreter and
app, so 2 keeps a 2-core laptop busy without swapping, and ``procman scale worker=N`` multiplies."""
MAX_CONCURRENCY = 256
DEFAULT_QUEUE = "default"
"""RQ's default queue name (``Queue()`` with no name), and Sidekiq's."""
DEFAULT_TIMEOUT = 180
"""Seconds; RQ's default job timeout (``Queue.DEFAULT_TIMEOUT``)."""
DEFAULT_RETRY = 0
"""RQ's default: a job that raises goes to the failed registry at once (``procman jobs retry``)."""

QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ALL_QUEUES = "*"
"""``queues: ['*']`` (``--queues '*'``): every queue that exists in Redis, alphabetically."""
SCHEDULE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_SIZE = re.compile(r"(?P<number>[0-9]+(\.[0-9]+)?)\s*(?P<unit>[A-Za-z]+)")
SIZE_UNITS = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
}

TOP_KEYS = (
    "concurrency",
    "queues",
    "timeout",
    "retry",
    "max_jobs",
    "max_memory",
    "keyspace_notifications",
    "schedule",
)
SCHEDULE_KEYS = ("cron", "func", "queue", "args", "kwargs")
REQUIRED_SCHEDULE_KEYS = ("cron", "func", "queue")
# Keys from neighbouring tools whose meaning has a different name here.
KEY_HINTS = {
    "class": "func",  # sidekiq-cron, sidekiq-scheduler
    "every": "cron",  # sidekiq-scheduler
    "workers": "concurrency",
    "processes": "concurrency",
    "job_timeout": "timeout",
    "retries": "retry",
}

NULL_MEANS_DEFAULT = ("concurrency", "timeout", "queues")
"""Keys left empty (``:concurrency: <%= ENV["UNSET"] %>``) take the default, as in Sidekiq."""
SIDEKIQ_CRON_FIELDS = 5
EVERY_KEYS = ("every", "at", "in", "interval")
"""sidekiq-scheduler's other ways to say when; procman schedules by cron only."""

Importer = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    weight: int | None
    """None for a queue listed without a weight (a plain name, or ``[name]``); it counts as
    weight 0 when choosing the mode, and is drawn as weight 1 in weighted mode (Sidekiq 7)."""

    def label(self) -> str:
        if self.name == ALL_QUEUES:
            return "all queues (*)"
        return self.name if self.weight is None else f"{self.name}({self.weight})"


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    name: str
    cron: str
    func: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class QueueConfig:
    path: str | None
    """The file it came from; None for the defaults (no file)."""
    concurrency: int = DEFAULT_CONCURRENCY
    queues: tuple[QueueSpec, ...] = (QueueSpec(DEFAULT_QUEUE, None),)
    timeout: int = DEFAULT_TIMEOUT
    retry: int = DEFAULT_RETRY
    """Retries after the first failure; 0 means none (``retry: false``)."""
    max_jobs: int | None = None
    max_memory: int | None = None
    """Bytes."""
    keyspace_notifications: bool = True
    """Whether a worker serving several queues may turn on Redis's keyspace notifications for list
    events (``CONFIG SET notify-keyspace-events``, a setting of the whole Redis); with False it
    leaves the setting alone and waits on the wake-up lists, as where CONFIG is refused."""
    schedule: tuple[ScheduledJob, ...] = ()
    environment: str | None = None
    """The environment whose block was merged (Sidekiq's ``production:``), None for no file."""
    environment_source: str | None = None
    """The variable that named it (``RAILS_ENV``), or 'the default'."""
    warnings: tuple[str, ...] = ()
    """One line each: keys read but not acted on (Sidekiq's plugins), and what procman does."""

    @property
    def mode(self) -> str:
        """Sidekiq 7's: ``strict`` (no weights: in order), ``random`` (all weights equal) or
        ``weighted``."""
        return queue_mode([queue.weight for queue in self.queues])

    @property
    def weighted(self) -> bool:
        """Whether the order is drawn at random on each fetch (not strict)."""
        return self.mode != "strict"

    @property
    def names(self) -> list[str]:
        return [queue.name for queue in self.queues]

    @property
    def weights(self) -> list[tuple[str, int]]:
        """``(name, weight)`` pairs for ``weighted_order``; weight 1 each when in strict order."""
        return [(queue.name, queue.weight or 1) for queue in self.queues]

    def summary(self) -> str:
        return ", ".join(queue.label() for queue in self.queues)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "concurrency": self.concurrency,
            "environment": {"name": self.environment, "from": self.environment_source},
            "queues": [{"name": q.name, "weight": q.weight} for q in self.queues],
            "mode": self.mode,
            "weighted": self.weighted,
            "timeout": self.timeout,
            "retry": self.retry,
            "max_jobs": self.max_jobs,
            "max_memory": self.max_memory,
            "keyspace_notifications": self.keyspace_notifications,
            "schedule": [
                {
                    "name": job.name,
                    "cron": job.cron,
                    "func": job.func,
                    "queue": job.queue,
                    "args": list(job.args),
                    "kwargs": dict(job.kwargs),
                }
                for job in self.schedule
            ],
            "warnings": list(self.warnings),
        }


DEFAULT_CONFIG = QueueConfig(path=None)


def default_path(app_dir: Path) -> Path:
    return app_dir / DEFAULT_FILE


QUEUE_FILE_WORDS = FileWords(
    missing="no such file",
    missing_hint=f"create it (see examples/queues.yml), or point to one with {flag_of('config')}",
    directory_hint="pass the YAML file itself",
)


def load_queue_config(
    path: Path,
    *,
    app_dir: Path | None = None,
    importer: Importer | None = None,
    import_funcs: bool = True,
    env: Mapping[str, str] | None = None,
    cores: int | None = None,
) -> QueueConfig:
    """Read and validate the queue YAML at ``path``; ``schedule`` funcs are imported with
    ``app_dir`` (default: the file's directory) at the front of ``sys.path``, unless
    ``import_funcs`` is False (only their dotted form is checked then). ``env`` (default: this
    process's) is what the file's ERB reads and what names its environment block."""
    text = read_text(path, QueueConfigError, QUEUE_FILE_WORDS)
    if not import_funcs:
        return parse_queue_config(text, str(path), importer=None, env=env, cores=cores)
    return parse_queue_config(
        text,
        str(path),
        importer=importer or _app_importer(app_dir if app_dir is not None else path.parent),
        env=env,
        cores=cores,
    )


def parse_queue_config(
    text: str,
    path: str = DEFAULT_FILE,
    *,
    importer: Importer | None = None,
    env: Mapping[str, str] | None = None,
    cores: int | None = None,
) -> QueueConfig:
    """Validate queue YAML text. ``importer`` imports a module by name to check each schedule
    ``func``; None skips that check. ``env`` (default: this process's) feeds the ERB and names
    the environment; ``cores`` (default: this machine's) is what a Sidekiq file's thread count
    is compared with. Raises QueueConfigError, or ManyErrors with every problem."""
    env = os.environ if env is None else env
    document = _load_yaml(erb.render(text, env, path), path)
    environment, source = sidekiq.environment_name(env)
    if document is None:
        return QueueConfig(path=path, environment=environment, environment_source=source)
    errors: list[ProcmanError] = []
    config = _Builder(path, errors)
    prepared = None
    if isinstance(document, dict):
        prepared = sidekiq.prepare(document, path, env, TOP_KEYS, errors)
        document = {
            key: value
            for key, value in prepared.document.items()
            if not (value is None and sidekiq.bare(key) in NULL_MEANS_DEFAULT)
        }
    values = config.mapping("", document, TOP_KEYS)
    if values is None:
        raise_collected(errors)
        return QueueConfig(path=path)
    queues = config.queues(values.get("queues"))
    if "queues" not in values:
        queue_names: list[str] | None = DEFAULT_CONFIG.names
    else:
        queue_names = [queue.name for queue in queues] if queues is not None else None
    result = QueueConfig(
        path=path,
        concurrency=config.integer(
            values, "concurrency", DEFAULT_CONCURRENCY, minimum=1, maximum=MAX_CONCURRENCY
        ),
        queues=queues or DEFAULT_CONFIG.queues,
        timeout=config.integer(values, "timeout", DEFAULT_TIMEOUT, minimum=1),
        retry=config.retry(values.get("retry", DEFAULT_RETRY)),
        max_jobs=config.optional_integer(values, "max_jobs"),
        max_memory=config.size(values.get("max_memory")),
        keyspace_notifications=config.flag(
            "keyspace_notifications", values.get("keyspace_notifications"), True
        ),
        schedule=config.schedule(values.get("schedule"), queue_names, importer),
        environment=environment,
        environment_source=source,
    )
    if prepared is not None:
        warnings = list(prepared.warnings)
        scheduled = config.scheduler_jobs(prepared.scheduler_entries, queue_names, importer)
        warnings.extend(config.warnings)
        cores = cores if cores is not None else (os.cpu_count() or 1)
        if prepared.sidekiq_shaped and result.concurrency > cores:
            warnings.append(
                f"{path}: concurrency: {result.concurrency} is Sidekiq's number of threads; "
                f"procman runs {result.concurrency} worker processes (one job at a time each) "
                f"on {cores} cores: about one per core suits jobs that compute, more only jobs "
                "that mostly wait"
            )
        result = replace(
            result,
            schedule=(*result.schedule, *scheduled),
            warnings=tuple(warnings),
        )
    raise_collected(errors)
    return result


def _load_yaml(text: str, path: str) -> Any:
    return load_yaml(text, path, QueueConfigError)


_describe = describe
_is_int = is_int


class _Builder(KeyPathChecker):
    """Validates one document's values, noting each problem in ``errors`` and going on."""

    def __init__(self, path: str, errors: list[ProcmanError]) -> None:
        super().__init__(path, errors, QueueConfigError, key_hints=KEY_HINTS, colons=True)
        self.warnings: list[str] = []

    def integer(
        self,
        values: Mapping[str, Any],
        key: str,
        default: int,
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        value = values.get(key, default)
        if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
            limit = f"from {minimum} to {maximum}" if maximum else "a positive integer"
            self.fail(key, f"must be {limit} (got {_describe(value)})")
            return default
        return int(value)

    def optional_integer(self, values: Mapping[str, Any], key: str) -> int | None:
        value = values.get(key)
        if value is None:
            return None
        if not _is_int(value) or value < 1:
            self.fail(
                key,
                f"must be a positive integer (got {_describe(value)})",
                f"leave '{key}' out for no limit",
            )
            return None
        return int(value)

    def retry(self, value: Any) -> int:
        if value is False:
            return 0
        if not _is_int(value) or value < 0:
            self.fail(
                "retry",
                f"must be a number of retries or false (got {_describe(value)})",
                "write 'retry: 5' for five retries with backoff, or 'retry: false' for none",
            )
            return DEFAULT_RETRY
        return int(value)

    def size(self, value: Any) -> int | None:
        if value is None:
            return None
        hint = "write a size with its unit, like 512MB, 1GB or 300kB"
        if not isinstance(value, str):
            self.fail("max_memory", f"must be a size like 512MB (got {_describe(value)})", hint)
            return None
        match = _SIZE.fullmatch(value.strip())
        unit = SIZE_UNITS.get(match["unit"].lower()) if match else None
        if match is None or unit is None or len(match["number"]) > 12:
            self.fail("max_memory", f"{excerpt(value, 40)!r} is not a size", hint)
            return None
        size = int(float(match["number"]) * unit)
        if size < 1:
            self.fail("max_memory", f"must be above 0 (got {value.strip()})", hint)
            return None
        return size

    def queues(self, value: Any) -> tuple[QueueSpec, ...] | None:
        """Sidekiq's list: ``- [name, weight]``, ``- name`` or ``- [name]`` in any mix; a name
        listed twice is an error, as in Sidekiq 6."""
        example = "like '- [critical, 5]' (weighted) or '- critical' (strict order)"
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _describe(value)
            hint = f"list them one per line, {example}"
            self.fail("queues", f"must be a list of queues (got {got})", hint)
            return None
        specs: list[QueueSpec] = []
        first_at: dict[str, int] = {}
        for index, item in enumerate(value):
            spec = self.queue(f"queues[{index}]", item)
            if spec is None:
                continue
            if spec.name in first_at:
                self.fail(
                    f"queues[{index}]",
                    f"queue '{spec.name}' is listed twice (first at queues[{first_at[spec.name]}])",
                    "list each queue once",
                )
                continue
            first_at[spec.name] = index
            specs.append(spec)
        if len(specs) != len(value):
            return None
        if len(specs) > 1 and any(spec.name == ALL_QUEUES for spec in specs):
            self.fail(
                "queues",
                "'*' (every queue in Redis) cannot be listed with other queues",
                "write queues: ['*'] alone, or list the queues by name",
            )
            return None
        return tuple(specs)

    def queue(self, key_path: str, item: Any) -> QueueSpec | None:
        if isinstance(item, list):
            if len(item) not in (1, 2):
                self.fail(
                    key_path,
                    f"expected [name, weight] or [name], got a list of {len(item)}",
                    "write it like [critical, 5]",
                )
                return None
            name, weight = item if len(item) == 2 else (item[0], None)
            if not self.queue_name(key_path, name):
                return None
            if weight is None:
                return QueueSpec(name, None)
            if isinstance(weight, str) and weight.strip().isdigit():
                weight = int(weight)  # Sidekiq's weight.to_i
            if not _is_int(weight) or weight < 0:
                self.fail(
                    key_path,
                    f"weight must be a whole number, 0 or more (got {_describe(weight)})",
                    "write it like [critical, 5]; a queue without a weight counts as 0",
                )
                return None
            return QueueSpec(name, int(weight))
        if item == ALL_QUEUES:
            return QueueSpec(ALL_QUEUES, None)
        if not self.queue_name(key_path, item):
            return None
        return QueueSpec(item, None)

    def queue_name(self, key_path: str, name: Any) -> bool:
        if isinstance(name, str) and QUEUE_NAME.fullmatch(name):
            return True
        if isinstance(name, str) and "," in name:
            hint = "write a weight as a pair, like [critical, 5]"
        else:
            hint = "queue names may use only letters, digits, '_', '-' and '.'"
        self.fail(key_path, f"bad queue name {_describe(name)}", hint)
        return False

    def schedule(
        self, value: Any, queue_names: list[str] | None, importer: Importer | None
    ) -> tuple[ScheduledJob, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail(
                "schedule",
                f"must be a mapping of job names to jobs (got {_describe(value)})",
                "write 'name: {cron: \"0 * * * *\", func: app.jobs.f, queue: default}'",
            )
            return ()
        jobs = []
        for name, entry in value.items():
            job = self.scheduled_job(name, entry, queue_names, importer)
            if job is not None:
                jobs.append(job)
        return tuple(jobs)

    def scheduled_job(
        self, name: Any, entry: Any, queue_names: list[str] | None, importer: Importer | None
    ) -> ScheduledJob | None:
        if not isinstance(name, str) or not SCHEDULE_NAME.fullmatch(name):
            self.fail(
                "schedule",
                f"bad job name {_describe(name)}",
                "names may use only letters, digits, '_', '-' and '.'",
            )
            return None
        key_path = f"schedule.{name}"
        before = len(self.errors)
        values = self.mapping(key_path, entry, SCHEDULE_KEYS)
        if values is None:
            return None
        for key in REQUIRED_SCHEDULE_KEYS:
            if key not in values:
                self.fail(key_path, f"missing '{key}'", f"give {key_path} a {key}")
        cron = self.cron(f"{key_path}.cron", values.get("cron"))
        func = self.func(f"{key_path}.func", values.get("func"), importer)
        queue = self.schedule_queue(f"{key_path}.queue", values.get("queue"), queue_names)
        args = values.get("args", [])
        if not isinstance(args, list):
            self.fail(f"{key_path}.args", f"must be a list (got {_describe(args)})")
        kwargs = values.get("kwargs", {})
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            self.fail(
                f"{key_path}.kwargs",
                f"must be a mapping of argument names to values (got {_describe(kwargs)})",
            )
        if len(self.errors) != before or cron is None or func is None or queue is None:
            return None
        return ScheduledJob(
            name=name,
            cron=cron,
            func=func,
            queue=queue,
            args=tuple(args),
            kwargs=MappingProxyType(dict(kwargs)),
        )

    def cron(self, key_path: str, value: Any, *, report: bool = True) -> str | None:
        if value is None:
            return None
        hint = "five fields: minute hour day-of-month month day-of-week, like '0 * * * *'"
        if not isinstance(value, str):
            if report:
                self.fail(key_path, f"must be a cron string (got {_describe(value)})", hint)
            return None
        try:
            valid = croniter.is_valid(value)
        except Exception:  # croniter raises more than its own errors on odd input
            valid = False
        if not valid:
            if report:
                self.fail(key_path, f"{excerpt(value, 40)!r} is not a valid cron string", hint)
            return None
        return value

    def func(self, key_path: str, value: Any, importer: Importer | None) -> str | None:
        if value is None:
            return None
        hint = "give the function's dotted path, like app.jobs.expire_sessions"
        if not isinstance(value, str) or not DOTTED_PATH.fullmatch(value):
            self.fail(key_path, f"{_describe(value)} is not a dotted path to a function", hint)
            return None
        if importer is not None:
            problem = import_problem(value, importer)
            if problem is not None:
                self.fail(
                    key_path,
                    f"cannot import {value}: {problem}",
                    "check the path, and that the app directory holds the module",
                )
                return None
        return value

    def scheduler_jobs(
        self,
        entries: Mapping[str, tuple[str, Any]],
        queue_names: list[str] | None,
        importer: Importer | None,
    ) -> tuple[ScheduledJob, ...]:
        """sidekiq-scheduler's entries: each one whose ``class`` is a Python function procman can
        import and whose ``cron`` has five fields is scheduled like procman's own; every other
        one gives a warning and is left out (never an error: Sidekiq would run the file)."""
        jobs = []
        for name, (key_path, entry) in entries.items():
            job = self.scheduler_job(name, key_path, entry, queue_names, importer)
            if isinstance(job, ScheduledJob):
                jobs.append(job)
            else:
                self.warnings.append(
                    f"{self.path}: {key_path}: sidekiq-scheduler entry not scheduled: {job}"
                )
        return tuple(jobs)

    def scheduler_job(
        self,
        name: str,
        key_path: str,
        entry: Any,
        queue_names: list[str] | None,
        importer: Importer | None,
    ) -> ScheduledJob | str:
        """The job, or why it is not scheduled."""
        instead = "write cron: (five fields) and func: module.function for procman to run it"
        if not isinstance(entry, dict):
            return f"not a mapping; {instead}"
        values = {sidekiq.bare(key): value for key, value in entry.items()}
        if values.get("enabled", True) is False:
            return "disabled (enabled: false)"
        if not SCHEDULE_NAME.fullmatch(name):
            return "names may use only letters, digits, '_', '-' and '.'"
        func = values.get("class")
        if not isinstance(func, str) or not DOTTED_PATH.fullmatch(func):
            shown = repr(func) if isinstance(func, str) else _describe(func)
            return f"class {shown} is not a Python function's dotted path; {instead}"
        problem = import_problem(func, importer) if importer is not None else None
        if problem is not None:
            return f"cannot import {func}: {problem}; {instead}"
        cron = values.get("cron")
        if cron is None:
            when = [key for key in EVERY_KEYS if key in values]
            said = f"'{when[0]}:'" if when else "no 'cron:'"
            return f"procman schedules by cron only ({said}); {instead}"
        if (
            not isinstance(cron, str)
            or len(cron.split()) != SIDEKIQ_CRON_FIELDS
            or self.cron(f"{key_path}.cron", cron, report=False) is None
        ):
            shown = repr(cron) if isinstance(cron, str) else _describe(cron)
            return f"cron {shown} is not a five-field cron string; {instead}"
        queue = values.get("queue", DEFAULT_QUEUE)
        if not isinstance(queue, str) or (queue_names is not None and queue not in queue_names):
            return f"its queue {_describe(queue)} is not in queues, so no worker would run it"
        args = values.get("args", [])
        return ScheduledJob(
            name=name,
            cron=cron,
            func=func,
            queue=queue,
            args=tuple(args) if isinstance(args, list) else (args,),
        )

    def schedule_queue(
        self, key_path: str, value: Any, queue_names: list[str] | None
    ) -> str | None:
        if value is None:
            return None
        if not self.queue_name(key_path, value):
            return None
        if queue_names is not None and value not in queue_names and ALL_QUEUES not in queue_names:
            self.fail(
                key_path,
                f"queue '{value}' is not in queues ({', '.join(queue_names)})",
                "add it to queues, or no worker of this file would ever run the job",
            )
            return None
        return str(value)


def import_problem(dotted: str, importer: Importer) -> str | None:
    """Import ``module.attr``; None when it is a callable, otherwise what went wrong, one line."""
    module_name, _, attribute = dotted.rpartition(".")
    try:
        module = importer(module_name)
    except ModuleNotFoundError as error:
        return f"no module named {error.name!r}" if error.name else _one_line(error)
    except Exception as error:  # the app's module raised while being imported
        return f"importing {module_name} raised {_one_line(error)}"
    except SystemExit as error:
        return f"importing {module_name} called sys.exit({error.code!r})"
    try:
        target = getattr(module, attribute)
    except AttributeError:
        return f"module {module_name} has no attribute {attribute!r}"
    if not callable(target):
        return f"{attribute!r} in {module_name} is not a function"
    return None


def _one_line(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {excerpt(text, 100)}" if text else type(error).__name__


def _app_importer(app_dir: Path) -> Importer:
    def import_from_app(module_name: str) -> Any:
        with _on_sys_path(app_dir):
            return importlib.import_module(module_name)

    return import_from_app


@contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    entry = str(directory.resolve())
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)
