"""Background jobs, run by `procman worker` (RQ): the functions the web process enqueues and
examples/queues.yml names."""

from __future__ import annotations

import logging
import time

from pygments import highlight as render
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import guess_lexer, guess_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from procman.queues import job
from snippets import db
from snippets.clock import clean_up
from snippets.config import load_settings

log = logging.getLogger("snippets.jobs")

FORMATTER = HtmlFormatter(cssclass="highlight")


@job(queue="default", timeout=30, retry=2)
def highlight(snippet_id: int) -> bool:
    """Colour a snippet's code with Pygments and store the HTML; the page shows it from then on.

    Enqueued by the web process when a snippet is pasted, so the request returns at once. Returns
    False when the snippet is gone (deleted before the job ran)."""
    connection = db.connect(load_settings().database)
    try:
        snippet = db.get(connection, snippet_id)
        if snippet is None:
            log.info("snippet %d is gone, nothing to highlight", snippet_id)
            return False
        lexer = _lexer(snippet.title, snippet.code)
        stored = db.set_html(connection, snippet_id, render(snippet.code, lexer, FORMATTER))
    finally:
        connection.close()
    log.info("highlighted snippet %d as %s", snippet_id, lexer.name)
    return stored


def _lexer(title: str, code: str) -> Lexer:
    """By the title when it is a file name (``hello.py``), else guessed from the code."""
    try:
        return guess_lexer_for_filename(title, code)
    except ClassNotFound:
        pass
    try:
        return guess_lexer(code)
    except ClassNotFound:
        return TextLexer()


def expire_snippets() -> int:
    """Delete the snippets older than SNIPPET_TTL (the clock's clean-up, run as a scheduled job)."""
    return clean_up(load_settings(), time.time())
