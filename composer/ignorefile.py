"""``.dockerignore`` files: reading them and matching paths as Docker does.

Used by the image builders (what goes into a build context) and by watch
(which changes in a build context matter). The semantics follow Docker's
``patternmatcher`` and ``ignorefile`` packages, so that a context ships the
same files with composer as with ``docker build``:

* one pattern a line; a line starting with ``#`` is a comment; surrounding
  white space is dropped; ``!`` negates (re-includes) a pattern;
* each pattern is cleaned like Go's ``filepath.Clean`` (``./a//b/`` is
  ``a/b``) and a leading ``/`` is dropped: patterns are relative to the
  context root, never to a subdirectory;
* ``*`` and ``?`` never cross a ``/``; ``**`` crosses any number of
  directories (``**/x``, ``a/**/b``, ``a/**``); ``[...]`` classes and ``\\``
  escapes as in ``filepath.Match``;
* a pattern matches a path when it matches the path itself or any of its
  parent directories (``build`` excludes ``build/x/y``);
* the last pattern that matches decides (``!`` after a broader exclusion
  brings a file back).

``<Dockerfile>.dockerignore`` next to the Dockerfile is preferred over the
context's ``.dockerignore``, as BuildKit does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import ConfigError

__all__ = ["IgnoreFile", "IgnorePattern", "clean_pattern", "parse_lines"]


def _clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a slash-separated path."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def clean_pattern(pattern: str) -> str:
    """A pattern as Docker stores it: cleaned, with a leading ``/`` dropped."""
    cleaned = _clean(pattern)
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


_ESCAPE = frozenset(".+()|{}$")


def _segment_regex(pattern: str) -> str:
    """The regular expression of a pattern (Docker's ``compile``), unanchored."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append("\\\\")
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class IgnorePattern:
    """One cleaned pattern; ``exclusion`` is true for a ``!`` line (it re-includes)."""

    text: str
    exclusion: bool
    regex: re.Pattern[str] = field(repr=False, compare=False)
    segments: tuple[str, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, line: str) -> IgnorePattern:
        exclusion = line.startswith("!")
        text = clean_pattern(line[1:].strip() if exclusion else line)
        try:
            regex = re.compile("^" + _segment_regex(text) + "$", re.DOTALL)
        except re.error as error:
            raise ConfigError(
                f"invalid ignore pattern {line!r}: {error}",
                hint="patterns use .dockerignore syntax: *, ?, **, [a-z], \\ escapes",
            ) from None
        return cls(text, exclusion, regex, tuple(text.split("/")))

    def match(self, relpath: str) -> bool:
        """Whether the pattern matches ``relpath`` or one of its parent directories."""
        if self.regex.match(relpath):
            return True
        parts = relpath.split("/")
        return any(self.regex.match("/".join(parts[:i])) for i in range(1, len(parts)))

    def may_match_below(self, parts: Sequence[str]) -> bool:
        """Whether something strictly inside the directory ``parts`` could match."""
        for index, segment in enumerate(self.segments):
            if "**" in segment:
                return True
            if index >= len(parts):
                return True
            if not re.fullmatch(_segment_regex(segment), parts[index], re.DOTALL):
                return False
        return False


def parse_lines(lines: Iterable[str]) -> list[str]:
    """The pattern lines of a ``.dockerignore`` text: comments and blanks dropped."""
    out: list[str] = []
    for number, raw in enumerate(lines):
        line = raw.lstrip("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if line:
            out.append(line)
    return out


@dataclass(frozen=True)
class IgnoreFile:
    """An ordered list of patterns; the last one that matches a path decides.

    Paths given to the methods are relative to the root the patterns are
    relative to (the build context, or a watch rule's path), with ``/``
    separators; a leading ``./`` or ``/`` is tolerated.
    """

    patterns: tuple[IgnorePattern, ...] = ()
    source: Path | None = None

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], source: Path | None = None) -> IgnoreFile:
        return cls(tuple(IgnorePattern.parse(p) for p in parse_lines(patterns)), source)

    @classmethod
    def load(cls, context_dir: Path | str, dockerfile: str | None = None) -> IgnoreFile:
        """The ignore file of a build context (empty when there is none).

        ``dockerfile`` (relative to the context, or absolute) selects a
        ``<Dockerfile>.dockerignore`` beside it, which wins over
        ``<context>/.dockerignore``.
        """
        context = Path(context_dir)
        candidates: list[Path] = []
        if dockerfile:
            path = Path(dockerfile)
            if not path.is_absolute():
                path = context / path
            candidates.append(path.with_name(path.name + ".dockerignore"))
        candidates.append(context / ".dockerignore")
        for candidate in candidates:
            try:
                text = candidate.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError as error:
                raise ConfigError(
                    f"cannot read {candidate}: {error.strerror}",
                    hint="check the file's permissions",
                ) from None
            return cls.from_patterns(text.splitlines(), candidate)
        return cls()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    @property
    def has_exclusions(self) -> bool:
        """Whether any ``!`` pattern can bring back something a broader pattern excluded."""
        return any(p.exclusion for p in self.patterns)

    def matches(self, relpath: str) -> bool:
        """Whether ``relpath`` is excluded (Docker's ``MatchesOrParentMatches``)."""
        path = _relative(relpath)
        if path == ".":
            return False
        matched = False
        for pattern in self.patterns:
            # An exclusion can only undo a match, an inclusion only make one.
            if pattern.exclusion != matched:
                continue
            if pattern.match(path):
                matched = not pattern.exclusion
        return matched

    def includes_dir_children(self, relpath: str) -> bool:
        """Whether a walk must enter the directory ``relpath``.

        False only when the directory is excluded and no ``!`` pattern could
        bring back anything inside it, so that a walk can prune it (a
        ``node_modules`` of 100,000 files is never listed).
        """
        path = _relative(relpath)
        if path == "." or not self.matches(path):
            return True
        parts = path.split("/")
        return any(p.exclusion and p.may_match_below(parts) for p in self.patterns)


def _relative(relpath: str) -> str:
    return clean_pattern(relpath)
