"""Resolve ``services.*.extends`` within one (transformed) Compose file.

A service that extends another starts from a copy of the base service and has
its own attributes merged on top with the same rules as multi-file merging:
the child wins, unique-key sequences merge by key and the rest concatenate,
base first. As in Docker Compose v2, every attribute is inherited, including
``depends_on``, ``links`` and ``volumes_from``: the referenced services must
then exist in the extending project, which the semantic checks report.

A base taken from another file brings relative paths written for that file's
directory; they are rebased onto it here (absolute from then on), because
after this stage nothing knows which file a value came from except its
position. Bases are resolved depth first, memoised per ``(file, service)``,
so chains cost one merge per link and cycles are found on the way down.
"""

from __future__ import annotations

import difflib
import os.path
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from composer.errors import ConfigError, ExtendsError, Location, Problem
from composer.schema.merge import merge_service, strip_tags
from composer.schema.tree import YMap, YSeq, loc_of, path_str

__all__ = ["rebase_service_paths", "resolve_extends"]

LoadFile = Callable[[str], YMap]

_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@", "service:")


class _Reported(Exception):
    """A problem on this chain has already been recorded; unwind quietly."""


@dataclass
class _Resolver:
    load_file: LoadFile
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)
    done: dict[tuple[str, str], Any] = field(default_factory=dict)
    failed: set[tuple[str, str]] = field(default_factory=set)

    def fail(
        self, message: str, loc: Location | None, path: tuple[Any, ...], hint: str | None = None
    ) -> _Reported:
        self.problems.append(Problem(message, loc, path_str(path), hint))
        return _Reported()

    def services_of(
        self, path: str, loc: Location | None, where: tuple[Any, ...]
    ) -> dict[Any, Any]:
        if path not in self.files:
            try:
                self.files[path] = self.load_file(path)
            except ConfigError as exc:
                self.problems.extend(exc.problems)
                raise _Reported() from None
            except OSError as exc:
                raise self.fail(f"cannot read {path}: {exc.strerror or exc}", loc, where) from None
        tree = self.files[path]
        services = tree.get("services") if isinstance(tree, dict) else None
        if not isinstance(services, dict):
            raise self.fail(f"{path} has no services section", loc, where)
        return services

    def resolve(
        self, filename: str, services: dict[Any, Any], name: str, chain: list[tuple[str, str]]
    ) -> Any:
        """The service ``name`` of ``filename`` with its own ``extends`` applied."""
        me = (filename, name)
        if me in self.done:
            return self.done[me]
        if me in self.failed:
            raise _Reported()
        service = services[name]
        extends = service.get("extends") if isinstance(service, dict) else None
        if extends is None:
            self.done[me] = service
            return service
        where = ("services", name, "extends")
        ext_loc = loc_of(service, "extends")
        if me in chain:
            cycle = [*chain[chain.index(me) :], me]
            self.failed.update(cycle)
            raise self.fail(
                "extends cycle: " + " -> ".join(_label(f, n, filename) for f, n in cycle),
                ext_loc,
                where,
                "a service cannot extend itself, directly or through other services",
            )
        if isinstance(extends, str):
            extends = {"service": extends}
        base_name = extends.get("service") if isinstance(extends, dict) else None
        if not isinstance(base_name, str) or not base_name:
            self.failed.add(me)
            raise self.fail("extends needs a service name", ext_loc, where)
        base_file, base_services = filename, services
        other = extends.get("file")
        try:
            if other is not None:
                file_loc = loc_of(extends, "file") or ext_loc
                if not isinstance(other, str) or not other:
                    raise self.fail("extends.file must be a path", file_loc, (*where, "file"))
                base_file = os.path.normpath(os.path.join(os.path.dirname(filename), other))
                base_services = self.services_of(base_file, file_loc, (*where, "file"))
            if base_name not in base_services:
                raise self.fail(
                    _not_found(base_name, base_file, filename),
                    loc_of(extends, "service") or ext_loc,
                    (*where, "service"),
                    _did_you_mean(base_name, base_services),
                )
            base = self.resolve(base_file, base_services, base_name, [*chain, me])
        except _Reported:
            self.failed.add(me)
            raise
        start = strip_tags(base) if isinstance(base, dict) else YMap()
        if os.path.dirname(base_file) != os.path.dirname(filename):
            rebase_service_paths(start, os.path.dirname(base_file))
        child = YMap(service, service.loc) if not isinstance(service, YMap) else service
        merged = merge_service(start, child, consume_base=True)
        merged.pop("extends", None)
        merged.key_locs.pop("extends", None)
        merged.value_locs.pop("extends", None)
        merged.loc = getattr(service, "loc", None) or merged.loc
        self.done[me] = merged
        return merged


def _label(file: str, name: str, main: str) -> str:
    return name if file == main else f"{name} ({os.path.basename(file)})"


def _not_found(name: str, base_file: str, filename: str) -> str:
    if base_file == filename:
        return f"cannot extend service {name!r}: no such service"
    return f"cannot extend service {name!r}: no such service in {base_file}"


def _did_you_mean(name: str, choices: Iterable[Any]) -> str | None:
    close = difflib.get_close_matches(name, [c for c in choices if isinstance(c, str)], n=1)
    return f"did you mean {close[0]!r}?" if close else None


def resolve_extends(tree: YMap, *, filename: str, load_file: LoadFile) -> YMap:
    """Apply every ``extends`` of ``tree`` (a transformed file), in place.

    ``filename`` should be absolute: ``extends.file`` is taken relative to
    the directory of the file that names it, and ``load_file`` receives that
    joined path and returns the file parsed, interpolated and transformed.
    Trees returned by ``load_file`` are read, never modified. All broken
    references and cycles of the file are reported at once as one
    ExtendsError.
    """
    services = tree.get("services") if isinstance(tree, dict) else None
    if not isinstance(services, dict):
        return tree
    resolver = _Resolver(load_file, files={filename: tree})
    for name in list(services):
        try:
            resolved = resolver.resolve(filename, services, name, [])
        except _Reported:
            continue
        if resolved is not services[name]:
            services[name] = resolved
    if resolver.problems:
        problems = _dedupe(resolver.problems)
        raise ExtendsError("invalid extends", problems=problems)
    return tree


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Problem] = []
    for problem in problems:
        key = (problem.message, str(problem.location), problem.path)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


# --- relative paths of a base from another directory --------------------------


def _is_relative(path: Any) -> bool:
    if not isinstance(path, str) or not path:
        return False
    if path.startswith(("/", "~", "\\\\")):
        return False
    return not (len(path) > 2 and path[1] == ":" and path[0].isalpha() and path[2] in "\\/")


def _rebased(path: Any, directory: str) -> Any:
    return os.path.normpath(os.path.join(directory, path)) if _is_relative(path) else path


def _context(value: Any, directory: str) -> Any:
    if isinstance(value, str) and ("://" in value or value.startswith(_REMOTE_CONTEXT)):
        return value
    return _rebased(value, directory)


def rebase_service_paths(service: YMap, directory: str) -> None:
    """Make the relative paths of ``service`` absolute against ``directory``, in place.

    The paths are those Compose resolves against a file's directory: build
    context and additional contexts, build ssh key files, ``env_file`` and
    ``label_file`` entries, bind mount sources and watch paths. ``~`` paths
    are left for normalisation.
    """
    build = service.get("build")
    if isinstance(build, dict):
        if "context" in build:
            build["context"] = _context(build["context"], directory)
        contexts = build.get("additional_contexts")
        if isinstance(contexts, dict):
            for key, value in contexts.items():
                contexts[key] = _context(value, directory)
        ssh = build.get("ssh")
        if isinstance(ssh, list):
            for i, entry in enumerate(ssh):
                if isinstance(entry, str) and "=" in entry:
                    key, _, path = entry.partition("=")
                    ssh[i] = f"{key}={_rebased(path, directory)}"
    for entry in _list(service.get("env_file")):
        if isinstance(entry, dict) and "path" in entry:
            entry["path"] = _rebased(entry["path"], directory)
    label_files = service.get("label_file")
    if isinstance(label_files, list):
        label_files[:] = [_rebased(path, directory) for path in label_files]
    for mount in _list(service.get("volumes")):
        if isinstance(mount, dict) and mount.get("type") == "bind" and "source" in mount:
            mount["source"] = _rebased(mount["source"], directory)
    develop = service.get("develop")
    if isinstance(develop, dict):
        for rule in _list(develop.get("watch")):
            if isinstance(rule, dict) and "path" in rule:
                rule["path"] = _rebased(rule["path"], directory)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list | YSeq) else []
