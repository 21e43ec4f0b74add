"""The clock process: every CLOCK_INTERVAL seconds, delete snippets older than SNIPPET_TTL.

    python -m snippets.clock

SIGTERM (what procman sends when stopping) or Ctrl-C ends it after the current run.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from snippets import db
from snippets.config import Settings, load_settings

log = logging.getLogger("snippets.clock")


def clean_up(settings: Settings, now: float) -> int:
    """One run: delete what has expired and say how much."""
    connection = db.connect(settings.database)
    try:
        deleted = db.delete_older_than(connection, now - settings.ttl)
    finally:
        connection.close()
    log.info("deleted %d snippet(s) older than %gs", deleted, settings.ttl)
    return deleted


def run(settings: Settings, stop: threading.Event) -> None:
    log.info(
        "cleaning %s every %gs (keeping snippets for %gs)",
        settings.database,
        settings.interval,
        settings.ttl,
    )
    while not stop.is_set():
        clean_up(settings, time.time())
        stop.wait(settings.interval)
    log.info("stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run(load_settings(), stop)


if __name__ == "__main__":
    main()
