"""Top-level ``include:``: pulling other Compose projects into this one.

Each entry is loaded as a project of its own (its own directory, its own
``.env``, its own interpolation, extends and includes) by a callback the loader
supplies; this module only decides *what* to load, keeps track of the chain of
open files to catch cycles, and imports the resources that come back.

A resource (service, network, volume, config, secret, model) that the
including project or an earlier include already defines is an error, unless
both definitions are identical; this is the rule Docker Compose applied from
the first ``include`` release until late 2025 and what the Compose
Specification documents ("Compose reports an error if any resource from
include conflicts with resources from the included Compose file"). To
customise an included resource, override it in a file merged with ``-f``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import IncludeError, Location, Problem
from composer.schema.discovery import absolute
from composer.schema.tree import YMap, YSeq, path_str, to_plain

RESOURCES = ("services", "networks", "volumes", "configs", "secrets", "models")
"""Top-level sections an include brings in, in the order they are imported."""


@dataclass(frozen=True, slots=True)
class IncludeEntry:
    """One ``include:`` entry, resolved and ready to load.

    * ``paths``: absolute paths of the files to load, merged in order (the
      first is the included project's main file, the others its overrides).
    * ``project_dir``: absolute directory of the included project: its
      ``project_directory`` (relative to the including project's directory),
      else the directory of the first file. Relative paths inside the included
      files resolve against it.
    * ``env_files``: absolute paths of the env files that feed its
      interpolation: the entry's ``env_file`` (relative to the including
      project's directory; they must exist), else ``<project_dir>/.env`` when
      that file exists, else none.
    * ``location``: where the entry is written, for error messages.
    * ``chain``: the files open from the root project down to this entry's main
      file (inclusive). The loader passes it back to ``apply_includes`` when it
      processes the included project's own ``include:``, which is how a cycle
      (a includes b includes a) is seen.
    """

    paths: tuple[Path, ...]
    project_dir: Path
    env_files: tuple[Path, ...]
    location: Location | None
    chain: tuple[str, ...]


LoadIncluded = Callable[[IncludeEntry], YMap]


def include_entries(
    tree: YMap, *, project_dir: Path, chain: Sequence[str] = ()
) -> list[IncludeEntry]:
    """Resolve the ``include:`` section of ``tree`` into entries (no loading)."""
    section = tree.get("include")
    if section is None:
        return []
    if not isinstance(section, list):
        raise IncludeError(
            "include must be a list",
            location=tree.loc_of("include"),
            path="include",
        )
    opened = tuple(chain) or _root_chain(tree)
    return [_entry(item, section, index, project_dir, opened) for index, item in enumerate(section)]


def apply_includes(
    tree: YMap,
    *,
    project_dir: Path,
    load_included: LoadIncluded,
    chain: Sequence[str] = (),
) -> YMap:
    """Load every ``include:`` entry of ``tree`` and import its resources.

    ``chain`` lists the files already open above this tree, root first; when it
    is empty the file the ``include:`` key was read from starts the chain.
    ``load_included`` returns the included project's fully merged tree (paths
    already resolved against its own directory, not normalised). Returns a new
    tree without the ``include`` key; ``tree`` is left untouched.
    """
    entries = include_entries(tree, project_dir=project_dir, chain=chain)
    out = YMap(tree, tree.loc)
    out.key_locs = dict(tree.key_locs)
    out.value_locs = dict(tree.value_locs)
    out.tags = dict(tree.tags)
    if "include" not in tree:
        return out
    del out["include"]
    for entry in entries:
        imported = load_included(entry)
        _import(out, imported, entry)
    return out


# --- resolving entries ------------------------------------------------------


def _root_chain(tree: YMap) -> tuple[str, ...]:
    loc = tree.loc_of("include")
    return (loc.file,) if loc is not None and loc.file not in ("", "-") else ()


def _entry(
    item: Any, section: list[Any], index: int, project_dir: Path, chain: tuple[str, ...]
) -> IncludeEntry:
    loc = section.loc_of(index) if isinstance(section, YSeq) else None
    where = f"include[{index}]"
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, dict) or "path" not in item:
        raise IncludeError(
            "an include entry needs a path",
            location=loc,
            path=where,
            hint="write `- path/to/compose.yaml` or `- path: [a.yaml, b.yaml]`",
        )
    raw_paths = _string_list(item["path"], loc, f"{where}.path")
    if not raw_paths:
        raise IncludeError("include path must not be empty", location=loc, path=f"{where}.path")
    paths = tuple(absolute(Path(p), project_dir) for p in raw_paths)
    for path in paths:
        if not path.is_file():
            raise IncludeError(
                f"included file {path} not found",
                location=loc,
                path=f"{where}.path",
                hint=f"relative include paths start at {project_dir}",
            )
    main = str(paths[0])
    if main in chain:
        raise _cycle([*chain, main], loc, where)
    raw_dir = item.get("project_directory")
    included_dir = absolute(Path(raw_dir), project_dir) if raw_dir else paths[0].parent
    env_files = _env_files(item.get("env_file"), included_dir, project_dir, loc, where)
    return IncludeEntry(
        paths=paths,
        project_dir=included_dir,
        env_files=env_files,
        location=loc,
        chain=(*chain, main),
    )


def _string_list(value: Any, loc: Location | None, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise IncludeError("must be a string or a list of strings", location=loc, path=where)


def _env_files(
    value: Any, included_dir: Path, project_dir: Path, loc: Location | None, where: str
) -> tuple[Path, ...]:
    if value is None or value == []:
        default = included_dir / ".env"
        return (default,) if default.is_file() else ()
    out: list[Path] = []
    for name in _string_list(value, loc, f"{where}.env_file"):
        if name == "/dev/null":  # Docker Compose's way to say "no env file at all"
            continue
        path = absolute(Path(name), project_dir)
        if not path.is_file():
            raise IncludeError(
                f"env file {path} not found",
                location=loc,
                path=f"{where}.env_file",
                hint=f"relative env_file paths of an include start at {project_dir}",
            )
        out.append(path)
    return tuple(out)


def _cycle(files: list[str], loc: Location | None, where: str) -> IncludeError:
    shown = "\n include ".join(files[1:])
    return IncludeError(
        f"include cycle detected:\n{files[0]}\n include {shown}",
        location=loc,
        path=where,
        hint="remove one of the include entries in the chain",
    )


# --- importing resources ----------------------------------------------------


def _import(target: YMap, imported: YMap, entry: IncludeEntry) -> None:
    problems: list[Problem] = []
    for section in RESOURCES:
        incoming = imported.get(section)
        if not isinstance(incoming, dict) or not incoming:
            continue
        current = target.get(section)
        if not isinstance(current, YMap):
            current = YMap(current or {}, imported.loc_of(section))
            target.set(section, current, imported.loc_of(section))
        for name, definition in incoming.items():
            if name not in current:
                current[name] = definition
                if isinstance(incoming, YMap):
                    current.copy_locs_from(incoming, name)
                continue
            if to_plain(current[name]) == to_plain(definition):
                continue
            problems.append(_clash(section, name, current, incoming, entry))
    if problems:
        raise IncludeError("included resources clash", problems=problems)


def _clash(section: str, name: str, current: YMap, incoming: Any, entry: IncludeEntry) -> Problem:
    theirs = incoming.key_locs.get(name) if isinstance(incoming, YMap) else None
    ours = current.key_locs.get(name) or current.loc_of(name)
    origin = str(theirs) if theirs is not None else str(entry.paths[0])
    return Problem(
        message=f"{section}.{name} conflicts with imported resource (defined again in {origin})",
        location=ours,
        path=path_str((section, name)),
        hint=(
            "rename one of them; to change an included resource, override it in a file "
            "merged with -f instead of redefining it"
        ),
    )
