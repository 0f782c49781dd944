"""Read one Compose YAML document into a position-carrying tree.

Compose files are read the way Docker Compose reads them (its loader uses the
Go ``yaml.v3`` package), not the way PyYAML would construct them: PyYAML
follows YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans and
``1:30`` is a sexagesimal number, which would silently change environment
values and port strings. So PyYAML is used only to *compose* the node graph
(with libyaml when it is present, for speed); scalars are resolved here with
the core-schema rules of ``yaml.v3``, and the tree is built from the nodes so
that every key, value and item keeps its ``file:line:col``.

The reader also does what a YAML constructor would: aliases become independent
copies (later stages mutate the tree), ``<<`` merge keys are applied, the
Compose tags ``!reset`` and ``!override`` are recorded on the parent mapping,
and duplicate keys are refused with both positions named.
"""

from __future__ import annotations

import math
import re
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from composer.errors import ConfigError, Location
from composer.gcpause import paused_gc
from composer.schema.tree import OVERRIDE, RESET, Path, YMap, YSeq, path_str

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = ["parse_yaml", "resolve_plain"]

# Markers our resolver gives untagged nodes, so that an explicit tag (``!!str
# 1``) can be told apart from an implicit one after composition.
_PLAIN = "?plain"
_QUOTED = "?quoted"
_COLLECTION = "?collection"

_YAML_TAG = "tag:yaml.org,2002:"
_STR = _YAML_TAG + "str"
_INT = _YAML_TAG + "int"
_FLOAT = _YAML_TAG + "float"
_BOOL = _YAML_TAG + "bool"
_NULL = _YAML_TAG + "null"
_TIMESTAMP = _YAML_TAG + "timestamp"
_MAP = _YAML_TAG + "map"
_SEQ = _YAML_TAG + "seq"
_MERGE = _YAML_TAG + "merge"
_COMPOSE_TAGS = MappingProxyType({"!reset": RESET, "!override": OVERRIDE})
_STRING_KEY_TAGS = frozenset({_PLAIN, _QUOTED, _STR})
"""Key tags that ``_Builder.key`` accepts as they are and that never mark a merge key
(but a plain ``<<`` is one)."""

# Exact spellings yaml.v3 resolves before looking at numbers.
_SPECIAL: MappingProxyType[str, Any] = MappingProxyType(
    {
        "true": True,
        "True": True,
        "TRUE": True,
        "false": False,
        "False": False,
        "FALSE": False,
        "": None,
        "~": None,
        "null": None,
        "Null": None,
        "NULL": None,
        ".nan": math.nan,
        ".NaN": math.nan,
        ".NAN": math.nan,
        ".inf": math.inf,
        ".Inf": math.inf,
        ".INF": math.inf,
        "+.inf": math.inf,
        "+.Inf": math.inf,
        "+.INF": math.inf,
        "-.inf": -math.inf,
        "-.Inf": -math.inf,
        "-.INF": -math.inf,
    }
)
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9](_?[0-9])*([eE][-+]?[0-9](_?[0-9])*)?")
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

# yaml.v3 refuses documents whose nodes come mostly from alias expansion
# ("billion laughs"); the same thresholds apply here.
_ALIAS_MIN_COUNT = 100
_ALIAS_MIN_DECODED = 1000
_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000


class _Loader(_BaseLoader):
    """A safe loader that leaves scalar resolution to ``resolve_plain``."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _QUOTED
        return _COLLECTION


def parse_yaml(text: str, filename: str) -> Any:
    """Parse one YAML document into YMap/YSeq/scalars with source positions.

    An empty document (nothing, or only comments) gives an empty ``YMap``.
    Every failure is a ``ConfigError`` naming ``filename:line:col``.
    """
    # The reader allocates one object per node and location and frees none of
    # them, so the cyclic garbage collector would only rescan the growing
    # graph over and over (it more than doubles the time of a large file).
    with paused_gc():
        root = _compose(text, filename)
        if root is None:
            return YMap(loc=Location(filename, 1, 1))
        try:
            return _Builder(filename).build_root(root)
        except RecursionError:
            raise ConfigError(
                "the document is nested too deeply", location=_loc(filename, root.start_mark)
            ) from None


def _compose(text: str, filename: str) -> Node | None:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        if not loader.check_node():
            return None
        root = loader.get_node()
        if loader.check_node():
            extra = loader.get_node()
            raise ConfigError(
                "a compose file must hold a single YAML document, found another one",
                location=_loc(filename, extra.start_mark) if extra else None,
            )
        return root
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, filename) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"invalid YAML: {exc.reason} ({_describe_character(exc.character)})",
            location=_offset_location(text, filename, exc.position),
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", location=Location(filename, 1, 1)) from None
    except UnicodeError:
        raise ConfigError(
            "the file is not valid text (it holds an unencodable character)",
            location=Location(filename, 1, 1),
        ) from None
    except RecursionError:
        raise ConfigError(
            "the document is nested too deeply", location=Location(filename, 1, 1)
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    if exc.context and exc.problem:
        where = ""
        if exc.context_mark is not None:
            cm = exc.context_mark
            where = f" started at line {cm.line + 1}, column {cm.column + 1}"
        message += f" ({exc.context}{where})"
    location = _loc(filename, mark) if mark is not None else Location(filename, 1, 1)
    return ConfigError(message, location=location)


def _describe_character(character: int | str) -> str:
    code = character if isinstance(character, int) else ord(character[:1] or "\0")
    return f"character U+{code:04X}"


def _offset_location(text: str, filename: str, position: int) -> Location:
    """Location of a libyaml byte offset (or a character offset) in ``text``."""
    try:
        before = text.encode("utf-8", "surrogatepass")[: max(position, 0)]
        prefix = before.decode("utf-8", "ignore")
    except UnicodeError:  # pragma: no cover - surrogatepass never fails
        prefix = text[:position]
    line = prefix.count("\n") + 1
    column = len(prefix) - (prefix.rfind("\n") + 1) + 1
    return Location(filename, line, column)


def _loc(filename: str, mark: Any) -> Location:
    return Location(filename, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed node graph into the tree; one instance per document."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.decoded = 0
        self.aliased = 0
        self.done: set[int] = set()  # nodes built once: a second visit is an alias
        self.active: set[int] = set()  # nodes being built: a revisit is a cycle

    def loc(self, node: Node) -> Location:
        """Position of a node (1-based)."""
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def error(self, message: str, node: Node, path: Path) -> ConfigError:
        return ConfigError(message, location=self.loc(node), path=path_str(path))

    def build_root(self, node: Node) -> Any:
        return self.build(node, (), False)

    def build(self, node: Node, path: Path, in_alias: bool) -> Any:
        if node.__class__ is ScalarNode:
            # Scalars cannot contain themselves, so they skip the cycle check;
            # they count towards the alias ratio checked at each collection.
            self.decoded += 1
            self.aliased += in_alias
            if node.tag == _PLAIN:
                return resolve_plain(node.value)
            return self.scalar(node, path)
        key = id(node)
        if key in self.active:
            raise self.error("an alias refers to a node that contains it", node, path)
        in_alias = in_alias or key in self.done
        self.count(node, path, in_alias)
        self.active.add(key)
        try:
            if isinstance(node, MappingNode):
                self.check_collection_tag(node, _MAP, path)
                result: Any = self.mapping(node, path, in_alias)
            elif isinstance(node, SequenceNode):
                self.check_collection_tag(node, _SEQ, path)
                result = self.sequence(node, path, in_alias)
            else:  # pragma: no cover - PyYAML has no other node kinds
                raise self.error("unsupported YAML node", node, path)
        finally:
            self.active.discard(key)
        self.done.add(key)
        return result

    def count(self, node: Node, path: Path, in_alias: bool) -> None:
        self.decoded += 1
        if in_alias:
            self.aliased += 1
        if (
            self.aliased > _ALIAS_MIN_COUNT
            and self.decoded > _ALIAS_MIN_DECODED
            and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
        ):
            raise self.error("the document contains excessive aliasing", node, path)

    def check_collection_tag(self, node: Node, expected: str, path: Path) -> None:
        tag = node.tag
        if tag != _COLLECTION and tag != expected and tag not in _COMPOSE_TAGS:
            raise self.error(f"unsupported YAML tag {_short_tag(tag)}", node, path)

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag
        text: str = node.value
        if tag == _PLAIN:
            return resolve_plain(text)
        if tag in (_QUOTED, _STR, _TIMESTAMP):
            return text
        if tag in _COMPOSE_TAGS:
            return text if node.style else resolve_plain(text)
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            return self.typed_scalar(node, path)
        raise self.error(f"unsupported YAML tag {_short_tag(tag)}", node, path)

    def typed_scalar(self, node: ScalarNode, path: Path) -> Any:
        """A scalar with an explicit ``!!int``/``!!float``/``!!bool``/``!!null`` tag."""
        value = resolve_plain(node.value)
        tag = node.tag
        if tag == _INT and type(value) is int:
            return value
        if tag == _FLOAT and type(value) in (int, float):
            return float(value)
        if tag == _BOOL and type(value) is bool:
            return value
        if tag == _NULL and value is None:
            return None
        raise self.error(
            f"cannot decode {node.value!r} as a {_short_tag(tag)}",
            node,
            path,
        )

    def key(self, node: Node, path: Path) -> str:
        if not isinstance(node, ScalarNode):
            raise self.error("a mapping key must be a string, not a collection", node, path)
        tag = node.tag
        if tag not in (_PLAIN, _QUOTED, _STR, _INT, _FLOAT, _BOOL, _NULL):
            raise self.error(f"unsupported YAML tag {_short_tag(tag)} on a key", node, path)
        text: str = node.value
        return text

    def mapping(self, node: MappingNode, path: Path, in_alias: bool) -> YMap:
        file = self.file
        mark = node.start_mark
        out = YMap(loc=Location(file, mark.line + 1, mark.column + 1))
        key_locs = out.key_locs
        value_locs = out.value_locs
        pairs: list[tuple[Node, Node]] = node.value
        first_line: dict[str, int] = {}
        entries: list[tuple[str | None, Location, Node]] = []
        for key_node, value_node in pairs:
            # The usual key (a plain or quoted string) is read inline; merge
            # keys and anything unusual take the slower checks.
            if key_node.__class__ is ScalarNode and key_node.tag in _STRING_KEY_TAGS:
                key: str = key_node.value
                is_merge = key == "<<" and key_node.tag == _PLAIN
            else:
                is_merge = _is_merge_key(key_node)
                key = "<<" if is_merge else self.key(key_node, path)
            mark = key_node.start_mark
            line = mark.line + 1
            if key in first_line:
                raise ConfigError(
                    f"duplicate key {key!r} (first defined at line {first_line[key]})",
                    location=Location(file, line, mark.column + 1),
                    path=path_str((*path, key)),
                )
            first_line[key] = line
            key_loc = Location(file, line, mark.column + 1)
            entries.append((None if is_merge else key, key_loc, value_node))

        for entry_key, key_loc, value_node in entries:
            if entry_key is None:
                for source in self.merge_sources(value_node, path, in_alias):
                    for merged_key, merged_value in source.items():
                        if merged_key not in first_line and merged_key not in out:
                            out[merged_key] = merged_value
                            out.copy_locs_from(source, merged_key)
                continue
            key = entry_key
            tag = value_node.tag
            if tag == _PLAIN and value_node.__class__ is ScalarNode:
                self.decoded += 1
                self.aliased += in_alias
                out[key] = resolve_plain(value_node.value)
            else:
                out[key] = self.build(value_node, (*path, key), in_alias)
                compose_tag = _COMPOSE_TAGS.get(tag)
                if compose_tag is not None:
                    out.tags[key] = compose_tag
            key_locs[key] = key_loc
            mark = value_node.start_mark
            value_locs[key] = Location(file, mark.line + 1, mark.column + 1)
        return out

    def merge_sources(self, node: Node, path: Path, in_alias: bool) -> list[YMap]:
        """The mappings a ``<<`` key merges, earliest first."""
        candidates: list[Node] = list(node.value) if isinstance(node, SequenceNode) else [node]
        sources: list[YMap] = []
        for candidate in candidates:
            if not isinstance(candidate, MappingNode):
                raise self.error(
                    "the merge key '<<' needs a mapping or a sequence of mappings",
                    candidate,
                    path,
                )
            built = self.build(candidate, path, in_alias)
            sources.append(built)
        return sources

    def sequence(self, node: SequenceNode, path: Path, in_alias: bool) -> YSeq:
        file = self.file
        items: list[Any] = []
        locs: list[Location | None] = []
        for item in node.value:
            if item.tag == "!reset":
                continue  # as in Docker Compose: a reset item is dropped
            items.append(self.build(item, (*path, len(items)), in_alias))
            mark = item.start_mark
            locs.append(Location(file, mark.line + 1, mark.column + 1))
        out = YSeq(items, loc=Location(file, node.start_mark.line + 1, node.start_mark.column + 1))
        out.item_locs = locs
        return out


def _is_merge_key(node: Node) -> bool:
    return isinstance(node, ScalarNode) and (
        node.tag == _MERGE or (node.tag == _PLAIN and node.value == "<<")
    )


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    span = _ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW
    return 0.99 - 0.89 * (decoded - _ALIAS_RATIO_LOW) / span


def resolve_plain(text: str) -> Any:
    """Resolve an untagged plain scalar the way Docker Compose's YAML reader does.

    YAML 1.2 core schema as implemented by ``yaml.v3``: only ``true``/``false``
    (three spellings each) are booleans, ``null``/``~``/empty are null, and
    numbers follow Go's ``strconv`` syntax after removing ``_``: ``0x1F``,
    ``0o17``, ``0b101`` and the legacy octal ``0755`` (= 493) are integers,
    while ``08`` (not octal) falls through to the float 8.0. Out-of-range
    numbers stay strings. Timestamps stay strings.
    """
    special = _SPECIAL.get(text, _SPECIAL)
    if special is not _SPECIAL:
        return special
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text):
            value = float(text.replace("_", ""))
            if not math.isinf(value):
                return value
        return text
    if first in "+-0123456789":
        number = _resolve_number(text.replace("_", ""))
        if number is not None:
            return number
    return text


def _resolve_number(plain: str) -> int | float | None:
    signed = _go_parse_int(plain, 0)
    if signed is not None:
        return signed
    unsigned = _go_parse_uint(plain, 0)
    if unsigned is not None:
        return unsigned
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):
            return value
    for prefix, base in (("0b", 2), ("0o", 8)):
        if plain.startswith(prefix):
            rest = plain[2:]
            signed = _go_parse_int(rest, base)
            return signed if signed is not None else _go_parse_uint(rest, base)
        if plain.startswith("-" + prefix):
            return _go_parse_int("-" + plain[3:], base)
    return None


def _go_parse_int(text: str, base: int) -> int | None:
    """``strconv.ParseInt(text, base, 64)``: optional sign, int64 range."""
    negative = text.startswith("-")
    digits = text[1:] if text[:1] in ("+", "-") else text
    value = _go_parse_uint(digits, base)
    if value is None:
        return None
    if negative:
        return -value if value <= _INT64_MAX + 1 else None
    return value if value <= _INT64_MAX else None


def _go_parse_uint(text: str, base: int) -> int | None:
    """``strconv.ParseUint(text, base, 64)`` without underscores: no sign, uint64 range."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                text = text[2:]
            else:
                base = 8
                text = text[1:]
    value = 0
    for char in text:
        if "0" <= char <= "9":
            digit = ord(char) - 48
        elif "a" <= char <= "z" or "A" <= char <= "Z":
            digit = ord(char.lower()) - 87
        else:
            return None
        if digit >= base:
            return None
        value = value * base + digit
    return value if value <= _UINT64_MAX else None
