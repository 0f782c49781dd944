"""``WWW-Authenticate`` challenges (RFC 7235), as registries send them with a 401.

A registry names its token server in a Bearer challenge
(``Bearer realm="…",service="…",scope="repository:a/b:pull"``) or asks for
Basic credentials; the scope may hold commas inside quotes, and one header
may carry several challenges, so a split on commas is not enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: scheme (lower-cased) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse RFC 7235 challenges (``Bearer realm="…",service="…",scope="a,b"``).

    Quoted values may hold commas and escaped quotes; several challenges may
    share one header, separated by commas. Parameter names are lower-cased.
    """
    challenges: list[Challenge] = []
    i, n = 0, len(header)
    current: Challenge | None = None
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None and not header[j:].startswith("=="):
            value, i = _param_value(header, j + 1)
            current.params[token.lower()] = value
            continue
        if j < n and header[j] == "=":  # a token68 (e.g. base64) after the scheme
            while i < n and header[i] not in ",":
                i += 1
            continue
        current = Challenge(token.lower())
        challenges.append(current)
    return challenges


def _param_value(header: str, i: int) -> tuple[str, int]:
    n = len(header)
    while i < n and header[i] in " \t":
        i += 1
    if i < n and header[i] == '"':
        i += 1
        out: list[str] = []
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            out.append(header[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and header[i] not in ",":
        i += 1
    return header[start:i].strip(), i
