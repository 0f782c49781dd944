"""Dockerfile word processing: variable substitution, quotes and word splitting.

Docker expands ``$v``, ``${v}``, ``${v:-x}``, ``${v:+x}`` (and the ``-``/``+``
forms without the colon) in the arguments of ADD, COPY, ENV, EXPOSE, FROM,
LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ONBUILD, together with quote
removal: single quotes are literal, double quotes still expand, and the
escape character (``\\`` or the ``# escape=`` directive's) takes the next
character literally. Doing both in one pass, as Docker's shell lexer does,
is what makes ``ENV a="$b c"`` and ``'$literal'`` come out right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


class WordError(ValueError):
    """A malformed word (unterminated quote or ``${``)."""


@dataclass
class _Lexer:
    text: str
    env: Mapping[str, str] | None
    escape: str
    pos: int = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def words(self, split: bool) -> list[str]:
        """Process the whole text; split on unquoted blanks when ``split``."""
        out: list[str] = []
        cur: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.take()
            if split and ch in " \t\r\n":
                if started:
                    out.append("".join(cur))
                    cur, started = [], False
                continue
            started = True
            if ch == self.escape:
                nxt = self.take()
                cur.append(nxt if nxt else ch)
            elif ch == "'":
                cur.append(self._single())
            elif ch == '"':
                cur.append(self._double())
            elif ch == "$" and self.env is not None:
                cur.append(self._dollar())
            else:
                cur.append(ch)
        if started:
            out.append("".join(cur))
        return out

    def _single(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise WordError("unterminated single quote")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def _double(self) -> str:
        out: list[str] = []
        while True:
            ch = self.take()
            if ch == "":
                raise WordError("unterminated double quote")
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self.peek() in ('"', self.escape, "$"):
                out.append(self.take())
            elif ch == "$" and self.env is not None:
                out.append(self._dollar())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        assert self.env is not None
        if self.peek() == "{":
            self.pos += 1
            name = self._name()
            if not name:
                raise WordError("bad substitution: '${' must be followed by a name")
            op = ""
            if self.peek() == ":" or self.peek() in "-+?":
                op = self.take()
                if op == ":":
                    op += self.take()
            word = self._until_brace()
            if self.take() != "}":
                raise WordError(f"missing '}}' in ${{{name}")
            value = self.env.get(name)
            return _apply(op, name, value, word, self._sub)
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _until_brace(self) -> str:
        depth = 0
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0:
                    break
                depth -= 1
            self.pos += 1
        return self.text[start : self.pos]

    def _sub(self, word: str) -> str:
        return "".join(_Lexer(word, self.env, self.escape).words(split=False))


def _apply(op: str, name: str, value: str | None, word: str, sub: Callable[[str], str]) -> str:
    if op == "":
        return value or ""
    if op == ":-":
        return value if value else sub(word)
    if op == "-":
        return value if value is not None else sub(word)
    if op == ":+":
        return sub(word) if value else ""
    if op == "+":
        return sub(word) if value is not None else ""
    if op in (":?", "?"):
        if (op == ":?" and not value) or value is None:
            raise WordError(f"{name}: {sub(word) or 'is not set'}")
        return value
    raise WordError(f"unsupported modifier {op!r} in ${{{name}}}")


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` with variables substituted and quotes removed, as one word."""
    return "".join(_Lexer(text, env, escape).words(split=False))


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` substituted and split into words on unquoted blanks."""
    return _Lexer(text, env, escape).words(split=True)


def split_raw(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted blanks keeping quotes and ``$`` as written (for ``k=v`` lists)."""
    out: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur.append(ch)
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in " \t\r\n":
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if quote:
        raise WordError(f"unterminated {quote} quote")
    if cur:
        out.append("".join(cur))
    return out
