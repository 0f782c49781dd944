"""File-system notifications, gathered into batches after a quiet period.

``FileWatcher`` runs watchfiles' notifier (inotify on Linux) in a thread and
hands every raw change to a ``Batcher``. The batcher holds changes until the
tree has been quiet for ``quiet`` seconds (default 50 ms; Docker Compose
waits 500 ms), or ``max_wait`` seconds have passed since the first change of
the batch, so that an editor's save (write a temporary file, rename it over
the original, touch a backup) or a ``git checkout`` of 200 files becomes one
batch and therefore one action per service.

Syncs do not wait for the quiet period: the first notification of a batch
is handed out at once as an *early* batch, which the session uses for file
copies only (``take_early``). The closing batch still carries every path, so
restarts, execs and rebuilds run once per save; a path copied early and not
changed again is marked ``synced_early`` so that it is not copied twice. A
file still being written when it was copied early changes again, raises a
new event, and is copied again with the closing batch.

The batcher keeps time through a ``Clock`` so that tests drive it in virtual
time; the notifier itself reports in 5 ms steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.clock import Clock

DEFAULT_QUIET = 0.05
"""Seconds of silence that close a batch."""

DEFAULT_MAX_WAIT = 2.0
"""A batch is closed after this long even if changes keep coming."""

NOTIFY_STEP_MS = 5
"""How often the notifier thread looks for new events (milliseconds)."""

_ADDED = 1  # watchfiles.Change.added


def _by_path(change: tuple[int, str]) -> str:
    return change[1]


@dataclass(frozen=True, slots=True)
class Change:
    """A path changed in a batch; ``created`` when it was created at some point in it."""

    path: Path
    created: bool = False
    synced_early: bool = False
    """Copied by the batch's early sync and not changed since."""


@dataclass
class Batcher:
    """Changed paths collected until the tree has been quiet long enough.

    Not thread-safe by itself; ``FileWatcher`` calls it under its lock.
    """

    clock: Clock
    quiet: float = DEFAULT_QUIET
    max_wait: float = DEFAULT_MAX_WAIT
    _paths: dict[Path, bool] = field(default_factory=dict)
    _first: float | None = None
    _last: float = 0.0
    _early: set[Path] | None = None
    """Paths handed out by ``take_early`` in this batch and not changed since."""

    def add(self, changes: Iterable[tuple[Path, bool]], quiet_for: float = 0.0) -> None:
        """Record changed paths; the tree has been quiet for ``quiet_for`` seconds already.

        Each change is ``(path, created)``; a path created at any point in
        the batch stays marked created (a new directory is copied whole,
        since files made in it before it was watched raise no event). The
        notifier reports only after one quiet step, so that much of the quiet
        period has passed when the changes arrive.
        """
        now = self.clock.now() - quiet_for
        added = False
        for path, created in changes:
            self._paths[path] = self._paths.get(path, False) or created
            if self._early is not None:
                self._early.discard(path)
            added = True
        if not added:
            return
        if self._first is None:
            self._first = now
        self._last = now

    def due_in(self) -> float | None:
        """Seconds until the pending batch is ready (0: now), or None when nothing is pending."""
        if self._first is None:
            return None
        now = self.clock.now()
        quiet_at = self._last + self.quiet
        cap_at = self._first + self.max_wait
        return max(0.0, min(quiet_at, cap_at) - now)

    def take_early(self) -> list[Change] | None:
        """The first changes of a pending batch, once per batch (for syncs), else None."""
        if self._first is None or self._early is not None:
            return None
        self._early = set(self._paths)
        return [Change(path, created) for path, created in self._paths.items()]

    def take(self) -> list[Change] | None:
        """The batch when it is ready (and start a new one), else None."""
        due = self.due_in()
        if due is None or due > 0:
            return None
        early = self._early or set()
        batch = [Change(path, created, path in early) for path, created in self._paths.items()]
        self._paths.clear()
        self._first = None
        self._early = None
        return batch


def watch_roots(paths: Iterable[Path]) -> list[Path]:
    """The directories to watch: each path (its parent when it is a file or missing),
    with directories inside another watched directory dropped."""
    roots: set[Path] = set()
    for path in paths:
        candidate = path
        while not candidate.is_dir() and candidate != candidate.parent:
            candidate = candidate.parent
        roots.add(candidate)
    ordered = sorted(roots, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in ordered:
        if not any(root == k or k in root.parents for k in kept):
            kept.append(root)
    return kept


def watch_plan(trees: Iterable[Path], files: Iterable[Path] = ()) -> tuple[list[Path], list[Path]]:
    """``(recursive, flat)`` directories to watch for rule paths and single files.

    A rule path that is a directory (or is missing: its nearest existing
    parent, so that its creation is seen) is watched recursively; a rule path
    that is a file, and every file of ``files`` (the compose files), only
    through its directory's own entries.
    """
    tree_list = list(trees)
    file_list = [p for p in tree_list if p.is_file()] + list(files)
    recursive = watch_roots(p for p in tree_list if not p.is_file())

    def covered(directory: Path) -> bool:
        return any(directory == r or r in directory.parents for r in recursive)

    flat = sorted({p.parent for p in file_list if p.parent.is_dir() and not covered(p.parent)})
    return recursive, flat


class FileWatcher:
    """Watches directory trees and delivers quiet-period batches of changed paths.

    ``roots`` are watched recursively; ``flat`` directories only for their
    own entries (the compose file's directory: the project's other trees,
    ``node_modules`` or ``.git``, are no business of watch unless a rule
    names them).
    """

    def __init__(self, roots: Sequence[Path], batcher: Batcher, flat: Sequence[Path] = ()) -> None:
        self._roots = list(roots)
        self._flat = list(flat)
        self._batcher = batcher
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the notifiers; returns once every directory is being watched."""
        for paths, recursive in ((self._roots, True), (self._flat, False)):
            if not paths:
                continue
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(paths, recursive, ready), name="composer-watch", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            ready.wait()
            if self._error is not None:
                self.stop()
                raise self._error

    def _run(self, paths: list[Path], recursive: bool, ready: threading.Event) -> None:
        from watchfiles._rust_notify import RustNotify

        try:
            notify = RustNotify([str(r) for r in paths], False, False, 300, recursive, True)
        except BaseException as error:  # handed to the caller of start()
            self._error = error
            ready.set()
            return
        ready.set()
        with notify:
            while not self._stop.is_set():
                raw: Any = notify.watch(NOTIFY_STEP_MS, NOTIFY_STEP_MS, 200, self._stop)
                if isinstance(raw, set) and raw:
                    with self._cond:
                        self._batcher.add(
                            ((Path(p), kind == _ADDED) for kind, p in sorted(raw, key=_by_path)),
                            quiet_for=NOTIFY_STEP_MS / 1000,
                        )
                        self._cond.notify_all()

    def next_batch(self, timeout: float | None = None) -> list[Change] | None:
        """Block until a batch is ready (or ``timeout``/``stop``); None when none came."""
        got = self.next_batches(timeout, early=False)
        return None if got is None else got[0]

    def next_batches(
        self, timeout: float | None = None, *, early: bool = True
    ) -> tuple[list[Change], bool] | None:
        """Like ``next_batch``, also handing out early batches: ``(changes, closing)``."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set():
                batch = self._batcher.take()
                if batch is not None:
                    return batch, True
                first = self._batcher.take_early() if early else None
                if first is not None:
                    return first, False
                due = self._batcher.due_in()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                wait = min(x for x in (due, left, 0.5) if x is not None)
                self._cond.wait(wait)
        return None

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> FileWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
