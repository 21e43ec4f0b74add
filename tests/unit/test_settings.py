"""procman.settings: where the app is, its base port and the environment its children get."""

from __future__ import annotations

from pathlib import Path

import pytest

from procman.errors import ConfigError, EnvFileError, UsageError
from procman.settings import AppOptions, load_app, load_procfile_for


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text("web: serve\n")
    return tmp_path


def test_defaults(root: Path) -> None:
    app = load_app(AppOptions(root=root), {})
    assert app.root == root.resolve()
    assert app.procfile_path == root / "Procfile"
    assert app.env_files == ()
    assert app.env == {}
    assert app.base_port == 5000
    assert load_procfile_for(app).names == ["web"]


def test_root_defaults_to_the_procfiles_directory(root: Path) -> None:
    app = load_app(AppOptions(procfile=root / "Procfile"), {})
    assert app.root == root.resolve()


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^the root option: .* is not a directory"):
        load_app(AppOptions(root=tmp_path / "nowhere"), {})


def test_default_env_file_is_optional_and_loaded_when_present(root: Path) -> None:
    assert load_app(AppOptions(root=root), {}).env == {}
    (root / ".env").write_text("A=1\n")
    app = load_app(AppOptions(root=root), {})
    assert app.env_files == (root.resolve() / ".env",)
    assert app.env == {"A": "1"}


def test_given_env_files_replace_the_default(root: Path) -> None:
    (root / ".env").write_text("A=default\n")
    (root / "other.env").write_text("B=other\n")
    app = load_app(AppOptions(root=root, env_files=(root / "other.env",)), {})
    assert app.env == {"B": "other"}


def test_missing_env_file_given_with_e_is_an_error(root: Path) -> None:
    with pytest.raises(EnvFileError, match="no such env file"):
        load_app(AppOptions(root=root, env_files=(root / "missing.env",)), {})


# --- base port -------------------------------------------------------------------------------


def test_port_option_beats_env_file_and_shell(root: Path) -> None:
    (root / ".env").write_text("PORT=6000\n")
    assert load_app(AppOptions(root=root, port=7000), {"PORT": "8000"}).base_port == 7000


def test_env_file_port_beats_shell(root: Path) -> None:
    (root / ".env").write_text("PORT=6000\n")
    assert load_app(AppOptions(root=root), {"PORT": "8000"}).base_port == 6000


def test_shell_port(root: Path) -> None:
    assert load_app(AppOptions(root=root), {"PORT": "8000"}).base_port == 8000


def test_empty_port_is_ignored(root: Path) -> None:
    (root / ".env").write_text("PORT=\n")
    assert load_app(AppOptions(root=root), {"PORT": ""}).base_port == 5000


def test_port_with_surrounding_spaces(root: Path) -> None:
    assert load_app(AppOptions(root=root), {"PORT": " 8000 "}).base_port == 8000


def test_bad_port_option(root: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_app(AppOptions(root=root, port=70000), {})
    assert str(caught.value) == (
        "the port option: port 70000 is out of range (use a port from 1 to 65535)"
    )


def test_bad_env_file_port_names_the_file(root: Path) -> None:
    (root / ".env").write_text("PORT=abc\n")
    with pytest.raises(ConfigError) as caught:
        load_app(AppOptions(root=root), {"PORT": "8000"})
    assert str(caught.value) == (
        f"PORT='abc' from {root.resolve() / '.env'} is not a port number "
        "(set PORT to a number from 1 to 65535, or pass the port option)"
    )


def test_out_of_range_env_file_port_names_the_file(root: Path) -> None:
    (root / ".env").write_text("PORT=99999\n")
    with pytest.raises(ConfigError, match=r"^PORT from .*\.env: port 99999 is out of range"):
        load_app(AppOptions(root=root), {})


def test_bad_shell_port_names_the_environment(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"^PORT='http' from the environment is not a port"):
        load_app(AppOptions(root=root), {"PORT": "http"})
    with pytest.raises(ConfigError, match=r"^PORT from the environment: port 0 is out of range"):
        load_app(AppOptions(root=root), {"PORT": "0"})


def test_non_ascii_digits_are_not_a_port(root: Path) -> None:
    with pytest.raises(ConfigError, match="is not a port number"):
        load_app(AppOptions(root=root), {"PORT": "\u0665\u0660\u0660\u0660"})


def test_huge_port_is_an_error_not_a_crash(root: Path) -> None:
    # int() refuses strings over 4300 digits with ValueError; that must not escape.
    with pytest.raises(ConfigError, match=r"^PORT from the environment: port 9+\.\.\. is out"):
        load_app(AppOptions(root=root), {"PORT": "9" * 5000})


# --- process environment ---------------------------------------------------------------------


def test_process_env_precedence(root: Path) -> None:
    (root / ".env").write_text("A=file\nB=file\nPORT=6000\n")
    app = load_app(AppOptions(root=root), {"A": "shell", "C": "shell", "PORT": "1"})
    env = app.process_env({"PORT": "6100", "PS": "worker.1", "B": "extra"})
    assert env == {
        "A": "file",
        "B": "extra",
        "C": "shell",
        "PORT": "6100",
        "PS": "worker.1",
        "PYTHONUNBUFFERED": "1",
    }


def test_pythonunbuffered_is_not_overridden(root: Path) -> None:
    app = load_app(AppOptions(root=root), {"PYTHONUNBUFFERED": ""})
    assert app.process_env()["PYTHONUNBUFFERED"] == ""
    (root / ".env").write_text("PYTHONUNBUFFERED=0\n")
    app = load_app(AppOptions(root=root), {})
    assert app.process_env()["PYTHONUNBUFFERED"] == "0"


def test_pythonunbuffered_can_be_left_out(root: Path) -> None:
    app = load_app(AppOptions(root=root), {"A": "1"})
    assert app.process_env(unbuffered=False) == {"A": "1"}


def test_shell_defaults_to_os_environ(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMAN_UNIT_MARKER", "here")
    monkeypatch.setenv("PORT", "7777")
    app = load_app(AppOptions(root=root))
    assert app.process_env()["PROCMAN_UNIT_MARKER"] == "here"
    assert app.base_port == 7777
