"""Reading procman's YAML config files (``queues.yml``, ``procman.yml``) with precise errors.

The pieces every such validator shares: a safe loader that refuses duplicate keys, mappings that
accept known keys only (suggesting the closest known one), and short descriptions of values for
messages. Each error names the file and the key path (``procman.yml: environments.staging``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from procman.errors import ConfigError, ProcmanError, excerpt


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # '<<: *defaults' then a key overriding one of them is not a duplicate
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: construct_mapping below reports it with its position
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str, path: str, error: type[ConfigError]) -> Any:
    """The YAML document in ``text`` (safe types only); ``error`` with the line and column."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        what = problem.problem or problem.context or "cannot parse"
        hint = "keep one of them" if what.startswith("duplicate key") else "fix the YAML there"
        raise error(f"{where}: invalid YAML: {what}", hint) from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: invalid YAML: {excerpt(str(problem))}") from None
    except RecursionError:
        raise error(f"{path}: invalid YAML: nested too deeply") from None


def known_keys(
    value: Any,
    path: str,
    key_path: str,
    known: Sequence[str],
    errors: list[ProcmanError],
    error: type[ConfigError],
    *,
    key_hints: Mapping[str, str] | None = None,
    colons: bool = False,
) -> dict[str, Any] | None:
    """``value`` as a mapping of known keys only; None (and an error noted) when it is not a
    mapping. With ``colons``, a leading ':' (Sidekiq's spelling) is removed from each key."""
    where = f"{path}: {key_path}" if key_path else path
    if not isinstance(value, dict):
        what = key_path or "the file"
        errors.append(
            error(
                f"{where}: expected a mapping of keys to values, got {describe(value)}",
                f"write {what} as 'key: value' lines; known keys: {', '.join(known)}",
            )
        )
        return None
    result: dict[str, Any] = {}
    for raw_key, item in value.items():
        key = raw_key
        if colons and isinstance(raw_key, str) and raw_key.startswith(":"):
            key = raw_key[1:]
        child = f"{key_path}.{key}" if key_path else str(key)
        if not isinstance(key, str) or key not in known:
            errors.append(unknown_key(path, key_path, raw_key, known, error, key_hints))
            continue
        if key in result:
            errors.append(
                error(
                    f"{path}: {child}: given twice (as '{key}' and ':{key}')",
                    "keep one spelling",
                )
            )
            continue
        result[key] = item
    return result


def unknown_key(
    path: str,
    key_path: str,
    key: Any,
    known: Sequence[str],
    error: type[ConfigError],
    key_hints: Mapping[str, str] | None = None,
) -> ConfigError:
    """``unknown key 'x'``, with the closest known key (or a neighbouring tool's name for it)."""
    shown = key if isinstance(key, str) else repr(key)
    where = f"{path}: {key_path}" if key_path else path
    bare = shown[1:] if shown.startswith(":") else shown
    suggestion = (key_hints or {}).get(bare.lower()) if isinstance(key, str) else None
    if suggestion not in known:
        close = difflib.get_close_matches(bare.lower(), known, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    hint = (
        f"did you mean '{suggestion}'?"
        if suggestion
        else f"known keys{f' of {key_path}' if key_path else ''}: {', '.join(known)}"
    )
    return error(f"{where}: unknown key '{excerpt(shown)}'", hint)


def describe(value: Any) -> str:
    """A value as a message quotes it: ``the string 'x'``, ``3``, ``a list``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {excerpt(value, 40)!r}"
    if isinstance(value, int | float):
        return excerpt(repr(value), 40)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def is_int(value: Any) -> bool:
    """An integer, and not a bool (YAML's ``true`` is a Python int)."""
    return isinstance(value, int) and not isinstance(value, bool)


class KeyPathChecker:
    """The base of a config file's validator: it notes each problem, prefixed by the file and the
    key path (``procman.yml: environments.staging.path: ...``), in ``errors`` and goes on, so that
    independent problems are reported together (``raise_collected``). A file's validator
    subclasses it with one method per kind of value."""

    def __init__(
        self,
        path: str,
        errors: list[ProcmanError],
        error: type[ConfigError],
        *,
        key_hints: Mapping[str, str] | None = None,
        colons: bool = False,
    ) -> None:
        self.path = path
        self.errors = errors
        self.error = error
        self.key_hints = key_hints
        """Keys of neighbouring tools and the name of the same thing here, for unknown keys."""
        self.colons = colons
        """Whether keys may carry a leading ':' (Sidekiq's spelling)."""

    def fail(self, key_path: str, message: str, hint: str | None = None) -> None:
        self.errors.append(self.error(f"{self.path}: {key_path}: {message}", hint))

    def mapping(self, key_path: str, value: Any, known: Sequence[str]) -> dict[str, Any] | None:
        """``value`` as a mapping of ``known`` keys (see ``known_keys``); None when it is not."""
        return known_keys(
            value,
            self.path,
            key_path,
            known,
            self.errors,
            self.error,
            key_hints=self.key_hints,
            colons=self.colons,
        )

    def flag(self, key_path: str, value: Any, default: bool) -> bool:
        """A true/false value (``default`` when absent)."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key_path, f"must be true or false (got {describe(value)})")
            return default
        return value
