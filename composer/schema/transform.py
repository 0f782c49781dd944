"""Turn every short syntax of one Compose file into the canonical long form.

This runs per file, after interpolation and before ``extends`` and merging,
because the merge rules are written for long forms only: two files that spell
the same port as ``"80:80"`` and as a mapping must meet as the same thing.
The long forms are the ones ``composer/schema/model.py`` binds, which are the
ones ``docker compose config`` prints.

Parsing follows compose-go (its ``transform`` and ``format`` packages and the
Docker port parser) so that odd inputs mean here what they mean there. A new
container gets the position of the value it replaces, and the tags of the
parent mapping are untouched, so errors after this stage still point at the
user's text and ``!reset``/``!override`` survive for the merge. Values that
are not short syntax and not of a shape this stage understands are left alone
for binding to report.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from composer.errors import ConfigError, Location, Problem
from composer.schema.tree import Path, YMap, YSeq, loc_of, path_str

__all__ = ["parse_port", "parse_volume", "transform_file"]

Warn = Callable[[str], None]

_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_SIMPLE_PORT = re.compile(r"(?:([0-9.]+):)??(?:([0-9]{1,5}):)?([0-9]{1,5})(?:/(tcp|udp|sctp))?")
_SHELL_SPECIAL = frozenset("'\"\\")
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
_PROPAGATIONS = frozenset({"rprivate", "private", "rshared", "shared", "rslave", "slave"})
_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")


@dataclass
class _Ctx:
    """Problems found so far in one file, reported together at the end."""

    filename: str
    warn: Warn | None
    problems: list[Problem] = field(default_factory=list)

    def bad(self, loc: Location | None, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(message, loc, path_str(path), hint))


# --- scalar helpers -----------------------------------------------------------


def _text(value: Any) -> str:
    """A scalar as Go's ``fmt.Sprint`` would print it (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _new_map(items: dict[str, Any], loc: Location | None) -> YMap:
    """A mapping built from short syntax: every key stands where the text stood."""
    out = YMap(items, loc)
    if loc is not None:
        out.key_locs = locs = dict.fromkeys(items, loc)
        out.value_locs = locs.copy()
    return out


def _item_locs(seq: list[Any], loc: Location | None) -> list[Location | None]:
    """The position of every item of ``seq`` (the sequence's own when unknown)."""
    if isinstance(seq, YSeq):
        locs = seq.item_locs
        if len(locs) == len(seq) and None not in locs:
            return locs
        seq.loc_of(0)  # aligns item_locs with the items
        return [item_loc or loc for item_loc in seq.item_locs]
    return [loc] * len(seq)


def _list_of(value: Any, loc: Location | None) -> YSeq:
    out = YSeq((value,), loc)
    out.item_locs = [loc]
    return out


# --- ports --------------------------------------------------------------------


def _port_range(text: str) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    if not dash:
        last = first
    if not (first.isdigit() and last.isdigit() and first.isascii() and last.isascii()):
        raise ValueError  # also refuses "1-2-3", whose last part has a dash
    start, end = int(first), int(last)
    if end > 65535 or end < start:
        raise ValueError
    return start, end


def _simple_port(spec: str) -> dict[str, Any] | None:
    """The common ``[ipv4:]host:container[/proto]`` without ranges, or None."""
    match = _SIMPLE_PORT.fullmatch(spec)
    if match is None:
        return None
    ip, host, container, proto = match.groups()
    if (ip is not None and (host is None or not _IPV4.fullmatch(ip))) or int(container) > 65535:
        return None
    if host is not None and int(host) > 65535:
        return None
    entry: dict[str, Any] = {"mode": "ingress"}
    if ip is not None:
        entry["host_ip"] = ip
    entry["target"] = int(container)
    if host is not None:
        entry["published"] = str(int(host))
    entry["protocol"] = proto or "tcp"
    return entry


def parse_port(spec: str) -> list[dict[str, Any]]:
    """Expand one short port spec (``[ip:][host:]container[/proto]``) to long forms.

    Raises ValueError with a readable message. A container range expands to
    one entry per port; a host range against a single container port stays a
    range in ``published`` (the engine picks one port of it).
    """
    simple = _simple_port(spec)
    if simple is not None:
        return [simple]
    parts = spec.split(":")
    container = parts[-1]
    ip = ":".join(parts[:-2]) if len(parts) > 2 else ""
    host = parts[-2] if len(parts) > 1 else ""
    proto_parts = container.split("/")
    container = proto_parts[0]
    proto = proto_parts[1] if len(proto_parts) > 1 and proto_parts[1] else "tcp"
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise ValueError(f"invalid IP address {ip}")
        ip = ip[1:-1]
    if ip and not _IPV4.fullmatch(ip):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {ip}") from None
    if not container:
        raise ValueError(f"no port specified: {spec}<empty>")
    try:
        start, end = _port_range(container)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container}") from None
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = _port_range(host)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host}") from None
        if end - start != host_end - host_start and end != start:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
    proto = proto.lower()
    if proto not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {proto}")
    out: list[dict[str, Any]] = []
    for i in range(end - start + 1):
        entry: dict[str, Any] = {"mode": "ingress"}
        if ip:
            entry["host_ip"] = ip
        entry["target"] = start + i
        if host:
            published = str(host_start + i)
            if start == end and host_start != host_end:
                published = f"{published}-{host_end}"
            entry["published"] = published
        entry["protocol"] = proto
        out.append(entry)
    # Docker keys its result by "port/proto" and Compose sorts those strings.
    out.sort(key=lambda e: f"{e['target']}/{proto}")
    return out


def _ports(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if not isinstance(value, list):
        return value
    out = YSeq(loc=loc)
    for i, (item, item_loc) in enumerate(zip(value, _item_locs(value, loc), strict=True)):
        if isinstance(item, dict):
            published = item.get("published")
            if isinstance(published, int) and not isinstance(published, bool):
                item["published"] = str(published)
            out.add(item, item_loc)
            continue
        if (isinstance(item, int) and not isinstance(item, bool)) or isinstance(item, str):
            try:
                entries = parse_port(str(item))
            except ValueError as exc:
                ctx.bad(item_loc, (*path, i), str(exc))
                continue
            for entry in entries:
                out.add(_new_map(entry, item_loc), item_loc)
            continue
        out.add(item, item_loc)  # wrong type: binding reports it
    return out


# --- volumes ------------------------------------------------------------------


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in "./~" or source.startswith("\\\\"):
        return True
    return len(source) > 1 and source[1] == ":" and source[0].isalpha()


def _clean_target(target: str) -> str:
    if not target:
        return target
    cleaned = posixpath.normpath(target)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _split_volume(spec: str) -> list[str]:
    """Split at ``:`` outside ``${...}`` and not after a one-letter drive name."""
    fields: list[str] = []
    buffer: list[str] = []
    depth = 0
    n = len(spec)
    for i, char in enumerate(spec):
        if char == "$" and i + 1 < n and spec[i + 1] == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
        elif char == ":" and depth == 0 and not (len(buffer) == 1 and buffer[0].isalpha()):
            if not buffer:
                raise ValueError("empty section between colons")
            fields.append("".join(buffer))
            buffer = []
            continue
        buffer.append(char)
    if not buffer:
        raise ValueError("empty section between colons")
    fields.append("".join(buffer))
    return fields


def parse_volume(spec: str) -> dict[str, Any]:
    """Turn ``[SOURCE:]TARGET[:MODE]`` into a long-form mount (ValueError if malformed)."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": _clean_target(spec)}
    try:
        fields = _split_volume(spec)
        if len(fields) > 3:
            raise ValueError("too many colons")
    except ValueError as exc:
        raise ValueError(f"invalid spec: {spec}: {exc}") from None
    source = fields[0] if len(fields) > 1 else ""
    target = fields[1] if len(fields) > 1 else fields[0]
    read_only = False
    bind: dict[str, Any] = {}
    volume: dict[str, Any] | None = None
    if len(fields) == 3:
        for option in fields[2].split(","):
            if option in ("ro", "rw"):
                read_only = option == "ro"
            elif option == "nocopy":
                volume = {"nocopy": True}
            elif option in ("z", "Z"):
                bind["selinux"] = option
            elif option in _PROPAGATIONS:
                bind["propagation"] = option
            # other options (consistency values, typos) are ignored, as Compose does
    out: dict[str, Any] = {"type": "bind" if _is_file_path(source) else "volume"}
    if source:
        out["source"] = source
    out["target"] = _clean_target(target)
    if read_only:
        out["read_only"] = True
    if out["type"] == "bind":
        bind["create_host_path"] = True
    if bind:
        out["bind"] = bind
    if out["type"] == "volume":
        out["volume"] = volume or {}
    return out


def _volumes(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if not isinstance(value, list):
        return value
    for i, (item, item_loc) in enumerate(zip(value, _item_locs(value, loc), strict=True)):
        if isinstance(item, str):
            try:
                long = parse_volume(item)
            except ValueError as exc:
                ctx.bad(item_loc, (*path, i), str(exc))
                continue
            value[i] = _deep_map(long, item_loc)
    return value


def _deep_map(items: dict[str, Any], loc: Location | None) -> YMap:
    for key in ("bind", "volume"):  # the only nested mappings parse_volume makes
        if key in items:
            items[key] = _new_map(items[key], loc)
    return _new_map(items, loc)


# --- mappings written as lists ------------------------------------------------


def _key_value(
    bare: Any, separators: str = "=", *, strict: bool = False
) -> Callable[[_Ctx, Any, Location | None, Path], Any]:
    """``["K=V", "K"]`` → ``{K: V, K: bare}``; mapping values become strings.

    ``bare`` is what a key without ``=`` maps to (None for environment and
    build args, where it means "take it from the environment"; "" for labels).
    """

    def run(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if item is None:
                    if bare is not None:
                        value[key] = bare
                elif not isinstance(item, str) and not isinstance(item, dict | list):
                    value[key] = _text(item)
            return value
        if not isinstance(value, list):
            return value
        out = YMap(loc=loc)
        for i, (item, item_loc) in enumerate(zip(value, _item_locs(value, loc), strict=True)):
            if isinstance(item, dict | list):
                ctx.bad(item_loc, (*path, i), "expected a KEY=VALUE string")
                continue
            text = _text(item) if item is not None else ""
            key, sep, rest = text.partition(separators)
            if not sep and strict:
                ctx.bad(item_loc, (*path, i), f"invalid value {text!r}, expected key=value")
                continue
            if key and key[-1].isspace():
                ctx.bad(item_loc, (*path, i), f"variable {key!r} is declared with a trailing space")
                continue
            out[key] = rest if sep else bare
            if item_loc is not None:
                out.key_locs[key] = out.value_locs[key] = item_loc
        return out

    return run


def _extra_hosts(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    """``host=ip``/``host:ip`` items or a mapping → ``{host: [ip, ...]}``."""
    out = YMap(loc=loc)
    if isinstance(value, dict):
        for host, ips in value.items():
            item_loc = loc_of(value, host) or loc
            listed = YSeq((_text(ip) for ip in ips), item_loc) if isinstance(ips, list) else None
            if listed is None:
                listed = _list_of("" if ips is None else _text(ips), item_loc)
            out.set(host, listed, item_loc)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            item_loc = loc_of(value, i) or loc
            text = _text(item)
            host, sep, ips = text.partition("=")
            if not sep:
                host, sep, ips = text.partition(":")
            if not sep:
                ctx.bad(item_loc, (*path, i), f"invalid additional host, missing IP: {text}")
                continue
            if host in out:
                out[host].extend(ips.split(","))
            else:
                out.set(host, YSeq(ips.split(","), item_loc), item_loc)
    else:
        return value
    for host, ips in out.items():
        if not host or ":" in host or "=" in host:
            ctx.bad(out.loc_of(host), (*path, host), f"bad host name {host!r}")
        ips[:] = [ip[1:-1] if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]" else ip for ip in ips]
    return out


def _names_to_map(
    default: Callable[[Location | None], Any],
) -> Callable[[_Ctx, Any, Location | None, Path], Any]:
    """A list of names → a mapping of name to ``default()`` (networks, depends_on)."""

    def run(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
        if not isinstance(value, list):
            return value
        out = YMap(loc=loc)
        for i, (item, item_loc) in enumerate(zip(value, _item_locs(value, loc), strict=True)):
            if not isinstance(item, str):
                ctx.bad(item_loc, (*path, i), "expected a name")
                continue
            out.set(item, default(item_loc), item_loc)
        return out

    return run


def _depends_on(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            if isinstance(item, dict):
                item.setdefault("condition", "service_started")
                item.setdefault("required", True)
        return value
    return _DEPENDS_ON_LIST(ctx, value, loc, path)


_DEPENDS_ON_LIST = _names_to_map(
    lambda loc: _new_map({"condition": "service_started", "required": True}, loc)
)


# --- one-liners ---------------------------------------------------------------


def _string_to_list(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    return _list_of(value, loc) if isinstance(value, str) else value


def _shell_words(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if not isinstance(value, str):
        return value
    if _SHELL_SPECIAL.isdisjoint(value):
        return YSeq(value.split(), loc)  # what shlex gives, much faster
    try:
        return YSeq(shlex.split(value), loc)
    except ValueError as exc:
        ctx.bad(loc, path, f"cannot split command {value!r}: {exc}")
        return value


def _to_map(key: str) -> Callable[[_Ctx, Any, Location | None, Path], Any]:
    def run(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
        return _new_map({key: value}, loc) if isinstance(value, str) else value

    return run


def _items(
    rule: Callable[[_Ctx, Any, Location | None, Path], Any],
) -> Callable[[_Ctx, Any, Location | None, Path], Any]:
    """Apply ``rule`` to each item of a list (or each value of a mapping)."""

    def run(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None:
                    value[i] = rule(ctx, item, loc_of(value, i) or loc, (*path, i))
        elif isinstance(value, dict):
            _apply(ctx, value, path, rule)
        return value

    return run


def _apply(ctx: _Ctx, node: dict[Any, Any], path: Path, rule: Any) -> None:
    for key, item in node.items():
        if item is not None:
            new = rule(ctx, item, loc_of(node, key), (*path, key))
            if new is not item:
                node[key] = new


def _stringify(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if item is not None and not isinstance(item, str | dict | list):
                value[key] = _text(item)
    return value


def _env_file(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, str):
        value = _list_of(value, loc)
    if not isinstance(value, list):
        return value
    for i, item in enumerate(value):
        if isinstance(item, str):
            value[i] = _new_map({"path": item, "required": True}, loc_of(value, i) or loc)
        elif isinstance(item, dict):
            item.setdefault("required", True)
    return value


def _device(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) > 3:
        ctx.bad(loc, path, f"confusing device mapping, please use long syntax: {value}")
        return value
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1] else source
    permissions = parts[2] if len(parts) > 2 else "rwm"
    return _new_map({"source": source, "target": target, "permissions": permissions}, loc)


def _healthcheck_test(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, str):
        return YSeq(("CMD-SHELL", value), loc)
    return value


def _expose(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, list):
        value[:] = [_text(v) if isinstance(v, int | float) else v for v in value]
    return value


def _gpus(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, str):
        return YSeq((_new_map({"count": -1}, loc),), loc)
    return _device_requests(ctx, value, loc, path)


def _device_requests(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item.get("count") == "all":
                item["count"] = -1
    return value


def _ulimit(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _new_map({"single": value}, loc)
    return value


def _string_or_x(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    return value if isinstance(value, str | dict | list) else _text(value)


def _include_entry(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, str):
        return _new_map({"path": _list_of(value, loc)}, loc)
    if isinstance(value, dict):
        for key in ("path", "env_file"):
            item = value.get(key)
            if isinstance(item, str):
                value[key] = _list_of(item, loc_of(value, key) or loc)
    return value


def _maybe_external(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    """``external: {name: x}`` (deprecated) → ``external: true`` plus ``name: x``."""
    if not isinstance(value, dict):
        return value
    labels = value.get("labels")
    if labels is not None:
        value["labels"] = _key_value("")(ctx, labels, loc_of(value, "labels") or loc, path)
    for key in ("driver_opts",):
        if isinstance(value.get(key), dict):
            _stringify(ctx, value[key], loc, path)
    external = value.get("external")
    if not isinstance(external, dict):
        return value
    ext_loc = loc_of(value, "external") or loc
    value["external"] = True
    if "name" in external:
        if ctx.warn is not None:
            ctx.warn(f"{path_str(path)}: external.name is deprecated. Use name and external: true")
        if "name" in value and value["name"] != external["name"]:
            ctx.bad(ext_loc, (*path, "external"), "name and external.name conflict; only use name")
        elif isinstance(value, YMap):
            value.set("name", external["name"], loc_of(external, "name") or ext_loc)
        else:
            value["name"] = external["name"]
    return value


# --- the tables ---------------------------------------------------------------

Rule = Callable[[_Ctx, Any, Location | None, Path], Any]


def _sub(table: MappingProxyType[str, Rule]) -> Rule:
    """Descend into a mapping and apply ``table`` to its keys."""

    def run(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
        if isinstance(value, dict):
            _run_table(ctx, value, path, table)
        return value

    return run


def _run_table(
    ctx: _Ctx, node: dict[Any, Any], path: Path, table: MappingProxyType[str, Rule]
) -> None:
    for key, value in node.items():
        rule = table.get(key)
        if rule is not None and value is not None:
            new = rule(ctx, value, loc_of(node, key), (*path, key))
            if new is not value:
                node[key] = new


def _build(ctx: _Ctx, value: Any, loc: Location | None, path: Path) -> Any:
    if isinstance(value, str):
        return _new_map({"context": value}, loc)
    return _sub(_BUILD)(ctx, value, loc, path)


_ENVIRONMENT = _key_value(None)
_LABELS = _key_value("")
_HOOK = _sub(MappingProxyType({"command": _shell_words, "environment": _ENVIRONMENT}))

_BUILD: MappingProxyType[str, Rule] = MappingProxyType(
    {
        "args": _ENVIRONMENT,
        "labels": _LABELS,
        "additional_contexts": _key_value(None, strict=True),
        "extra_hosts": _extra_hosts,
        "secrets": _items(_to_map("source")),
        "ulimits": _items(_ulimit),
        "ssh": _string_to_list,
        "cache_from": _string_to_list,
        "cache_to": _string_to_list,
        "tags": _string_to_list,
        "platforms": _string_to_list,
        "provenance": _string_or_x,
        "sbom": _string_or_x,
    }
)

_SERVICE: MappingProxyType[str, Rule] = MappingProxyType(
    {
        "annotations": _LABELS,
        "build": _build,
        "command": _shell_words,
        "configs": _items(_to_map("source")),
        "depends_on": _depends_on,
        "deploy": _sub(
            MappingProxyType(
                {
                    "labels": _LABELS,
                    "resources": _sub(
                        MappingProxyType(
                            {"reservations": _sub(MappingProxyType({"devices": _device_requests}))}
                        )
                    ),
                }
            )
        ),
        "develop": _sub(
            MappingProxyType(
                {
                    "watch": _items(
                        _sub(
                            MappingProxyType(
                                {
                                    "exec": _HOOK,
                                    "ignore": _string_to_list,
                                    "include": _string_to_list,
                                }
                            )
                        )
                    )
                }
            )
        ),
        "devices": _items(_device),
        "dns": _string_to_list,
        "dns_opt": _string_to_list,
        "dns_search": _string_to_list,
        "entrypoint": _shell_words,
        "env_file": _env_file,
        "environment": _ENVIRONMENT,
        "expose": _expose,
        "extends": _to_map("service"),
        "extra_hosts": _extra_hosts,
        "gpus": _gpus,
        "healthcheck": _sub(MappingProxyType({"test": _healthcheck_test})),
        "label_file": _string_to_list,
        "labels": _LABELS,
        "logging": _sub(MappingProxyType({"options": _stringify})),
        "models": _names_to_map(lambda loc: None),
        "networks": _names_to_map(lambda loc: None),
        "ports": _ports,
        "post_start": _items(_HOOK),
        "pre_stop": _items(_HOOK),
        "secrets": _items(_to_map("source")),
        "storage_opt": _stringify,
        "sysctls": _LABELS,
        "tmpfs": _string_to_list,
        "ulimits": _items(_ulimit),
        "volumes": _volumes,
    }
)

_RESOURCE = _items(_maybe_external)

_TOP: MappingProxyType[str, Rule] = MappingProxyType(
    {
        "services": _items(_sub(_SERVICE)),
        "networks": _RESOURCE,
        "volumes": _RESOURCE,
        "secrets": _RESOURCE,
        "configs": _RESOURCE,
        "include": _items(_include_entry),
    }
)


def transform_file(tree: YMap, *, filename: str, warn: Warn | None = None) -> YMap:
    """Rewrite every short syntax in ``tree`` into its long form, in place.

    Returns ``tree`` itself. All malformed short syntax of the file is
    reported at once, in document order, as one ConfigError.
    """
    ctx = _Ctx(filename, warn)
    if isinstance(tree, dict):
        _run_table(ctx, tree, (), _TOP)
    if ctx.problems:
        problems = sorted(
            ctx.problems,
            key=lambda p: (0, p.location.line, p.location.column) if p.location else (1, 0, 0),
        )
        raise ConfigError(f"{filename}: invalid short syntax", problems=problems)
    return tree
