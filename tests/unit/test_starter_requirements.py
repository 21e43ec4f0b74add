"""Dependency names from requirements.txt and pyproject.toml (procman init's detection)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from procman.starter.requirements import (
    names_in_pyproject,
    names_in_requirements,
    normalise,
    requirement_name,
)

FAST = settings(max_examples=300, deadline=None)
NAMES = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True)
SUFFIXES = st.sampled_from(
    ["", ">=21", "==1.0", "[standard]>=0.2", " ; python_version >= '3.11'", "~=2.0  # why"]
)


@FAST
@given(st.lists(st.tuples(NAMES, SUFFIXES), max_size=8))
def test_each_requirement_lines_name_is_found(requirements: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{name}{suffix}" for name, suffix in requirements)
    text = "# the app's requirements\n-r base.txt\n--index-url https://example.org/simple\n" + text
    assert names_in_requirements(text) == {normalise(name) for name, _ in requirements}


@FAST
@given(st.text(max_size=300))
def test_any_text_gives_names_without_raising(text: str) -> None:
    for name in names_in_requirements(text) | names_in_pyproject(text):
        assert name == normalise(name)


def test_names_are_normalised_and_urls_and_options_are_not_names() -> None:
    assert requirement_name("Gunicorn_Extra.Thing>=1") == "gunicorn-extra-thing"
    assert requirement_name("-e .") is None
    assert requirement_name("https://example.org/x.whl") is None
    assert requirement_name("uvicorn[standard] @ https://example.org/u.whl") == "uvicorn"


def test_pyproject_dependencies_of_pep_621_and_poetry() -> None:
    pep621 = '[project]\ndependencies = ["fastapi>=0.110", "uvicorn[standard]"]\n'
    pep621 += '[project.optional-dependencies]\ndev = ["pytest"]\n'
    assert names_in_pyproject(pep621) == {"fastapi", "uvicorn", "pytest"}
    poetry = '[tool.poetry.dependencies]\npython = "^3.11"\nGunicorn = "*"\n'
    poetry += '[tool.poetry.group.dev.dependencies]\npytest = "*"\n'
    assert names_in_pyproject(poetry) == {"python", "gunicorn", "pytest"}
    assert names_in_pyproject("not [toml") == frozenset()
