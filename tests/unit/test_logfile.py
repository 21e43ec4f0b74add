"""The rotated, capped log file of ``procman start --log-file``: sizes, names and order."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from procman.supervisor.logfile import RotatingLogFile, backup_path


def written(sink: RotatingLogFile, lines: list[bytes]) -> None:
    for line in lines:
        sink.write(line)
        sink.flush()


def kept(path: Path, backups: int) -> bytes:
    """Every kept file's content, oldest first."""
    files = [backup_path(path, n) for n in range(backups, 0, -1)] + [path]
    return b"".join(f.read_bytes() for f in files if f.exists())


def test_rotates_before_the_cap_and_keeps_the_newest_lines_in_order(tmp_path: Path) -> None:
    path = tmp_path / "procman.log"
    sink = RotatingLogFile(path, max_bytes=100, backups=2)
    lines = [f"line {n:04d}\n".encode() for n in range(100)]  # 10 bytes each, 1000 in all
    written(sink, lines)
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "procman.log",
        "procman.log.1",
        "procman.log.2",
    ]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert kept(path, 2) == b"".join(lines[-30:])  # the newest 3 x 100 bytes, nothing between lost


def test_appends_to_what_is_there_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "procman.log"
    path.write_bytes(b"x" * 95 + b"\n")
    sink = RotatingLogFile(path, max_bytes=100, backups=1)
    written(sink, [b"next\n"])
    sink.close()
    assert backup_path(path, 1).read_bytes() == b"x" * 95 + b"\n"
    assert path.read_bytes() == b"next\n"


def test_without_backups_the_file_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "procman.log"
    sink = RotatingLogFile(path, max_bytes=10, backups=0)
    written(sink, [b"aaaaaaaa\n", b"bbbbbbbb\n"])
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["procman.log"]
    assert path.read_bytes() == b"bbbbbbbb\n"


@settings(max_examples=50, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=1, max_value=300), max_size=60),
    max_bytes=st.integers(min_value=1, max_value=500),
    backups=st.integers(min_value=0, max_value=4),
)
def test_disk_used_never_passes_the_cap(chunks: list[int], max_bytes: int, backups: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "log"
        sink = RotatingLogFile(path, max_bytes=max_bytes, backups=backups)
        data = [bytes([65 + n % 26]) * (size - 1) + b"\n" for n, size in enumerate(chunks)]
        written(sink, data)
        sink.close()
        files = list(Path(directory).iterdir())
        assert len(files) <= backups + 1
        assert all(f.stat().st_size <= max_bytes for f in files)
        everything = kept(path, backups)
        assert everything == b"".join(data)[len(b"".join(data)) - len(everything) :]
        assert bool(everything) == bool(data)  # the newest bytes are always kept
