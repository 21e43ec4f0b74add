"""Background jobs, run by `procman worker` (RQ): the functions examples/queues.yml names."""

from __future__ import annotations

import time

from snippets.clock import clean_up
from snippets.config import load_settings


def expire_snippets() -> int:
    """Delete the snippets older than SNIPPET_TTL (the clock's clean-up, run as a scheduled job)."""
    return clean_up(load_settings(), time.time())
