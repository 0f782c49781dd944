"""Variable interpolation (``${VAR:-default}`` and friends) in Compose values.

The syntax and its corner cases follow compose-go's ``template`` package,
which is what Docker Compose runs, so that a file means the same thing under
both tools:

* ``$$`` is a literal ``$``; a ``$`` not followed by a name, ``$`` or ``{`` is
  kept as written (``$1``, a trailing ``$``).
* ``$NAME`` and ``${NAME}``; names are ``[A-Za-z_][A-Za-z0-9_]*``.
* ``${NAME<op>word}`` with ``:-``/``-`` (default when unset-or-empty / unset),
  ``:+``/``+`` (alternative when set-and-non-empty / set) and ``:?``/``?``
  (error when unset-or-empty / unset). ``word`` is itself interpolated, so
  defaults nest (``${A:-${B:-x}}``).
* The ``word`` of a braced expression runs to the last ``}`` on the same line;
  the expression then ends at the ``}`` that balances its ``{`` (every ``{``
  counts, even one not after a ``$``) and the text after it is interpolated
  on its own. This is how ``${A:-x} and ${B}`` stays two expressions while
  ``${A:-{x}}`` has the default ``{x}``.
* Any other ``${`` is an invalid interpolation format.

Nothing here reads the environment: the caller passes a ``lookup`` function
(``None`` meaning unset) and an ``on_unset`` callback for warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping, MutableSequence
from dataclasses import dataclass
from typing import Any

from composer.errors import InterpolationError, Location, Problem
from composer.schema.tree import Path, loc_of, path_str

__all__ = [
    "Lookup",
    "Substitution",
    "VariableUse",
    "interpolate_tree",
    "substitute",
    "variables_in_tree",
]

Lookup = Callable[[str], str | None]
OnUnset = Callable[[str, Location | None], None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE_HINT = "You may need to escape any $ with another $."


@dataclass(frozen=True, slots=True)
class Substitution:
    """The result of interpolating one string.

    ``unset`` names, in order of use, the variables that were unset and used
    without a default (each becomes ``""`` and deserves a warning).
    """

    value: str
    unset: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VariableUse:
    """One use of a variable in a file, for ``config --variables``.

    ``default`` is the text after ``:-``/``-`` as written (``None`` when there
    is no default), ``required`` is true for ``:?``/``?`` with ``message`` the
    text after it, and ``alternative`` the text after ``:+``/``+``.
    """

    name: str
    default: str | None
    required: bool
    message: str | None
    path: Path
    alternative: str | None = None
    location: Location | None = None


class _InvalidTemplate(Exception):
    """A ``${`` that does not start a valid expression."""


class _MissingRequired(Exception):
    """A ``${VAR:?msg}`` / ``${VAR?msg}`` whose variable is missing."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, reason)
        self.name = name
        self.reason = reason

    def render(self) -> str:
        base = f"required variable {self.name} is missing a value"
        return f"{base}: {self.reason}" if self.reason else base


def substitute(text: str, lookup: Lookup) -> Substitution:
    """Interpolate one string.

    Raises ``InterpolationError`` (without a location; callers that know where
    the string came from add it) for invalid syntax or a missing required
    variable.
    """
    unset: list[str] = []
    try:
        value = _expand(text, lookup, unset)
    except _InvalidTemplate:
        raise InterpolationError(
            f"invalid interpolation format: {text!r}", hint=_ESCAPE_HINT
        ) from None
    except _MissingRequired as exc:
        raise InterpolationError(exc.render()) from None
    return Substitution(value, tuple(unset))


def interpolate_tree(
    tree: Any,
    lookup: Lookup,
    *,
    path: Path = (),
    on_unset: OnUnset | None = None,
) -> Any:
    """Interpolate every string value of ``tree`` in place and return it.

    Keys are never interpolated. Positions and tags stay as they are, since
    the containers are kept. All failures are collected and raised together,
    in document order, as one ``InterpolationError`` whose problems carry the
    value's location and key path. ``on_unset(name, location)`` is called
    for every use of an unset variable without a default.
    """
    problems: list[Problem] = []

    def visit(text: str, where: Path, location: Location | None) -> str:
        if "$" not in text:
            return text
        unset: list[str] = []
        try:
            value = _expand(text, lookup, unset)
        except _InvalidTemplate:
            shown = path_str(where)
            problems.append(
                Problem(
                    f"invalid interpolation format: {text!r}",
                    location,
                    shown,
                    _ESCAPE_HINT,
                )
            )
            return text
        except _MissingRequired as exc:
            problems.append(Problem(exc.render(), location, path_str(where)))
            return text
        if on_unset is not None:
            for name in unset:
                on_unset(name, location)
        return value

    if isinstance(tree, str):
        result = visit(tree, path, None)
    else:
        _walk_strings(tree, path, visit)
        result = tree
    if problems:
        count = len(problems)
        raise InterpolationError(
            f"{count} interpolation problems" if count > 1 else problems[0].message,
            problems=problems,
        )
    return result


def _walk_strings(
    node: Any, path: Path, visit: Callable[[str, Path, Location | None], str]
) -> None:
    """Replace each string value below ``node`` by ``visit(value, path, location)``."""
    if isinstance(node, MutableMapping):
        for key, value in node.items():
            if isinstance(value, str):
                if "$" in value:
                    node[key] = visit(value, (*path, key), loc_of(node, key))
            elif isinstance(value, MutableMapping | MutableSequence):
                _walk_strings(value, (*path, key), visit)
    elif isinstance(node, MutableSequence):
        for index, value in enumerate(node):
            if isinstance(value, str):
                if "$" in value:
                    node[index] = visit(value, (*path, index), loc_of(node, index))
            elif isinstance(value, MutableMapping | MutableSequence):
                _walk_strings(value, (*path, index), visit)


def variables_in_tree(tree: Any, path: Path = ()) -> list[VariableUse]:
    """Every use of a variable in the string values of ``tree``, in document order.

    A name appears once per use; defaults and alternatives are scanned for
    the variables they use in turn. Invalid expressions are skipped (the
    interpolation itself reports them).
    """
    uses: list[VariableUse] = []
    for text, where, location in _strings(tree, path, None):
        if "$" in text:
            uses.extend(_uses_in(text, where, location))
    return uses


def _strings(node: Any, path: Path, location: Location | None) -> Iterator[tuple[str, Path, Any]]:
    if isinstance(node, str):
        yield node, path, location
    elif isinstance(node, MutableMapping):
        for key, value in node.items():
            yield from _strings(value, (*path, key), loc_of(node, key))
    elif isinstance(node, MutableSequence):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index), loc_of(node, index))


# --- the template language ---------------------------------------------------


def _expand(template: str, lookup: Lookup, unset: list[str]) -> str:
    """Interpolate ``template``; raises ``_InvalidTemplate``/``_MissingRequired``."""
    out: list[str] = []
    pos = 0
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            out.append(template[pos:])
            return "".join(out)
        out.append(template[pos:dollar])
        after = template[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            pos = dollar + 2
        elif after == "{":
            expr = _parse_braced(template, dollar)
            out.append(_evaluate(expr, lookup, unset))
            pos = expr.end
        else:
            match = _NAME.match(template, dollar + 1)
            if match is None:
                out.append("$")
                pos = dollar + 1
            else:
                out.append(_value_of(match.group(), lookup, unset))
                pos = match.end()


@dataclass(frozen=True, slots=True)
class _Braced:
    """A parsed ``${...}`` expression: ``rest`` is text after its balanced ``}``."""

    name: str
    op: str
    word: str
    rest: str
    end: int


def _parse_braced(template: str, start: int) -> _Braced:
    """Parse the ``${`` at ``start``; ``end`` is where scanning resumes."""
    match = _NAME.match(template, start + 2)
    if match is None:
        raise _InvalidTemplate
    name = match.group()
    after = match.end()
    char = template[after : after + 1]
    if char == "}":
        return _Braced(name, "", "", "", after + 1)
    if char == ":" and template[after + 1 : after + 2] in ("-", "+", "?"):
        op = template[after : after + 2]
    elif char in ("-", "+", "?") and char:
        op = char
    else:
        raise _InvalidTemplate
    word_start = after + len(op)
    line_end = template.find("\n", word_start)
    if line_end < 0:
        line_end = len(template)
    last = template.rfind("}", word_start, line_end)
    if last < 0:
        raise _InvalidTemplate
    expression = template[start : last + 1]
    close = _balanced_close(expression)
    if close < 0:
        close = len(expression) - 1
    word = expression[word_start - start : close]
    rest = expression[close + 1 :]
    return _Braced(name, op, word, rest, last + 1)


def _balanced_close(expression: str) -> int:
    """Index of the ``}`` balancing the expression's first ``{``, or -1.

    Every ``{`` opens a level and the character right after it is skipped, so
    that ``${`` counts once and a name cannot close it.
    """
    depth = 0
    index = 0
    length = len(expression)
    while index < length:
        char = expression[index]
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        elif char == "{":
            depth += 1
            index += 1
        index += 1
    return -1


def _evaluate(expr: _Braced, lookup: Lookup, unset: list[str]) -> str:
    op = expr.op
    if not op:
        return _value_of(expr.name, lookup, unset)
    value = lookup(expr.name)
    if op in (":-", "-"):
        missing = value is None or (op == ":-" and value == "")
        result = _expand(expr.word, lookup, unset) if missing else (value or "")
    elif op in (":+", "+"):
        present = value is not None and (op == "+" or value != "")
        result = _expand(expr.word, lookup, unset) if present else (value or "")
    else:  # ":?" / "?"
        if value is None or (op == ":?" and value == ""):
            raise _MissingRequired(expr.name, _expand(expr.word, lookup, unset))
        result = value
    if expr.rest:
        result += _expand(expr.rest, lookup, unset)
    return result


def _value_of(name: str, lookup: Lookup, unset: list[str]) -> str:
    value = lookup(name)
    if value is None:
        unset.append(name)
        return ""
    return value


def _uses_in(text: str, path: Path, location: Location | None) -> list[VariableUse]:
    uses: list[VariableUse] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            return uses
        after = text[dollar + 1 : dollar + 2]
        if after == "$":
            pos = dollar + 2
            continue
        if after == "{":
            try:
                expr = _parse_braced(text, dollar)
            except _InvalidTemplate:
                pos = dollar + 2
                continue
            uses.append(_use_of(expr, path, location))
            for nested in (expr.word if expr.op[-1:] in ("-", "+") else "", expr.rest):
                if nested:
                    uses.extend(_uses_in(nested, path, location))
            pos = expr.end
            continue
        match = _NAME.match(text, dollar + 1)
        if match is None:
            pos = dollar + 1
        else:
            uses.append(VariableUse(match.group(), None, False, None, path, None, location))
            pos = match.end()


def _use_of(expr: _Braced, path: Path, location: Location | None) -> VariableUse:
    op = expr.op
    default = expr.word if op in (":-", "-") else None
    alternative = expr.word if op in (":+", "+") else None
    required = op in (":?", "?")
    message = expr.word if required else None
    return VariableUse(expr.name, default, required, message, path, alternative, location)
