"""The supervisor's memory of recent output, for ``procman logs -n N``: a bounded ring of chunks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    type: str
    time: float
    text: bytes
    """One or more complete lines, each ending in a newline."""


class Logbook:
    """Keeps about ``capacity`` lines; appending is O(1) per chunk, not per line."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: deque[tuple[Entry, int]] = deque()
        self._lines = 0

    def append(self, entry: Entry) -> None:
        count = entry.text.count(b"\n")
        self._entries.append((entry, count))
        self._lines += count
        while self._lines - self._entries[0][1] >= self.capacity:
            _, dropped = self._entries.popleft()
            self._lines -= dropped

    def tail(self, count: int, wanted: Callable[[Entry], bool]) -> list[Entry]:
        """The last ``count`` lines that ``wanted`` accepts, oldest first, one line per entry."""
        found: list[Entry] = []
        for entry, _ in reversed(self._entries):
            if len(found) >= count:
                break
            if not wanted(entry):
                continue
            for line in reversed(list(_lines(entry.text))):
                found.append(Entry(entry.name, entry.type, entry.time, line))
                if len(found) >= count:
                    break
        found.reverse()
        return found


def _lines(text: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(text):
        end = text.index(b"\n", start) + 1
        yield text[start:end]
        start = end
