"""Merge Compose files (``-f a -f b``) by the Compose merge rules.

The rules are a table keyed by path patterns (``services.*.ports``), the way
compose-go writes them, because the rule for a value depends on where it
stands and not on its type: ``command`` and ``dns`` are both lists of
strings, yet one is replaced and the other is a union. Anything the table does
not name follows the defaults: mappings deep-merge, later scalars win,
sequences append, and a null in the later file keeps the earlier value.

Both inputs are long-form trees (see ``transform``), so the rules never meet
short syntax. YAML tags written in the later file steer the merge: ``!reset``
removes the key (back to its default) and ``!override`` takes the later value
wholesale. Every value in the result keeps the position of the file that
supplied it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from composer.errors import Location, MergeError
from composer.schema.tree import OVERRIDE, RESET, Path, YMap, YSeq, loc_of, path_str

__all__ = ["merge_service", "merge_trees", "strip_tags", "strip_tags_in_place"]

KeyFn = Callable[[Any], Hashable | None]


def strip_tags(value: Any) -> Any:
    """A copy of ``value`` without ``!reset`` keys and without tags.

    A ``!reset`` key means "back to the default", which is "absent" once
    there is nothing left to reset; an ``!override`` tag means nothing once its
    value has been taken. Positions are kept.
    """
    if isinstance(value, dict):
        tags = value.tags if isinstance(value, YMap) else {}
        out = YMap(loc=getattr(value, "loc", None))
        for key, item in value.items():
            if tags.get(key) == RESET:
                continue
            out[key] = strip_tags(item)
            if isinstance(value, YMap):
                _copy_locs(out, value, key)
        return out
    if isinstance(value, list):
        seq = YSeq((strip_tags(item) for item in value), getattr(value, "loc", None))
        if isinstance(value, YSeq):
            seq.item_locs = [value.loc_of(i) for i in range(len(value))]
        return seq
    return value


def strip_tags_in_place(value: Any) -> Any:
    """``strip_tags`` for a tree the caller owns: the same result, mostly without copying.

    Tagged keys are handled and tags dropped in place, so a freshly parsed
    file costs one walk instead of a copy. Containers that are not
    ``YMap``/``YSeq`` (which ``strip_tags`` turns into them) are still copied.
    """
    kind = type(value)
    if kind is YMap:
        tags = value.tags
        if tags:
            for key in [k for k, tag in tags.items() if tag == RESET]:
                if key in value:
                    del value[key]
                    value.key_locs.pop(key, None)
                    value.value_locs.pop(key, None)
            value.tags = {}
        for key, item in value.items():
            if type(item) is YMap or type(item) is YSeq:
                strip_tags_in_place(item)
            elif isinstance(item, dict | list):
                value[key] = strip_tags(item)
        return value
    if kind is YSeq:
        loc = value.loc
        value.loc_of(0)  # aligns item_locs with the items
        value.item_locs = [item_loc or loc for item_loc in value.item_locs]
        for index, item in enumerate(value):
            if type(item) is YMap or type(item) is YSeq:
                strip_tags_in_place(item)
            elif isinstance(item, dict | list):
                value[index] = strip_tags(item)
        return value
    return strip_tags(value)


def _copy_locs(dst: YMap, src: YMap, key: Any) -> None:
    if key in src.key_locs:
        dst.key_locs[key] = src.key_locs[key]
    if key in src.value_locs:
        dst.value_locs[key] = src.value_locs[key]


# --- rules ----------------------------------------------------------------------

Merger = Callable[[Any, Any, Path, "_Node", Location | None], Any]


@dataclass(frozen=True)
class _Node:
    """One step of the compiled pattern table (``*`` matches any key)."""

    rule: Merger | None = None
    children: Mapping[str, _Node] = field(default_factory=lambda: MappingProxyType({}))

    def child(self, key: Any) -> _Node | None:
        return self.children.get(key) or self.children.get("*")


_LEAF = _Node()


def _mismatch(base: Any, over: Any, path: Path, loc: Location | None) -> MergeError:
    kinds = {dict: "a mapping", list: "a sequence"}
    want = next((name for kind, name in kinds.items() if isinstance(base, kind)), "a scalar")
    got = next((name for kind, name in kinds.items() if isinstance(over, kind)), "a scalar")
    return MergeError(
        f"cannot merge {got} into {want}",
        location=loc,
        path=path_str(path),
        hint="write the same shape in both files, or tag the later value with !override",
    )


def _merge_value(base: Any, over: Any, path: Path, node: _Node | None, loc: Location | None) -> Any:
    rule = node.rule if node is not None else None
    if rule is _replace:
        return strip_tags(over)
    if over is None:
        return base
    if rule is not None and base is not None:
        return rule(base, over, path, node or _LEAF, loc)
    if isinstance(base, dict):
        if not isinstance(over, dict):
            raise _mismatch(base, over, path, loc)
        return _merge_map(base, over, path, node or _LEAF, loc)
    if isinstance(base, list):
        if not isinstance(over, list):
            raise _mismatch(base, over, path, loc)
        return _append(base, over, path, node or _LEAF, loc)
    return strip_tags(over)


def _own_map(value: dict[Any, Any]) -> YMap:
    return value if isinstance(value, YMap) else YMap(value)


def _merge_map(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    """Deep merge ``over`` into ``base`` (which belongs to the result)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        raise _mismatch(base, over, path, loc)
    out = _own_map(base)
    tags = over.tags if isinstance(over, YMap) else {}
    for key, item in over.items():
        tag = tags.get(key)
        if tag == RESET:
            out.pop(key, None)
            out.key_locs.pop(key, None)
            out.value_locs.pop(key, None)
            continue
        item_loc = loc_of(over, key) or loc
        if tag == OVERRIDE or key not in out:
            merged = strip_tags(item)
        else:
            merged = _merge_value(out[key], item, (*path, key), node.child(key), item_loc)
            if merged is out[key]:
                continue  # merged into the earlier container: its position stands
        out[key] = merged
        out.tags.pop(key, None)
        if isinstance(over, YMap):
            _copy_locs(out, over, key)
    return out


def _own_seq(value: list[Any]) -> YSeq:
    if isinstance(value, YSeq):
        value.loc_of(0)  # aligns item_locs with the items
        return value
    return YSeq(value)


def _append(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    if not isinstance(base, list) or not isinstance(over, list):
        raise _mismatch(base, over, path, loc)
    out = _own_seq(base)
    for i, item in enumerate(over):
        out.add(strip_tags(item), loc_of(over, i) or loc)
    return out


def _replace(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    return strip_tags(over)


def _unique(key_of: KeyFn, *, deep: bool = False) -> Merger:
    """Sequences whose items are identified by a key: same key merges, new key appends.

    An item with the key of an earlier one takes the earlier one's place
    (replacing it, or deep-merging into it when ``deep``); items without a
    usable key are always appended.
    """

    def run(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
        if not isinstance(base, list) or not isinstance(over, list):
            raise _mismatch(base, over, path, loc)
        out = _own_seq(base)
        items: list[Any] = []
        locs: list[Location | None] = []
        index: dict[Hashable, int] = {}
        sources = [(item, out.loc_of(i)) for i, item in enumerate(out)]
        sources += [(strip_tags(item), loc_of(over, i) or loc) for i, item in enumerate(over)]
        for item, item_loc in sources:
            key = _safe_key(key_of, item)
            at = index.get(key) if key is not None else None
            if at is None:
                if key is not None:
                    index[key] = len(items)
                items.append(item)
                locs.append(item_loc)
            elif deep and isinstance(items[at], dict) and isinstance(item, dict):
                items[at] = _merge_map(items[at], item, (*path, at), node.child("*") or _LEAF, loc)
            else:
                items[at] = item
                locs[at] = item_loc
        out[:] = items
        out.item_locs = locs
        return out

    return run


def _safe_key(key_of: KeyFn, item: Any) -> Hashable | None:
    try:
        key = key_of(item)
        hash(key)
    except (TypeError, ValueError, AttributeError):
        return None
    return key


def _kv(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    """KEY=VALUE mappings: the later value wins, even a null (``FOO`` alone)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        raise _mismatch(base, over, path, loc)
    out = _own_map(base)
    tags = over.tags if isinstance(over, YMap) else {}
    for key, item in over.items():
        if tags.get(key) == RESET:
            out.pop(key, None)
            continue
        out[key] = strip_tags(item)
        if isinstance(over, YMap):
            _copy_locs(out, over, key)
    return out


def _hosts(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    """``extra_hosts``: the addresses of one host are a union, earlier first."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        raise _mismatch(base, over, path, loc)
    out = _own_map(base)
    for host, ips in over.items():
        earlier = out.get(host)
        if isinstance(earlier, list) and isinstance(ips, list):
            out[host] = _by_value(earlier, ips, (*path, host), node, loc_of(over, host) or loc)
        elif ips is not None:
            out[host] = strip_tags(ips)
            if isinstance(over, YMap):
                _copy_locs(out, over, host)
    return out


def _logging(base: Any, over: Any, path: Path, node: _Node, loc: Location | None) -> Any:
    """Options merge only when both files name the same driver (or one names none)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        raise _mismatch(base, over, path, loc)
    if "driver" in base and "driver" in over and base["driver"] != over["driver"]:
        return strip_tags(over)
    return _merge_map(base, over, path, node, loc)


def _scalar_key(item: Any) -> Hashable | None:
    return item if isinstance(item, str | int | float | bool) else None


def _port_key(item: Any) -> Hashable | None:
    if not isinstance(item, dict):
        return _scalar_key(item)
    return (
        str(item.get("host_ip") or "0.0.0.0"),
        str(item.get("published")),
        str(item.get("target")),
        str(item.get("protocol") or "tcp"),
    )


def _field_key(name: str) -> KeyFn:
    def key(item: Any) -> Hashable | None:
        return _scalar_key(item.get(name)) if isinstance(item, dict) else _scalar_key(item)

    return key


def _mount_key(prefix: str) -> KeyFn:
    """Secrets and configs: by target, or by the default target of the source."""

    def key(item: Any) -> Hashable | None:
        if not isinstance(item, dict):
            return _scalar_key(item)
        target = item.get("target")
        return _scalar_key(target) if target is not None else f"{prefix}{item.get('source')}"

    return key


_by_value = _unique(_scalar_key)


# --- the table --------------------------------------------------------------------

_TABLE: Mapping[str, Merger] = MappingProxyType(
    {
        "services.*.{command,entrypoint}": _replace,
        "services.*.healthcheck.test": _replace,
        "services.*.ulimits.*": _replace,
        "services.*.build.ulimits.*": _replace,
        "services.*.logging": _logging,
        "services.*.ports": _unique(_port_key),
        "services.*.{volumes,devices}": _unique(_field_key("target")),
        "services.*.secrets": _unique(_mount_key("/run/secrets/")),
        "services.*.build.secrets": _unique(_mount_key("/run/secrets/")),
        "services.*.configs": _unique(_mount_key("/")),
        "services.*.env_file": _unique(_field_key("path")),
        "services.*.{expose,dns,dns_opt,dns_search,cap_add,cap_drop,links,external_links}": (
            _by_value
        ),
        "services.*.{profiles,tmpfs,security_opt,label_file,volumes_from,group_add}": _by_value,
        "services.*.device_cgroup_rules": _by_value,
        "services.*.networks.*.{aliases,link_local_ips}": _by_value,
        "services.*.build.{tags,platforms,cache_from,cache_to,entitlements,ssh}": _by_value,
        "services.*.{environment,labels,annotations,sysctls,storage_opt}": _kv,
        "services.*.build.{args,labels,additional_contexts}": _kv,
        "services.*.deploy.labels": _kv,
        "services.*.{extra_hosts,build.extra_hosts}": _hosts,
        "{networks,volumes,secrets,configs}.*.labels": _kv,
        "{networks,volumes}.*.driver_opts": _kv,
        "networks.*.ipam.config": _unique(_field_key("subnet"), deep=True),
        "networks.*.ipam.options": _kv,
    }
)


def _expand(pattern: str) -> Iterator[str]:
    """``a.{b,c}.d`` → ``a.b.d``, ``a.c.d``."""
    match = re.search(r"\{([^}]*)\}", pattern)
    if match is None:
        yield pattern
        return
    for choice in match.group(1).split(","):
        yield from _expand(pattern[: match.start()] + choice + pattern[match.end() :])


def _compile(table: Mapping[str, Merger]) -> _Node:
    tree: dict[str, Any] = {}
    for pattern, rule in table.items():
        for path in _expand(pattern):
            node = tree
            for step in path.split("."):
                node = node.setdefault(step, {})
            node[""] = rule

    def freeze(spec: dict[str, Any]) -> _Node:
        children = {k: freeze(v) for k, v in spec.items() if k}
        return _Node(spec.get(""), MappingProxyType(children))

    return freeze(tree)


_ROOT = _compile(_TABLE)
_SERVICE = _ROOT.children["services"].children["*"]


# --- entry points -----------------------------------------------------------------


def merge_trees(
    base: YMap, override: YMap, *, consume_base: bool = False, consume_override: bool = False
) -> YMap:
    """Merge the (long-form) tree of a later file onto an earlier one.

    The inputs are not modified, unless ``consume_base`` is set: then
    ``base`` is merged into in place and returned (faster for a loader that
    folds many files; ``base`` must then be tag-free, such as an earlier
    result of this function). Tags in ``override`` are applied, not copied:
    the result carries none, so the first file should be folded onto an
    empty ``YMap()`` for its own ``!reset`` keys to be dropped.

    ``consume_override`` says the caller owns ``override`` and will not use
    it again: folded onto an empty ``base``, it then becomes the result
    (tags applied in place) instead of being copied.
    """
    if consume_override and consume_base and not base and type(override) is YMap:
        result = strip_tags_in_place(override)
        result.loc = getattr(base, "loc", None)  # as when merged into ``base``
        return result  # type: ignore[no-any-return]
    start = base if consume_base else strip_tags(base)
    result = _merge_map(start, override, (), _ROOT, getattr(override, "loc", None))
    return result if isinstance(result, YMap) else YMap(result)


def merge_service(base: YMap, override: YMap, *, consume_base: bool = False) -> YMap:
    """Merge one service onto another with the service rules (used by ``extends``)."""
    start = base if consume_base else strip_tags(base)
    path: Path = ("services", "*")
    result = _merge_map(start, override, path, _SERVICE, getattr(override, "loc", None))
    return result if isinstance(result, YMap) else YMap(result)
