"""Text of the inspection verbs (ps, images, ls, top, events, logs), as Docker Compose writes it.

Pure functions of their arguments: the current time is a parameter (for
"3 minutes ago"), colour is a flag. Tables follow Go's ``tabwriter`` (each
column as wide as its widest cell plus padding, at least a minimum width);
JSON follows Go's ``encoding/json`` (no HTML escaping in these outputs,
keys of maps sorted, fields in struct order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from composer.humanize import human_duration

if TYPE_CHECKING:
    from composer.app_ops import ContainerImage, ProcessTable, ProjectRow
    from composer.backends.base import EngineEvent, LogLine, ObservedContainer, PortBinding


# --- Go's little formatters ---------------------------------------------------------


def human_size(size: float) -> str:
    """go-units ``HumanSizeWithPrecision(size, 3)``: decimal units, 3 significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    value = float(size)
    i = 0
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    return f"{value:.3g}{units[i]}"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` for the printable text a command line is."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ellipsis(text: str, width: int) -> str:
    """docker/cli ``Ellipsis``: cut to ``width`` characters, the last one being "…"."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def go_time(epoch: float) -> str:
    """``time.Unix(t, 0).String()`` in local time: ``2024-01-02 13:23:37 +0100 CET``."""
    moment = datetime.fromtimestamp(int(epoch)).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z ") + (moment.tzname() or "")


def rfc3339_nano(epoch: float, *, utc: bool = False) -> str:
    """Go's ``time.RFC3339Nano`` (trailing zeros of the fraction dropped)."""
    moment = datetime.fromtimestamp(epoch, UTC if utc else None)
    if not utc:
        moment = moment.astimezone()
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "")
    offset = moment.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return text + zone


def rfc3339_nano_fixed(epoch: float) -> str:
    """The docker CLI's log timestamp: UTC, always nine digits of fraction."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def go_json(data: Any) -> str:
    """Compact JSON as ``json.Encoder`` with HTML escaping off writes it (no newline)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def tabwrite(rows: Sequence[Sequence[str]], *, minwidth: int, padding: int) -> str:
    """Go ``tabwriter`` output of tab-separated cells (trailing blanks trimmed)."""
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    widths = [0] * columns
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], minwidth, len(cell) + padding)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + (row[-1] if row else "")).rstrip())
    return "\n".join(lines) + "\n"


# --- ports --------------------------------------------------------------------------


def displayable_ports(bindings: Iterable[PortBinding]) -> str:
    """docker/cli ``DisplayablePorts``: ``0.0.0.0:8080->80/tcp, :::8080->80/tcp, 9000/tcp``.

    Consecutive ports with the same address and protocol fold into ranges.
    """
    ports = sorted(
        bindings, key=lambda p: (p.target, p.host_ip or "", p.host_port or 0, p.protocol)
    )
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for p in ports:
        key = p.protocol
        if p.host_ip or p.host_port:
            ip = p.host_ip or "0.0.0.0"
            if p.host_port != p.target:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{p.host_port}->{p.target}/{p.protocol}")
                continue
            key = f"{ip}/{p.protocol}"
        group = groups.get(key)
        if group is None:
            groups[key] = [p.target, p.target]
            order.append(key)
        elif p.target == group[1] + 1:
            group[1] = p.target
        else:
            result.append(_port_group(key, group[0], group[1]))
            groups[key] = [p.target, p.target]
    result.extend(_port_group(k, *groups[k]) for k in order)
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, sep, proto = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    if sep and ip:
        span = f"{ip}:{span}->{span}"
    return f"{span}/{proto}"


def publishers(bindings: Iterable[PortBinding]) -> list[dict[str, Any]]:
    """``Publishers`` of ``ps --format json``, ordered by target port."""
    return [
        {
            "URL": b.host_ip or ("0.0.0.0" if b.host_port else ""),
            "TargetPort": b.target,
            "PublishedPort": b.host_port or 0,
            "Protocol": b.protocol,
        }
        for b in sorted(bindings, key=lambda b: b.target)
    ]


# --- ps -----------------------------------------------------------------------------


def ps_table(containers: Sequence[ObservedContainer], now: float) -> str:
    """``NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS``, commands cut at 20 characters."""
    rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
    for c in containers:
        rows.append(
            [
                c.name,
                c.image,
                go_quote(ellipsis(c.command, 20)),
                c.service,
                human_duration(now - c.created_at) + " ago",
                c.status,
                displayable_ports(c.ports),
            ]
        )
    return tabwrite(rows, minwidth=10, padding=3)


def ps_record(c: ObservedContainer, project: str, now: float) -> dict[str, Any]:
    """One container as ``docker compose ps --format json`` writes it (keys sorted)."""
    mounts = [*c.volumes, *(name for _, name in c.anonymous_volumes)]
    record = {
        "Command": go_quote(ellipsis(c.command, 20)),
        "CreatedAt": go_time(c.created_at),
        "ExitCode": c.exit_code or 0,
        "Health": c.health or "",
        "ID": c.id[:12],
        "Image": c.image,
        "Labels": ",".join(f"{k}={v}" for k, v in c.labels.items()),
        "LocalVolumes": str(len(mounts)),
        "Mounts": ",".join(ellipsis(m, 15) for m in mounts),
        "Name": c.name,
        "Names": c.name,
        "Networks": ",".join(c.networks),
        "Ports": displayable_ports(c.ports),
        "Project": c.labels.get("com.docker.compose.project", project),
        "Publishers": publishers(c.ports),
        "RunningFor": human_duration(now - c.created_at) + " ago",
        "Service": c.service,
        "Size": "0B",
        "State": c.state,
        "Status": c.status,
    }
    return record


def ps_json(containers: Sequence[ObservedContainer], project: str, now: float) -> str:
    """JSON Lines: one object per container."""
    return "".join(go_json(ps_record(c, project, now)) + "\n" for c in containers)


# --- images, ls, top ----------------------------------------------------------------


def images_table(rows: Sequence[ContainerImage], now: float) -> str:
    """``CONTAINER REPOSITORY TAG IMAGE ID SIZE CREATED``."""
    out = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CREATED"]]
    for row in rows:
        repo, tag = row.repository_tag
        info = row.info
        out.append(
            [
                row.container,
                repo or "<none>",
                tag or "<none>",
                _short_id(info.id) if info else "",
                human_size(info.size) if info else "",
                human_duration(now - info.created) + " ago" if info and info.created else "N/A",
            ]
        )
    return tabwrite(out, minwidth=20, padding=3)


def images_json(rows: Sequence[ContainerImage]) -> str:
    """One JSON array, on one line."""
    data = []
    for row in rows:
        repo, tag = row.repository_tag
        info = row.info
        item: dict[str, Any] = {
            "ID": info.id if info else "",
            "ContainerName": row.container,
            "Repository": repo,
            "Tag": tag,
            "Size": info.size if info else 0,
        }
        if info and info.created:
            item["Created"] = rfc3339_nano(info.created)
        data.append(item)
    return go_json(data) + "\n"


def image_ids(rows: Sequence[ContainerImage]) -> str:
    """``images -q``: each image id once, without ``sha256:``."""
    ids = dict.fromkeys(r.info.id.partition(":")[2] or r.info.id for r in rows if r.info)
    return "".join(f"{i}\n" for i in ids)


def _short_id(image_id: str) -> str:
    return (image_id.partition(":")[2] or image_id)[:12]


def ls_table(rows: Sequence[ProjectRow]) -> str:
    out = [["NAME", "STATUS", "CONFIG FILES"]]
    out.extend([r.name, r.status, r.config_files] for r in rows)
    return tabwrite(out, minwidth=20, padding=3)


def ls_json(rows: Sequence[ProjectRow]) -> str:
    return (
        go_json([{"Name": r.name, "Status": r.status, "ConfigFiles": r.config_files} for r in rows])
        + "\n"
    )


def top_table(tables: Sequence[ProcessTable]) -> str:
    """One table of every container's processes: ``SERVICE # <ps titles…>`` with CMD last."""
    header: list[str] = ["SERVICE", "#"]
    entries: list[dict[str, str]] = []
    for t in tables:
        for proc in t.rows:
            entry = {"SERVICE": t.service, "#": t.replica}
            for i, title in enumerate(t.titles):
                if title not in header:
                    header.append(title)
                entry[title] = proc[i] if i < len(proc) else ""
            entries.append(entry)
    if not entries:
        return ""
    if "CMD" in header:
        header.remove("CMD")
        header.append("CMD")
    rows = [header] + [[e.get(h, "-") for h in header] for e in entries]
    return tabwrite(rows, minwidth=4, padding=2)


# --- events -------------------------------------------------------------------------


def event_text(event: EngineEvent) -> str:
    """``2024-01-02 13:23:37.123456 container start <id> (k=v, …)``."""
    moment = datetime.fromtimestamp(event.time).astimezone()
    attrs = ", ".join(f"{k}={v}" for k, v in event.attributes.items())
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{stamp} container {event.action} {event.id} ({attrs})\n"


def event_json(event: EngineEvent) -> str:
    """``events --json``: one object per line, keys sorted as Go sorts a map."""
    data = {
        "action": event.action,
        "attributes": dict(sorted(event.attributes.items())),
        "id": event.id,
        "service": event.service or "",
        "time": rfc3339_nano(event.time),
        "type": "container",
    }
    return go_json(data) + "\n"


def wait_line(container_id: str, code: int) -> str:
    return f'container "{container_id}" exited with status code {code}\n'


# --- logs ---------------------------------------------------------------------------

LOG_COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


class LogFormatter:
    """Prefixes lines with ``name  | `` padded to the longest name, one colour per name."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        colour: bool = False,
        prefix: bool = True,
        timestamps: bool = False,
    ) -> None:
        self._colour = colour
        self._prefix = prefix
        self._timestamps = timestamps
        self._colours: dict[str, str] = {}
        self._width = 0
        for name in names:
            self._register(name)

    def register(self, names: Iterable[str]) -> None:
        """Names to align prefixes for before their first line arrives."""
        for name in names:
            self._register(name)

    def _register(self, name: str) -> None:
        if name not in self._colours:
            self._colours[name] = LOG_COLOURS[len(self._colours) % len(LOG_COLOURS)]
            self._width = max(self._width, len(name) + 1)

    def format(self, name: str, line: LogLine) -> str:
        self._register(name)
        text = line.text
        if self._timestamps and line.time is not None:
            text = f"{rfc3339_nano_fixed(line.time)} {text}"
        if not self._prefix:
            return text + "\n"
        head = f"{name:<{self._width}} | "
        if self._colour:
            head = f"\x1b[{self._colours[name]}m{head}\x1b[0m"
        return head + text + "\n"
