from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from procman import templating
from procman.templating import TemplateError, load_templates

ROOT = Path(__file__).resolve().parents[2]


def test_packaged_templates_are_the_source_trees_top_level_folder() -> None:
    assert templating.packaged_templates_dir() == ROOT / "templates"


def test_an_override_directory_replaces_one_template_and_the_rest_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "own"
    (own / "kind").mkdir(parents=True)
    (own / "kind" / "a.j2").write_text("own a {{ x }}\n")
    (own / "kind" / "b.j2").write_text("own b {{ x }}\n")
    monkeypatch.setattr(templating, "packaged_templates_dir", lambda: own)
    override = tmp_path / "override"
    (override / "kind").mkdir(parents=True)
    (override / "kind" / "a.j2").write_text("mine {{ x }}\n")

    templates = load_templates(override)

    assert templates.render("kind/a.j2", {"x": 1}) == "mine 1\n"
    assert templates.render("kind/b.j2", {"x": 2}) == "own b 2\n"
    assert templates.source_of("kind/b.j2") == own / "kind" / "b.j2"


def test_a_missing_override_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "nope")


def test_errors_name_the_template_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("line one\n{% if %}\n")
    (tmp_path / "undefined.j2").write_text("one\ntwo\n{{ missing.attribute }}\n")
    templates = load_templates(tmp_path)

    with pytest.raises(TemplateError) as syntax:
        templates.render("bad.j2", {})
    assert f"{tmp_path / 'bad.j2'}:2:" in str(syntax.value)

    with pytest.raises(TemplateError) as undefined:
        templates.render("undefined.j2", {})
    assert f"{tmp_path / 'undefined.j2'}:3:" in str(undefined.value)
    assert "missing" in str(undefined.value)

    with pytest.raises(TemplateError, match=r"no template absent\.j2"):
        templates.render("absent.j2", {})


def test_html_templates_escape_and_text_templates_do_not(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ v }}")
    (tmp_path / "unit.service.j2").write_text("{{ v }}")
    templates = load_templates(tmp_path)
    assert templates.render("page.html", {"v": "<b>"}) == "&lt;b&gt;"
    assert templates.render("unit.service.j2", {"v": "<b>"}) == "<b>"


def test_the_package_list_names_every_package_in_the_tree() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "procman").rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to pyproject.toml's packages"
    assert "procman.templates" in listed
