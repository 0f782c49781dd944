"""Inline YAML to a position-tracking tree, for the binding and rendering tests.

Independent of the loader's reader on purpose: these tests exercise binding
and rendering alone, with positions that are easy to predict.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from composer.errors import Location
from composer.schema.tree import YMap, YSeq


def ytree(text: str, file: str = "compose.yaml") -> Any:
    """Parse ``text`` (dedented) into YMap/YSeq with 1-based positions."""
    loader = yaml.SafeLoader(textwrap.dedent(text))
    try:
        node = loader.get_single_node()
        return _build(loader, node, file) if node is not None else YMap()
    finally:
        loader.dispose()


def _loc(node: yaml.Node, file: str) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(loader: yaml.SafeLoader, node: yaml.Node, file: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = YMap(loc=_loc(node, file))
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            out[key] = _build(loader, value_node, file)
            out.key_locs[key] = _loc(key_node, file)
            out.value_locs[key] = _loc(value_node, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = YSeq(loc=_loc(node, file))
        for item in node.value:
            seq.add(_build(loader, item, file), _loc(item, file))
        return seq
    return loader.construct_object(node, deep=True)
