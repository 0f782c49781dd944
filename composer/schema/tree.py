"""The plain tree the loader works on, with source positions attached.

The loader keeps the document as plain mappings, sequences and scalars so that
interpolation, merge and extends rules can be written by key path, as
compose-go does. Positions survive because the containers carry them: a
``YMap`` knows where each of its keys and values stands, a ``YSeq`` where each
item stands. Scalars carry nothing; their position is in their parent.

Stages that rebuild a value (normalising ``"80:80"`` into a mapping, say) give
the new container the position of what it replaces, so that a later error can
still point at the user's text. ``locate`` walks a key path and returns the
most specific position it can find.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from composer.errors import Location

Key = str | int
Path = tuple[Key, ...]

RESET = "reset"
OVERRIDE = "override"


class YMap(dict[Any, Any]):
    """A mapping that remembers where it, its keys and its values came from.

    ``tags`` records YAML tags (``!reset``, ``!override``) written on a value,
    keyed by the key that holds it.
    """

    __slots__ = ("key_locs", "loc", "tags", "value_locs")

    def __init__(
        self,
        items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = (),
        loc: Location | None = None,
    ) -> None:
        super().__init__(items)
        self.loc: Location | None = loc
        self.key_locs: dict[Any, Location] = {}
        self.value_locs: dict[Any, Location] = {}
        self.tags: dict[Any, str] = {}

    def set(self, key: Any, value: Any, loc: Location | None = None) -> None:
        """Set ``key`` and record where its value came from."""
        self[key] = value
        if loc is not None:
            self.value_locs[key] = loc
            self.key_locs.setdefault(key, loc)

    def loc_of(self, key: Any) -> Location | None:
        """Position of the value at ``key`` (else of the key, else of the map)."""
        return self.value_locs.get(key) or self.key_locs.get(key) or self.loc

    def copy_locs_from(self, other: YMap, key: Any, new_key: Any | None = None) -> None:
        """Take the key/value positions and tag of ``other[key]``."""
        dst = key if new_key is None else new_key
        if key in other.key_locs:
            self.key_locs[dst] = other.key_locs[key]
        if key in other.value_locs:
            self.value_locs[dst] = other.value_locs[key]
        if key in other.tags:
            self.tags[dst] = other.tags[key]

    def __deepcopy__(self, memo: dict[int, Any]) -> YMap:
        out = YMap(((k, deepcopy_tree(v, memo)) for k, v in self.items()), self.loc)
        out.key_locs = dict(self.key_locs)
        out.value_locs = dict(self.value_locs)
        out.tags = dict(self.tags)
        return out

    def __reduce__(self) -> Any:  # pickling (hypothesis, multiprocessing)
        return (_rebuild_map, (dict(self), self.loc, self.key_locs, self.value_locs, self.tags))


class YSeq(list[Any]):
    """A sequence that remembers where it and each of its items came from."""

    __slots__ = ("item_locs", "loc")

    def __init__(self, items: Iterable[Any] = (), loc: Location | None = None) -> None:
        super().__init__(items)
        self.loc: Location | None = loc
        self.item_locs: list[Location | None] = [None] * len(self)

    def add(self, value: Any, loc: Location | None = None) -> None:
        """Append ``value`` recorded at ``loc``."""
        self.append(value)
        self._fit()
        self.item_locs[len(self) - 1] = loc

    def loc_of(self, index: int) -> Location | None:
        """Position of item ``index`` (else of the sequence)."""
        self._fit()
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index] or self.loc
        return self.loc

    def _fit(self) -> None:
        missing = len(self) - len(self.item_locs)
        if missing > 0:
            self.item_locs.extend([None] * missing)
        elif missing < 0:
            del self.item_locs[len(self) :]

    def __deepcopy__(self, memo: dict[int, Any]) -> YSeq:
        out = YSeq((deepcopy_tree(v, memo) for v in self), self.loc)
        self._fit()
        out.item_locs = list(self.item_locs)
        return out

    def __reduce__(self) -> Any:
        return (_rebuild_seq, (list(self), self.loc, self.item_locs))


def _rebuild_map(
    items: dict[Any, Any],
    loc: Location | None,
    key_locs: dict[Any, Location],
    value_locs: dict[Any, Location],
    tags: dict[Any, str],
) -> YMap:
    out = YMap(items, loc)
    out.key_locs, out.value_locs, out.tags = key_locs, value_locs, tags
    return out


def _rebuild_seq(items: list[Any], loc: Location | None, item_locs: list[Location | None]) -> YSeq:
    out = YSeq(items, loc)
    out.item_locs = item_locs
    return out


def deepcopy_tree(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Copy a tree, positions included (faster than ``copy.deepcopy``)."""
    if isinstance(value, YMap | YSeq):
        return value.__deepcopy__(memo if memo is not None else {})
    if isinstance(value, dict):
        return {k: deepcopy_tree(v, memo) for k, v in value.items()}
    if isinstance(value, list):
        return [deepcopy_tree(v, memo) for v in value]
    return value


def loc_of(container: Any, key: Key) -> Location | None:
    """Position of ``container[key]`` if the container knows it."""
    if isinstance(container, YMap):
        return container.loc_of(key)
    if isinstance(container, YSeq) and isinstance(key, int):
        return container.loc_of(key)
    return None


def locate(tree: Any, path: Sequence[Key]) -> Location | None:
    """The most specific known position for ``path`` inside ``tree``.

    Walks as deep as the path exists; when a step is missing, the position of
    the deepest container reached is returned, so an error about a missing
    key points at the mapping that should hold it.
    """
    best: Location | None = getattr(tree, "loc", None)
    node = tree
    for key in path:
        if not _has(node, key):
            break
        best = loc_of(node, key) or best
        node = node[key]
        inner = getattr(node, "loc", None)
        if inner is not None and best is None:
            best = inner
    return best


def _has(node: Any, key: Key) -> bool:
    if isinstance(node, Mapping):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def path_str(path: Sequence[Key]) -> str:
    """Render a key path the way errors show it: ``services.web.ports[0]``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + str(key)
    return out


def to_plain(value: Any) -> Any:
    """Strip position tracking: plain ``dict``/``list`` all the way down."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value
