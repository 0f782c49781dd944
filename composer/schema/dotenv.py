"""The ``.env`` / ``env_file`` formats.

``parse_dotenv`` reads the format Docker Compose uses for ``.env``,
``--env-file`` and ``env_file:`` entries (compose-go's ``dotenv`` package), so
that the same file gives the same variables under both tools:

* ``KEY=VAL``, ``KEY: VAL``, ``export KEY=VAL``; spaces around the separator;
  blank lines and ``#`` comment lines. Key characters are letters, digits and
  ``_ . - [ ]``.
* Unquoted values end at the line end, lose a `` #`` comment and trailing
  whitespace, and are interpolated.
* Single-quoted values are literal (only ``\\'`` is unescaped) and may span
  lines. Double-quoted values may span lines, process ``\\n \\t \\r \\a \\b
  \\f \\v \\\\ \\" \\$`` and ``\\0NNN`` (octal) escapes, then are interpolated.
  After the closing quote, the rest of the line is read as a new statement
  (so a trailing ``# comment`` is skipped).
* A bare ``KEY`` line takes its value from the lookup, and is left out when
  the lookup does not know it.
* ``${VAR}`` in a value is looked up in the given lookup first and then among
  the keys defined earlier in the same file: the environment wins over the
  file, as it does for the project as a whole.

``parse_raw_env`` reads ``env_file`` entries with ``format: raw``, which Docker
Compose reads with ``docker run --env-file`` rules: one ``KEY=VALUE`` per line,
the value taken exactly as written (quotes, ``$`` and trailing spaces kept).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from types import MappingProxyType

from composer.errors import ConfigError, InterpolationError, Location
from composer.schema.interpolate import Lookup, OnUnset, substitute

__all__ = ["parse_dotenv", "parse_raw_env"]

_BOM = "\ufeff"
# Go's strings.TrimLeft(isSpace): blanks that do not end a line.
_BLANK = frozenset("\t\v\f\r \x85\xa0")
# Go's unicode.IsSpace.
_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_CHARS = "".join(sorted(_SPACE))
_KEY_PUNCTUATION = frozenset("_.-[]")
_EXPORT = re.compile(r"export[\t\n\f\r ]+")
_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
_SIMPLE_ESCAPES = MappingProxyType(
    {
        "a": "\a",
        "b": "\b",
        "f": "\f",
        "n": "\n",
        "r": "\r",
        "t": "\t",
        "v": "\v",
        "\\": "\\",
        '"': '"',
    }
)


def parse_dotenv(
    text: str,
    filename: str,
    lookup: Lookup,
    *,
    on_unset: OnUnset | None = None,
) -> dict[str, str]:
    """Parse a ``.env`` file; later keys win. Errors name ``file:line:col``.

    ``on_unset(name, location)`` is called for each use of an unset variable
    without a default in an interpolated value.
    """
    reader = _DotenvReader(text.removeprefix(_BOM), filename, lookup, on_unset)
    return reader.read()


class _DotenvReader:
    """One pass over one file; ``pos`` always points into ``text``."""

    def __init__(self, text: str, filename: str, lookup: Lookup, on_unset: OnUnset | None) -> None:
        self.text = text
        self.file = filename
        self.lookup = lookup
        self.on_unset = on_unset
        self.out: dict[str, str] = {}

    def read(self) -> dict[str, str]:
        text = self.text
        pos = 0
        while True:
            pos = self.statement_start(pos)
            if pos >= len(text):
                return self.out
            key_pos = pos
            key, pos, inherited = self.key(pos)
            if " " in key:
                raise self.error("key cannot contain a space", key_pos, key)
            if inherited:
                value = self.lookup(key)
                if value is not None:
                    self.out[key] = value
                continue
            self.out[key], pos = self.value(key, pos)

    def statement_start(self, pos: int) -> int:
        """Skip whitespace and comment lines; ``len(text)`` at the end."""
        text = self.text
        length = len(text)
        while pos < length:
            char = text[pos]
            if char in _SPACE:
                pos += 1
            elif char == "#":
                newline = text.find("\n", pos)
                pos = length if newline < 0 else newline
            else:
                break
        return pos

    def key(self, pos: int) -> tuple[str, int, bool]:
        """Read a key; returns it, where its value starts, and whether it is bare."""
        text = self.text
        length = len(text)
        if _EXPORT.match(text, pos):
            pos += len("export")
            while pos < length and text[pos] in _BLANK:
                pos += 1
        start = index = pos
        inherited = True
        end = length
        while index < length:
            char = text[index]
            if char in "=:\n":
                inherited = char == "\n"
                end = index
                break
            if not (char in _BLANK or char in _KEY_PUNCTUATION or _is_letter_or_number(char)):
                line = text[start:].split("\n", 1)[0]
                raise self.error(f"unexpected character {char!r} in variable name {line!r}", index)
            index += 1
        key = text[start:end].rstrip(_SPACE_CHARS)
        value_start = min(end + 1, length)
        while value_start < length and text[value_start] in _BLANK:
            value_start += 1
        return key, value_start, inherited

    def value(self, key: str, pos: int) -> tuple[str, int]:
        """Read the value starting at ``pos``; returns it and where to go on."""
        text = self.text
        quote = text[pos : pos + 1]
        if quote not in ("'", '"'):
            newline = text.find("\n", pos)
            end = len(text) if newline < 0 else newline
            raw = text[pos:end].split(" #", 1)[0].rstrip(_SPACE_CHARS)
            return self.interpolate(raw, key, pos), end + 1

        chars: list[str] = []
        escaped = False
        index = pos + 1
        length = len(text)
        while index < length:
            char = text[index]
            index += 1
            if char != quote:
                if not escaped and char == "\\":
                    escaped = True
                    continue
                if escaped:
                    escaped = False
                    chars.append("\\")
                chars.append(char)
                continue
            if escaped:  # an escaped quote belongs to the value
                escaped = False
                chars.append(char)
                continue
            value = "".join(chars)
            if quote == '"':
                value = self.interpolate(_expand_escapes(value), key, pos)
            return value, index
        line = text[pos:].split("\n", 1)[0]
        raise self.error(f"unterminated quoted value {line}", pos, key)

    def interpolate(self, raw: str, key: str, pos: int) -> str:
        if "$" not in raw:
            return raw
        out = self.out
        lookup = self.lookup

        def resolve(name: str) -> str | None:
            value = lookup(name)
            return value if value is not None else out.get(name)

        try:
            result = substitute(raw, resolve)
        except InterpolationError as exc:
            raise InterpolationError(
                exc.message, exc.hint, location=self.location(pos), path=key
            ) from None
        if self.on_unset is not None:
            for name in result.unset:
                self.on_unset(name, self.location(pos))
        return result.value

    def location(self, pos: int) -> Location:
        return _location(self.text, self.file, pos)

    def error(self, message: str, pos: int, key: str = "") -> ConfigError:
        return ConfigError(message, location=self.location(pos), path=key)


def _is_letter_or_number(char: str) -> bool:
    if char.isascii():
        return char.isalnum()
    return unicodedata.category(char)[0] in ("L", "N")


def _expand_escapes(value: str) -> str:
    """Process the escapes Docker Compose accepts in double-quoted values.

    ``\\$`` becomes ``$$`` so that interpolation leaves a literal ``$``;
    ``\\0NNN`` is an octal byte; unknown escapes (``\\x07``, ``\\u12e4``) stay
    as written.
    """

    def replace(match: re.Match[str]) -> str:
        escape = match.group()
        if escape == "\\$":
            return "$$"
        if escape.startswith("\\0"):
            digits = escape[2:]
            if len(digits) == 3 and all("0" <= d <= "7" for d in digits):
                code = int(digits, 8)
                if code <= 0xFF:
                    return chr(code)
            return escape
        return _SIMPLE_ESCAPES[escape[1]]

    return _ESCAPE.sub(replace, value)


def parse_raw_env(
    text: str,
    filename: str,
    lookup: Callable[[str], str | None] | None = None,
) -> dict[str, str]:
    """Parse an ``env_file`` entry with ``format: raw`` (``docker run --env-file``).

    Each non-blank, non-comment line is ``KEY=VALUE`` with the value kept
    exactly as written, or a bare ``KEY`` taken from ``lookup`` (left out
    when unknown or when there is no lookup). Keys may not hold blanks.
    """
    out: dict[str, str] = {}
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        if number == 1:
            line = line.removeprefix(_BOM)
        stripped = line.lstrip(_SPACE_CHARS)
        if not stripped or stripped.startswith("#"):
            continue
        column = len(line) - len(stripped) + 1
        key, has_value, value = stripped.partition("=")
        if not key:
            raise ConfigError(
                f"no variable name on line {stripped!r}",
                location=Location(filename, number, column),
            )
        if " " in key or "\t" in key:
            raise ConfigError(
                f"variable {key!r} contains whitespaces",
                location=Location(filename, number, column),
                path=key,
            )
        if has_value:
            out[key] = value
        elif lookup is not None:
            found = lookup(key)
            if found is not None:
                out[key] = found
    return out


def _location(text: str, filename: str, pos: int) -> Location:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Location(filename, line, column)
