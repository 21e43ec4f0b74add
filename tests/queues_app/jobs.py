"""Jobs the tests enqueue; ``calls`` records what ran in this process."""

from __future__ import annotations

from typing import Any

from procman.queues import job

calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []


def add(a: int, b: int) -> int:
    calls.append(("add", (a, b), {}))
    return a + b


def fail(message: str) -> None:
    raise RuntimeError(message)


def mutate(items: list[int]) -> list[int]:
    items.append(99)
    return items


@job(queue="low", retry=2, timeout=30)
def shout(text: str, *, times: int = 1) -> str:
    calls.append(("shout", (text,), {"times": times}))
    return (text.upper() + "!") * times


@job
def plain(value: int) -> int:
    return value * 2


@job(retry=False)
def never_retried() -> None:
    raise RuntimeError("no retry")
