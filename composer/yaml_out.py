"""YAML output in the layout ``docker compose config`` prints.

Docker Compose writes its model with Go's yaml.v3 at an indent of two:
sequences are indented under their key, strings that would read back as
another type are double-quoted, multi-line strings use literal blocks, and
lines are never folded. PyYAML's emitters (pure or libyaml) cannot indent
sequences that way, so this module writes the restricted data the renderer
produces (mappings, sequences, strings, numbers, booleans, null) itself. It is
also faster than PyYAML's pure-Python emitter on large projects.

Mapping order is kept as given: the renderer decides it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

INDENT = 2
# Characters libyaml (and so yaml.v3) refuses to write outside double quotes.
# NEL and the Unicode line/paragraph separators are line breaks to a YAML reader.
# The full pattern takes ~3 ms to compile, so it is compiled (through the
# ``re`` module's cache) only when a non-ASCII string is written; for ASCII
# text it matches exactly what the short pattern matches.
_SPECIAL_UNICODE = (
    "[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\ufeff\u2028\u2029]"
)
_SPECIAL_ASCII = re.compile("[^\n\x20-\x7e]")
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_OLD_BOOLS = frozenset({"y", "Y", "n", "N"})
_NON_STRING = re.compile(
    r"""^(?:
        ~|null|Null|NULL
      | yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
      | [-+]?0b[0-1_]+
      | [-+]?0[0-7_]+
      | [-+]?0o[0-7_]+
      | [-+]?(?:0|[1-9][0-9_]*)
      | [-+]?0x[0-9a-fA-F_]+
      | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
      | [-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
      | [-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
      | [-+]?\.(?:inf|Inf|INF)
      | \.(?:nan|NaN|NAN)
      | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:(?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)?
      | <<|=
    )$""",
    re.VERBOSE,
)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Serialise ``data`` as a YAML document (no ``---`` marker), ending in a newline."""
    writer = _Writer()
    writer.mapping(data, 0)
    return "\n".join(writer.lines) + "\n"


def _reads_as_other_type(text: str) -> bool:
    return text in _OLD_BOOLS or _NON_STRING.match(text) is not None


def _plain_allowed(text: str) -> bool:
    """libyaml's rule for when a one-line string may stand unquoted in block context."""
    first = text[0]
    if first in _FIRST_INDICATORS or text[0] == " " or text[-1] == " ":
        return False
    if first in "-?:" and (len(text) == 1 or text[1] == " "):
        return False
    if text.startswith(("---", "...")):
        return False
    return not (": " in text or text.endswith(":") or " #" in text or "\t" in text)


def scalar(value: Any) -> str:
    """Format a scalar as yaml.v3 would (strings choose their own quoting)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    return _string(str(value))


def _has_special(text: str) -> bool:
    """Whether ``text`` holds a character that only a double-quoted scalar can carry."""
    if text.isascii():
        return _SPECIAL_ASCII.search(text) is not None
    return re.search(_SPECIAL_UNICODE, text) is not None


def _string(text: str) -> str:
    if not text or "\n" in text or _has_special(text) or _reads_as_other_type(text):
        return _double_quoted(text)
    if _plain_allowed(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _double_quoted(text: str) -> str:
    out: list[str] = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F or ch == "\ufeff" or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF, 0x2028, 0x2029):
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)``, which yaml.v3 uses.

    One difference: an exponent always has a mantissa with a point (``1.0e+06``).
    """
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    point = len(text) + exponent  # position of the decimal point
    exp10 = point - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:  # shortest form: Go decides with precision 6
        # Go writes ``1e+06``; the ``.0`` keeps YAML 1.1 readers (PyYAML) reading a float.
        mantissa = text[0] + "." + (text[1:] or "0")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def _literal_ok(text: str) -> bool:
    if _has_special(text) or "\t" in text or "\r" in text:
        return False
    if text[0] in " \n":
        return False
    return all(not line.endswith(" ") for line in text.split("\n"))


def _literal_header(text: str) -> str:
    if not text.endswith("\n"):
        return "|-"
    if text.endswith("\n\n"):
        return "|+"
    return "|"


def _literal_lines(text: str, indent: int) -> list[str]:
    body = text[:-1] if text.endswith("\n") else text
    pad = " " * indent
    return [pad + line if line else "" for line in body.split("\n")]


class _Writer:
    """One dump: the output lines, plus a memo of formatted strings.

    Rendered models repeat the same keys and many values (``environment``,
    ``condition: service_started``), so formatting each distinct string once
    is most of the speed on large projects. The memo lives as long as one dump.
    """

    __slots__ = ("lines", "memo")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.memo: dict[str, str] = {}

    def text(self, value: Any) -> str:
        if type(value) is str:
            known = self.memo.get(value)
            if known is None:
                known = self.memo[value] = _string(value)
            return known
        return scalar(value)

    def key(self, key: Any) -> str:
        text = self.text(key)
        return text if len(text) <= 128 else _double_quoted(str(key))

    def mapping(self, data: Mapping[Any, Any], indent: int) -> None:
        pad = " " * indent
        for key, value in data.items():
            self.value(pad + self.key(key) + ":", value, indent)

    def value(self, head: str, value: Any, indent: int) -> None:
        """Write ``value`` after ``head`` (a ``key:`` or ``-``) whose block sits at ``indent``."""
        lines = self.lines
        if isinstance(value, dict):
            if value:
                lines.append(head)
                self.mapping(value, indent + INDENT)
            else:
                lines.append(head + " {}")
        elif isinstance(value, list | tuple):
            if value:
                lines.append(head)
                self.sequence(value, indent + INDENT)
            else:
                lines.append(head + " []")
        elif type(value) is str and "\n" in value and _literal_ok(value):
            lines.append(f"{head} {_literal_header(value)}")
            lines.extend(_literal_lines(value, indent + INDENT))
        else:
            lines.append(f"{head} {self.text(value)}")

    def sequence(self, items: Sequence[Any], indent: int) -> None:
        pad = " " * indent
        dash = pad + "-"
        lines = self.lines
        inner = indent + INDENT
        for item in items:
            if item and isinstance(item, dict | list | tuple):
                start = len(lines)
                if isinstance(item, dict):
                    self.mapping(item, inner)
                else:
                    self.sequence(item, inner)
                lines[start] = pad + "- " + lines[start][inner:]
            else:
                self.value(dash, item, indent)
