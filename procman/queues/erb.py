"""The small part of ERB that ``sidekiq.yml`` files use, evaluated before the YAML is read.

Sidekiq runs its config file through Ruby's ERB; real files use it to read the environment:

    :concurrency: <%= ENV.fetch("SIDEKIQ_CONCURRENCY", 5) %>
    :concurrency: <%= ENV.fetch("SIDEKIQ_CONCURRENCY") { 5 }.to_i %>
    :concurrency: <%= ENV["SIDEKIQ_CONCURRENCY"] || 5 %>

The subset, in an output tag ``<%= ... %>`` (``-%>`` too) with Ruby's meaning:

- ``ENV["X"]`` (or ``ENV['X']``): the variable, or nil (an empty output) when it is unset;
- ``ENV.fetch("X")``: the variable; unset is an error, as Ruby's ``KeyError`` stops Sidekiq;
- ``ENV.fetch("X", default)`` and ``ENV.fetch("X") { default }``: the default when unset;
- literals: integers (``5``, ``-1``), strings (``"low"``, ``'low'``), ``nil``, ``true``,
  ``false``;
- ``a || b``: ``a`` unless it is nil or false (an empty string counts as set, as in Ruby);
- ``.to_i`` and ``.to_s`` after any of these, and parentheses.

``<%# comment %>`` gives nothing and ``<%%`` gives ``<%``. Anything else (``<% if ... %>``,
method calls, ``Rails.env``) is refused with the line and the expression, rather than leaving
``<%= ... %>`` in the text for YAML to read as a value. Pure: the environment is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from procman.errors import QueueConfigError, excerpt

Value = str | int | bool | None

_TAG = re.compile(r"<%(?P<kind>=|#|-)?(?P<body>.*?)(?P<trim>-?)%>", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<integer>-?[0-9][0-9_]*)
      | (?P<op>\|\||\(|\)|\[|\]|\{|\}|,|\.)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*[?!]?)
    )""",
    re.VERBOSE,
)
SUPPORTED = 'ENV["X"], ENV.fetch("X", default), ENV.fetch("X") { default }, literals, || and .to_i'


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


class _Unsupported(Exception):
    """The expression is outside the subset; the message says which part."""


class _Unset(Exception):
    """``ENV.fetch("X")`` without a default, and X is unset."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def render(text: str, env: Mapping[str, str], path: str) -> str:
    """``text`` with each ERB tag replaced by its value; QueueConfigError naming the line and
    the expression when a tag is outside the subset or an ``ENV.fetch`` finds nothing."""
    if "<%" not in text:
        return text
    out: list[str] = []
    position = 0
    while (start := text.find("<%", position)) != -1:
        out.append(text[position:start])
        line = text.count("\n", 0, start) + 1
        if text.startswith("<%%", start):  # a literal '<%'
            out.append("<%")
            position = start + 3
            continue
        match = _TAG.match(text, start)
        if match is None:
            raise _refusal(path, line, text[start:], "the tag has no closing %>")
        position = match.end()
        kind = match["kind"]
        if kind != "#":
            if kind != "=":
                raise _refusal(path, line, match[0], "only output tags <%= ... %> are read")
            value = evaluate(match["body"], env, path=path, line=line, shown=match[0])
            out.append(_output(value))
        if match["trim"] and text.startswith("\n", position):
            position += 1  # '-%>' eats the newline after the tag (Sidekiq's trim_mode "-")
    out.append(text[position:])
    return "".join(out)


def evaluate(
    expression: str, env: Mapping[str, str], *, path: str = "", line: int = 0, shown: str = ""
) -> Value:
    """The value of one tag's expression (the text between ``<%=`` and ``%>``)."""
    shown = shown or f"<%= {expression.strip()} %>"
    try:
        tokens = _tokens(expression)
        parser = _Parser(tokens, env)
        value = parser.expression()
        if parser.position != len(tokens):
            raise _Unsupported(f"unexpected {tokens[parser.position].text!r}")
        return value
    except _Unsupported as problem:
        raise _refusal(path, line, shown, str(problem)) from None
    except _Unset as unset:
        raise QueueConfigError(
            f"{path}:{line}: {excerpt(shown, 80)}: {unset.name} is not set",
            f'set {unset.name}, or give a default: ENV.fetch("{unset.name}", 5)',
        ) from None


def _refusal(path: str, line: int, shown: str, why: str) -> QueueConfigError:
    return QueueConfigError(
        f"{path}:{line}: cannot evaluate {excerpt(' '.join(shown.split()), 80)}: {why}",
        f"procman evaluates only {SUPPORTED}: write the value itself",
    )


def _output(value: Value) -> str:
    """What Ruby's ``to_s`` prints into the text: nil is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tokens(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    stripped = expression.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:  # the parser says what it expected there
            tokens.append(_Token("unknown", excerpt(stripped[position:].strip(), 20)))
            break
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match[kind]))
        position = match.end()
    if not tokens:
        raise _Unsupported("the tag is empty")
    return tokens


class _Parser:
    """expression := term ('||' term)* ; term := atom ('.to_i' | '.to_s')* ;
    atom := literal | ENV[string] | ENV.fetch(string [, expression]) [{ expression }] |
    '(' expression ')'."""

    def __init__(self, tokens: list[_Token], env: Mapping[str, str]) -> None:
        self.tokens = tokens
        self.env = env
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise _Unsupported(f"expected {text or kind} at the end")
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise _Unsupported(f"expected {text or kind}, got {token.text!r}")
        self.position += 1
        return token

    def expression(self) -> Value:
        value = self.term()
        while (token := self.peek()) is not None and token.text == "||":
            self.position += 1
            right = self.term()  # both sides are read, so a bad right side is always refused
            value = value if value is not None and value is not False else right
        return value

    def term(self) -> Value:
        value = self.atom()
        while (token := self.peek()) is not None and token.text == ".":
            self.position += 1
            method = self.take(kind="name").text
            if method == "to_i":
                value = _to_i(value)
            elif method == "to_s":
                value = _output(value)
            else:
                raise _Unsupported(f"the method .{method} is outside the subset")
        return value

    def atom(self) -> Value:
        token = self.take()
        if token.kind == "integer":
            return int(token.text.replace("_", ""))
        if token.kind == "string":
            return _string(token.text)
        if token.text == "(":
            value = self.expression()
            self.take(")")
            return value
        if token.kind == "name" and token.text in ("nil", "true", "false"):
            return {"nil": None, "true": True, "false": False}[token.text]
        if token.text == "ENV":
            return self.env_lookup()
        if token.kind == "unknown":
            raise _Unsupported(f"cannot read {token.text!r}")
        raise _Unsupported(f"{token.text!r} is outside the subset")

    def env_lookup(self) -> Value:
        token = self.take()
        if token.text == "[":
            name = self.variable()
            self.take("]")
            return self.env.get(name)
        if token.text != "." or self.take(kind="name").text != "fetch":
            raise _Unsupported("ENV is read only as ENV[...] or ENV.fetch(...)")
        self.take("(")
        name = self.variable()
        default: tuple[Value] | None = None
        if (following := self.peek()) is not None and following.text == ",":
            self.position += 1
            default = (self.expression(),)
        self.take(")")
        if (following := self.peek()) is not None and following.text == "{":
            self.position += 1
            block = self.expression()
            self.take("}")
            default = default if default is not None else (block,)
        if name in self.env:
            return self.env[name]
        if default is None:
            raise _Unset(name)
        return default[0]

    def variable(self) -> str:
        value = _string(self.take(kind="string").text)
        if not value:
            raise _Unsupported("an empty variable name")
        return value


def _string(token: str) -> str:
    body = token[1:-1]
    if token[0] == "'":
        return body.replace("\\'", "'").replace("\\\\", "\\")
    if "#{" in body:
        raise _Unsupported("string interpolation #{...}")
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), body, flags=re.DOTALL)


def _to_i(value: Value) -> int:
    """Ruby's ``to_i``: the leading integer of a string (0 when none); nil is 0."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise _Unsupported(f".to_i on {str(value).lower()}")
        return 0
    if isinstance(value, int):
        return value
    match = re.match(r"\s*([-+]?[0-9][0-9_]*)", value)
    return int(match[1].replace("_", "")) if match else 0
