"""procman.supervisor.output: prefixes, colours and line splitting, as pure byte handling."""

from __future__ import annotations

import time

import pytest

from procman.supervisor.output import (
    MAX_PENDING,
    PALETTE,
    RESET,
    SYSTEM,
    SYSTEM_COLOR,
    LineSplitter,
    Prefixer,
    StreamStyle,
    to_text,
)

NOW = 1_700_000_000.0


def stamp(second: float = NOW) -> bytes:
    return time.strftime("%H:%M:%S ", time.localtime(int(second))).encode()


def prefixer(clock: float = NOW, **style: bool) -> Prefixer:
    printer = Prefixer(StreamStyle(**style), clock=lambda: clock)
    printer.set_names(["web.1", "worker.1"], ["web", "worker"])
    return printer


def test_prefix_pads_to_the_longest_name() -> None:
    printer = prefixer()
    assert printer.prefix("web.1", "web") == stamp() + b"web.1    | "
    assert printer.prefix("worker.1", "worker") == stamp() + b"worker.1 | "


def test_padding_is_at_least_as_wide_as_system() -> None:
    printer = Prefixer(StreamStyle(timestamp=False))
    printer.set_names(["a.1"], ["a"])
    assert printer.prefix("a.1", "a") == b"a.1    | "
    assert printer.prefix(SYSTEM, SYSTEM) == b"system | "


def test_no_timestamp() -> None:
    assert prefixer(timestamp=False).prefix("web.1", "web") == b"web.1    | "


def test_no_prefix_renders_lines_unchanged() -> None:
    printer = prefixer(prefix=False)
    assert printer.prefix("web.1", "web") == b""
    assert printer.render("web.1", "web", b"a\nb\n") == b"a\nb\n"


def test_no_colour_codes_without_color() -> None:
    printer = prefixer()
    for name, type_name in [("web.1", "web"), ("worker.1", "worker"), (SYSTEM, SYSTEM)]:
        assert b"\x1b" not in printer.render(name, type_name, b"line\n")


def test_colour_by_type_position() -> None:
    printer = prefixer(color=True, timestamp=False)
    assert printer.prefix("web.1", "web") == PALETTE[0] + b"web.1    | " + RESET
    assert printer.prefix("worker.1", "worker") == PALETTE[1] + b"worker.1 | " + RESET
    assert printer.prefix(SYSTEM, SYSTEM) == SYSTEM_COLOR + b"system   | " + RESET


def test_colour_is_stable_per_type_whatever_the_instances() -> None:
    printer = Prefixer(StreamStyle(color=True, timestamp=False))
    printer.set_names(["worker.2", "worker.1"], ["web", "worker"])
    assert printer.prefix("worker.1", "worker").startswith(PALETTE[1])
    assert printer.prefix("worker.2", "worker").startswith(PALETTE[1])


def test_palette_wraps_around() -> None:
    types = [f"t{i}" for i in range(len(PALETTE) + 1)]
    printer = Prefixer(StreamStyle(color=True, timestamp=False))
    printer.set_names([f"{t}.1" for t in types], types)
    assert printer.prefix(f"{types[-1]}.1", types[-1]).startswith(PALETTE[0])


def test_render_prefixes_every_line() -> None:
    printer = prefixer(timestamp=False)
    assert printer.render("web.1", "web", b"one\ntwo\n\nfour\n") == (
        b"web.1    | one\nweb.1    | two\nweb.1    | \nweb.1    | four\n"
    )


def test_render_replaces_invalid_utf8() -> None:
    printer = prefixer(timestamp=False)
    assert printer.render("web.1", "web", b"caf\xe9 ok\n") == "web.1    | caf\ufffd ok\n".encode()


def test_to_text() -> None:
    assert to_text(b"plain\n") == b"plain\n"
    assert to_text("é\n".encode()) == "é\n".encode()
    assert to_text(b"\xff\xfe\n") == "\ufffd\ufffd\n".encode()


def test_prefix_follows_the_clock() -> None:
    now = [NOW]
    printer = Prefixer(StreamStyle(), clock=lambda: now[0])
    printer.set_names(["web.1"], ["web"])
    first = printer.prefix("web.1", "web")
    now[0] = NOW + 61
    assert printer.prefix("web.1", "web") == stamp(NOW + 61) + b"web.1  | "
    assert first == stamp(NOW) + b"web.1  | "


# --- LineSplitter ----------------------------------------------------------------------------


def test_complete_lines_pass_through() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\nb\n", 1.0) == b"a\nb\n"
    assert not splitter.has_pending
    assert splitter.flush() == b""


def test_partial_line_is_held_until_its_newline() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\npar", 1.0) == b"a\n"
    assert splitter.has_pending
    assert splitter.pending_since == 1.0
    assert splitter.feed(b"t", 2.0) == b""
    assert splitter.pending_since == 1.0
    assert splitter.feed(b"ial\nnext", 3.0) == b"partial\n"
    assert splitter.pending_since == 3.0
    assert splitter.flush() == b"next\n"
    assert not splitter.has_pending
    assert splitter.pending_since is None


def test_data_without_newline_is_flushed_with_one() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"prompt> ", 1.0) == b""
    assert splitter.flush() == b"prompt> \n"
    assert splitter.flush() == b""


def test_empty_chunk() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"", 1.0) == b""
    assert not splitter.has_pending


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_any_chunking_gives_the_same_lines(size: int) -> None:
    data = b"first\nsecond line\n\nfourth\ntail"
    splitter = LineSplitter()
    out = b"".join(splitter.feed(data[i : i + size], float(i)) for i in range(0, len(data), size))
    assert out + splitter.flush() == data + b"\n"


def test_long_line_is_cut_at_max_pending() -> None:
    splitter = LineSplitter()
    chunk = b"x" * (MAX_PENDING // 2)
    assert splitter.feed(chunk, 1.0) == b""
    assert splitter.feed(chunk, 1.0) == b""  # exactly MAX_PENDING is still held
    assert splitter.feed(b"y", 1.0) == chunk + chunk + b"y\n"
    assert not splitter.has_pending
    assert splitter.feed(b"rest\n", 2.0) == b"rest\n"


def test_a_partial_line_waits_for_a_quiet_writer_but_not_forever() -> None:
    from procman.supervisor.output import PARTIAL_IDLE, PARTIAL_MAX_WAIT

    splitter = LineSplitter()
    assert splitter.flush_at() is None
    splitter.feed(b"Name? ", 10.0)
    assert splitter.flush_at() == 10.0 + PARTIAL_IDLE
    splitter.feed(b"still typing", 10.15)  # the writer is busy: keep waiting for the newline
    assert splitter.flush_at() == 10.15 + PARTIAL_IDLE
    for step in range(1, 30):
        splitter.feed(b".", 10.15 + step * 0.1)
    assert splitter.flush_at() == 10.0 + PARTIAL_MAX_WAIT
    assert splitter.feed(b"\n", 13.0) == b"Name? still typing" + b"." * 29 + b"\n"
    assert splitter.flush_at() is None
