"""The export writer's manifest: whatever a manifest file holds, only plain relative names inside
the export directory are taken from it (so a re-export never removes a file elsewhere)."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from procman.export.render import ExportFile
from procman.export.writer import _previous, manifest_name, write_export


@given(st.text())
def test_any_manifest_gives_only_names_inside_the_directory(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        try:
            (root / manifest_name("demo")).write_text(text)
        except (UnicodeEncodeError, ValueError):
            return
        for name in _previous(root, "demo"):
            path = PurePosixPath(name)
            assert name and not path.is_absolute() and ".." not in path.parts


def test_a_manifest_naming_outside_files_removes_none_of_them(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / manifest_name("demo")).write_text(f"../precious\n{outside}\nsub/../../precious\n")
    written = write_export(out, "demo", [ExportFile("demo.target", "x\n")])
    assert written.removed == ()
    assert outside.read_text() == "keep"
