"""Which changed paths a watch rule cares about.

A path reaches a rule when it lies under the rule's ``path`` and survives,
in order: the editor and VCS noise every rule ignores (swap files, backups,
JetBrains' safe-write files, ``.git``), the build context's ``.dockerignore``
(paths relative to the context, as ``docker build`` reads it), the rule's
``ignore`` patterns and, when the rule has any, its ``include`` patterns
(both relative to the rule's ``path``, in ``.dockerignore`` syntax).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from composer.ignorefile import IgnoreFile

# Editors write these next to the file being saved; none of them is a change.
EDITOR_PATTERNS = (
    "**/*.swp",
    "**/*.swx",
    "**/*.swo",
    "**/*.swn",
    "**/*~",
    "**/.#*",
    "**/#*#",
    "**/4913",
    "**/*___jb_tmp___",
    "**/*___jb_old___",
    "**/*.kate-swp",
    "**/.git",
)
_EDITOR = IgnoreFile.from_patterns(EDITOR_PATTERNS)


def editor_noise(relpath: str) -> bool:
    """Whether a path is an editor's temporary file or inside ``.git``."""
    return _EDITOR.matches(relpath)


def relative_to(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators (``.`` for the root), or None."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else "."


@dataclass(frozen=True)
class RuleFilter:
    """The filter of one ``develop.watch`` rule.

    ``root`` is the rule's absolute ``path`` (a directory or a single file);
    ``context`` the service's build context when it has a local one.
    """

    root: Path
    ignore: IgnoreFile = field(default_factory=IgnoreFile)
    include: IgnoreFile = field(default_factory=IgnoreFile)
    context: Path | None = None
    context_ignore: IgnoreFile = field(default_factory=IgnoreFile)

    @classmethod
    def build(
        cls,
        root: Path,
        ignore: list[str],
        include: list[str],
        context: Path | None = None,
        dockerfile: str | None = None,
    ) -> RuleFilter:
        return cls(
            root=root,
            ignore=IgnoreFile.from_patterns(ignore),
            include=IgnoreFile.from_patterns(include),
            context=context,
            context_ignore=IgnoreFile.load(context, dockerfile) if context else IgnoreFile(),
        )

    def relpath(self, path: Path) -> str | None:
        """The path relative to the rule's root when the rule accepts it, else None."""
        rel = relative_to(path, self.root)
        if rel is None or (rel != "." and not self.accepts_rel(rel)):
            return None
        if rel == "." and self._context_excludes(path):
            return None
        return rel

    def accepts(self, path: Path) -> bool:
        return self.relpath(path) is not None

    def accepts_rel(self, rel: str) -> bool:
        """Whether a path given relative to the root passes every filter."""
        if editor_noise(rel):
            return False
        if self._context_excludes(self.root / rel):
            return False
        if self.ignore.matches(rel):
            return False
        return not self.include or self.include.matches(rel)

    def _context_excludes(self, path: Path) -> bool:
        if self.context is None or not self.context_ignore:
            return False
        rel = relative_to(path, self.context)
        return rel is not None and rel != "." and self.context_ignore.matches(rel)

    def enters(self, rel: str) -> bool:
        """Whether a walk of the rule's tree must enter the directory ``rel``."""
        if rel == ".":
            return True
        if editor_noise(rel):
            return False
        if not self.ignore.includes_dir_children(rel):
            return False
        if self.context is not None and self.context_ignore:
            ctx_rel = relative_to(self.root / rel, self.context)
            if ctx_rel not in (None, ".") and not self.context_ignore.includes_dir_children(
                str(ctx_rel)
            ):
                return False
        return True

    def walk(self, rel: str = ".") -> Iterator[str]:
        """Every accepted file, symlink and directory under ``rel``, pruning what cannot match.

        Directories are yielded before their contents (paths relative to the root).
        """
        start = self.root / rel
        if not start.is_dir() or start.is_symlink():
            if rel != "." and self.accepts_rel(rel) and os.path.lexists(start):
                yield rel
            return
        if rel != ".":
            if not self.enters(rel):
                return
            if self.accepts_rel(rel):
                yield rel
        stack = [rel]
        while stack:
            current = stack.pop()
            try:
                entries = sorted(os.scandir(self.root / current), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                child = entry.name if current == "." else f"{current}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    if self.enters(child):
                        if self.accepts_rel(child):
                            yield child
                        stack.append(child)
                elif self.accepts_rel(child):
                    yield child


def container_path(target: str, rel: str) -> str:
    """Where ``rel`` (relative to the rule's path) lands under the rule's ``target``."""
    base = PurePosixPath(target)
    return str(base if rel == "." else base / rel)
