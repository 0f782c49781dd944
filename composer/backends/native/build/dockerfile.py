"""The Dockerfile parser: text → stages of instructions, with line numbers.

Parsing is purely structural, as BuildKit's front-end does it: parser
directives (``# syntax=``, ``# escape=``), comments, line continuations,
flags (``--from=…``), exec versus shell form, heredocs (``RUN <<EOF``,
``COPY <<a <<b /dst/``) and stages split at ``FROM``. Variable substitution
needs the build's environment at each step, so it is left to the builder
(helpers at the end of this module apply ``words.expand`` per instruction).
Every instruction keeps the line it started on, so an error during the
build can name ``Dockerfile:LINE``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from composer.backends.native.build.words import WordError, expand, expand_words, split_raw
from composer.errors import ConfigError, Location

KEYWORDS = frozenset(
    [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ]
)
"""Every instruction Docker's classic and BuildKit front-ends accept."""

_FLAGS: Mapping[str, frozenset[str]] = {
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "FROM": frozenset({"platform"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
    "RUN": frozenset({"mount", "network", "security"}),
}
"""The flags each instruction accepts; anything else is an error naming the line."""
_WITH_HEREDOCS = frozenset({"ADD", "COPY", "RUN"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z_][A-Za-z0-9_]*))")
_FLAG = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.*))?$")


class DockerfileError(ConfigError):
    """A Dockerfile that cannot be parsed or built: names ``file:line``."""

    def __init__(self, message: str, file: str, line: int, hint: str | None = None) -> None:
        super().__init__(message, hint, location=Location(file, line, 1))
        self.file = file
        self.line = line


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A here-document attached to an instruction."""

    name: str
    content: str
    expand: bool = True
    """False when the delimiter was quoted (``<<"EOF"``): no substitution."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction as written: keyword, flags, arguments and where it is."""

    keyword: str
    args: str
    """The arguments after the flags, continuation lines joined (raw, unexpanded)."""
    line: int
    flags: Mapping[str, str] = field(default_factory=dict)
    exec_form: tuple[str, ...] | None = None
    """The JSON array form (``["a", "b"]``), or ``None`` for the shell form."""
    heredocs: tuple[Heredoc, ...] = ()
    original: str = ""
    sub: Instruction | None = None
    """The instruction an ``ONBUILD`` wraps."""


@dataclass(frozen=True, slots=True)
class Stage:
    """A ``FROM`` and the instructions up to the next one."""

    index: int
    base: str
    """The image (unexpanded: may use global ARGs), or ``scratch``."""
    name: str | None
    platform: str | None
    line: int
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True, slots=True)
class Dockerfile:
    """A parsed Dockerfile."""

    file: str
    escape: str
    directives: Mapping[str, str]
    global_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]

    def stage(self, target: str | None) -> Stage:
        """The stage named (or numbered) ``target``, else the last one."""
        if target is None:
            return self.stages[-1]
        for s in self.stages:
            if s.name == target.lower() or str(s.index) == target:
                return s
        raise DockerfileError(
            f"target stage {target!r} not found",
            self.file,
            self.stages[-1].line,
            hint="stages: " + ", ".join(s.name or str(s.index) for s in self.stages),
        )

    def error(self, inst: Instruction, message: str, hint: str | None = None) -> DockerfileError:
        return DockerfileError(f"{inst.keyword}: {message}", self.file, inst.line, hint)


# --- parsing -------------------------------------------------------------------


def parse(text: str, file: str = "Dockerfile") -> Dockerfile:
    """Parse ``text``; ``DockerfileError`` names the line of the first problem."""
    lines = text.splitlines()
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape character {escape!r}", file, 1, hint="use \\ or `")
    instructions: list[Instruction] = []
    i = start
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        parts = [raw]
        while _continues(parts[-1], escape) and i + 1 < len(lines):
            i += 1
            nxt = lines[i]
            if nxt.strip().startswith("#") or not nxt.strip():
                parts.append(escape)  # comments and empty lines inside a continuation vanish
                continue
            parts.append(nxt)
        i += 1
        logical = _join(parts, escape)
        inst, i = _instruction(logical, first + 1, lines, i, escape, file)
        instructions.append(inst)
    return _stages(instructions, file, escape, directives)


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line.strip())
        if not m:
            return found, i
        key = m.group(1).lower()
        if key in found:
            return found, i
        found[key] = m.group(2)
    return found, len(lines)


def _continues(line: str, escape: str) -> bool:
    return line.rstrip().endswith(escape)


def _join(parts: list[str], escape: str) -> str:
    out: list[str] = []
    for p in parts:
        s = p.rstrip()
        if s.endswith(escape):
            s = s[: -len(escape)]
        out.append(s)
    return "".join(out)


def _instruction(
    logical: str, line: int, lines: list[str], nxt: int, escape: str, file: str
) -> tuple[Instruction, int]:
    body = logical.strip()
    keyword, _, rest = body.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    keyword = keyword.upper()
    rest = rest.strip()
    if keyword not in KEYWORDS:
        raise DockerfileError(
            f"unknown instruction: {keyword}",
            file,
            line,
            hint="instructions: " + ", ".join(sorted(KEYWORDS)),
        )
    sub: Instruction | None = None
    if keyword == "ONBUILD":
        if not rest:
            raise DockerfileError("ONBUILD needs an instruction", file, line)
        sub, nxt = _instruction(rest, line, lines, nxt, escape, file)
        if sub.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(f"{sub.keyword} is not allowed in ONBUILD", file, line)
    flags: dict[str, str] = {}
    if keyword in _FLAGS:
        rest = _take_flags(rest, flags, keyword, file, line)
    heredocs: tuple[Heredoc, ...] = ()
    if keyword in _WITH_HEREDOCS and "<<" in rest:
        heredocs, nxt = _heredocs(rest, lines, nxt, file, line)
    exec_form = None if heredocs else parse_exec_form(rest)
    if not rest and keyword not in ("RUN",):
        raise DockerfileError(f"{keyword} requires at least one argument", file, line)
    return (
        Instruction(keyword, rest, line, flags, exec_form, heredocs, logical.strip(), sub),
        nxt,
    )


def _take_flags(rest: str, flags: dict[str, str], keyword: str, file: str, line: int) -> str:
    while rest.startswith("--"):
        word, _, remainder = rest.partition(" ")
        m = _FLAG.match(word)
        if not m:
            raise DockerfileError(f"{keyword}: malformed flag {word!r}", file, line)
        name, value = m.group(1), m.group(2)
        if name not in _FLAGS[keyword]:
            raise DockerfileError(
                f"{keyword}: unknown flag --{name}",
                file,
                line,
                hint="accepted: " + ", ".join(f"--{f}" for f in sorted(_FLAGS[keyword])),
            )
        if name in flags and name != "mount":
            raise DockerfileError(f"{keyword}: flag --{name} given twice", file, line)
        if name == "mount" and name in flags:
            flags[name] = flags[name] + "\n" + (value or "")
        else:
            flags[name] = value if value is not None else "true"
        rest = remainder.lstrip()
    return rest


def _heredocs(
    rest: str, lines: list[str], nxt: int, file: str, line: int
) -> tuple[tuple[Heredoc, ...], int]:
    docs: list[Heredoc] = []
    for m in _HEREDOC.finditer(rest):
        chomp = m.group(1) == "-"
        name = m.group(2) or m.group(3) or m.group(4)
        quoted = m.group(4) is None
        body: list[str] = []
        while True:
            if nxt >= len(lines):
                raise DockerfileError(f"unterminated heredoc <<{name}", file, line)
            text = lines[nxt]
            nxt += 1
            candidate = text.lstrip("\t") if chomp else text
            if candidate == name:
                break
            body.append(candidate)
        content = "\n".join(body) + ("\n" if body else "")
        docs.append(Heredoc(name, content, expand=not quoted))
    return tuple(docs), nxt


def parse_exec_form(rest: str) -> tuple[str, ...] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None  # Docker falls back to the shell form
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _stages(
    instructions: list[Instruction], file: str, escape: str, directives: Mapping[str, str]
) -> Dockerfile:
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    head: Instruction | None = None
    names: set[str] = set()

    def close() -> None:
        if head is not None and current is not None:
            base, name = _from_parts(head, file)
            if name is not None:
                if name in names:
                    raise DockerfileError(f"duplicate stage name {name!r}", file, head.line)
                names.add(name)
            stages.append(
                Stage(
                    len(stages), base, name, head.flags.get("platform"), head.line, tuple(current)
                )
            )

    for inst in instructions:
        if inst.keyword == "FROM":
            close()
            head, current = inst, []
        elif current is None:
            if inst.keyword != "ARG":
                raise DockerfileError(
                    f"{inst.keyword} before the first FROM",
                    file,
                    inst.line,
                    hint="only ARG may come before FROM",
                )
            global_args.append(inst)
        else:
            current.append(inst)
    close()
    if not stages:
        raise DockerfileError("no FROM instruction", file, 1, hint="start with FROM <image>")
    return Dockerfile(file, escape, dict(directives), tuple(global_args), tuple(stages))


def _from_parts(inst: Instruction, file: str) -> tuple[str, str | None]:
    words = inst.args.split()
    if len(words) == 1:
        return words[0], None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not re.match(r"^[a-z][a-z0-9._-]*$", name):
            raise DockerfileError(f"invalid stage name {words[2]!r}", file, inst.line)
        return words[0], name
    raise DockerfileError(
        "FROM takes an image and an optional AS name", file, inst.line, hint="FROM image [AS name]"
    )


# --- interpreting arguments at build time --------------------------------------


def key_values(df: Dockerfile, inst: Instruction, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``ENV``/``LABEL`` pairs: ``k=v k2="v 2"`` or the legacy ``ENV k the value``."""
    try:
        words = split_raw(inst.args, df.escape)
        if words and "=" not in words[0]:
            if inst.keyword != "ENV" or len(words) < 2:
                raise df.error(inst, "expected key=value")
            value = inst.args[len(words[0]) :].strip()
            return [(words[0], expand(value, env, df.escape))]
        pairs: list[tuple[str, str]] = []
        for w in words:
            if "=" not in w:
                raise df.error(inst, f"expected key=value, got {w!r}")
            k, _, v = w.partition("=")
            pairs.append((expand(k, env, df.escape), expand(v, env, df.escape)))
        return pairs
    except WordError as exc:
        raise df.error(inst, str(exc)) from None


def arg_defs(
    df: Dockerfile, inst: Instruction, env: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """``ARG name[=default] …`` → ``(name, default or None)``."""
    out: list[tuple[str, str | None]] = []
    try:
        for w in split_raw(inst.args, df.escape):
            name, eq, default = w.partition("=")
            out.append((name, expand(default, env, df.escape) if eq else None))
    except WordError as exc:
        raise df.error(inst, str(exc)) from None
    return out


def words(df: Dockerfile, inst: Instruction, env: Mapping[str, str]) -> list[str]:
    """The arguments as expanded words (JSON form taken as is, then expanded)."""
    try:
        if inst.exec_form is not None:
            return [expand(w, env, df.escape) for w in inst.exec_form]
        return expand_words(inst.args, env, df.escape)
    except WordError as exc:
        raise df.error(inst, str(exc)) from None


def single(df: Dockerfile, inst: Instruction, env: Mapping[str, str]) -> str:
    """The whole argument as one expanded word (WORKDIR, USER, STOPSIGNAL)."""
    try:
        return expand(inst.args, env, df.escape)
    except WordError as exc:
        raise df.error(inst, str(exc)) from None


def command(inst: Instruction, shell: tuple[str, ...]) -> tuple[str, ...]:
    """RUN/CMD/ENTRYPOINT as argv: exec form as is, shell form under ``shell``.

    A RUN whose script is a heredoc (``RUN <<EOF``) runs the heredoc's text;
    other heredocs in a RUN line are part of the shell script itself.
    """
    if inst.exec_form is not None:
        return inst.exec_form
    if inst.heredocs:
        script = inst.args
        if re.fullmatch(r"<<-?\s*[\"']?\w+[\"']?", script.strip()):
            return (*shell, inst.heredocs[0].content)
        text = script + "\n" + "".join(h.content + h.name + "\n" for h in inst.heredocs)
        return (*shell, text)
    return (*shell, inst.args)
