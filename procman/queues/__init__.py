"""Background jobs on RQ: the queue YAML, the Redis URL, the weighted queue order, and the app's
side: ``from procman.queues import enqueue, job``.

The app-facing names are imported on first use, so ``procman check`` and ``procman start``, which
import the pure modules here, do not pay for importing RQ and redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procman.queues.connection import RedisUnavailable, connect
    from procman.queues.enqueueing import (
        Enqueued,
        JobFunction,
        backoff_intervals,
        enqueue,
        enqueue_call,
        get_connection,
        job,
        use_connection,
    )

__all__ = [
    "Enqueued",
    "JobFunction",
    "RedisUnavailable",
    "backoff_intervals",
    "connect",
    "enqueue",
    "enqueue_call",
    "get_connection",
    "job",
    "use_connection",
]

_FROM_CONNECTION = ("RedisUnavailable", "connect")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = "connection" if name in _FROM_CONNECTION else "enqueueing"
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
