"""Use cases of ``composer image ls|inspect|rm|prune|import|load|save``.

Both backends answer through an ``ImageAdmin``: the Docker Engine's answers
pass through (``composer.backends.docker.image_admin``), the native store
builds the same shapes (``composer.backends.native.images.admin``), so the
text here is rendered once, as the docker CLI renders it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from composer.errors import BackendError, PlanError, Unavailable, Unsupported


class ImageAdmin(Protocol):
    """What ``composer image …`` needs from a backend (shapes of the Docker Engine API)."""

    def summaries(self) -> list[dict[str, Any]]: ...
    def inspect(self, ref: str) -> dict[str, Any]: ...
    def remove(self, ref: str, force: bool) -> list[dict[str, str]]: ...
    def prune(self, all: bool) -> dict[str, Any]: ...
    def import_image(
        self, tarball: Path, ref: str | None, changes: Sequence[str], message: str
    ) -> str: ...
    def load(self, source: Path) -> list[str]: ...
    def save(self, names: Sequence[str], out: BinaryIO) -> None: ...
    def save_to_file(self, names: Sequence[str], path: Path) -> None: ...


def open_image_admin(backend: str, environ: Mapping[str, str]) -> ImageAdmin:
    """The image admin of ``backend``; native works on the store under ``COMPOSER_ROOT``."""
    if backend == "docker":
        from composer.backends.docker.image_admin import DockerImageAdmin

        return DockerImageAdmin(environ)
    if backend == "native":
        from composer.backends.native.images.admin import NativeImageAdmin
        from composer.backends.native.state import StateRoot

        root = StateRoot.from_environ(environ)
        try:
            root.ensure()
        except OSError as exc:
            raise Unavailable(
                f"cannot use the state root {root.path}: {exc.strerror or exc}",
                hint="run as root, or point COMPOSER_ROOT at a writable directory",
            ) from exc
        return NativeImageAdmin.from_root(root)
    raise Unsupported(f"unknown backend {backend!r}", hint="choose native or docker")


# -- ls ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRow:
    """One line of ``image ls``: an image under one of its names."""

    repository: str
    tag: str
    id: str
    created: int
    size: int
    digest: str = "<none>"


def split_name(name: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); the colon of a registry port is not a tag."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "<none>"


def image_rows(summaries: Sequence[Mapping[str, Any]]) -> list[ImageRow]:
    """One row per tag (``<none>`` for an untagged image), newest first, as ``docker images``."""
    rows = []
    for image in summaries:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        digests = image.get("RepoDigests") or []
        image_id = str(image["Id"])
        created = int(image.get("Created") or 0)
        size = int(image.get("Size") or 0)
        if not tags:
            repo = split_name(digests[0].split("@")[0])[0] if digests else "<none>"
            rows.append(ImageRow(repo, "<none>", image_id, created, size))
        for tag in tags:
            repo, tagname = split_name(tag)
            rows.append(ImageRow(repo, tagname, image_id, created, size))
    rows.sort(key=lambda r: (-r.created, r.repository, r.tag))
    return rows


def filter_summaries(
    summaries: Sequence[Mapping[str, Any]], filters: Sequence[str]
) -> list[Mapping[str, Any]]:
    """``--filter`` as docker applies it: ``dangling=true|false``, ``reference=PATTERN``,
    ``label=KEY`` or ``label=KEY=VALUE``; several filters must all match."""
    out = list(summaries)
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq or key not in ("dangling", "reference", "label"):
            raise PlanError(
                f"--filter: invalid filter {item!r}",
                hint="use dangling=true|false, reference=PATTERN or label=KEY[=VALUE]",
            )
        if key == "dangling":
            if value not in ("true", "false", "1", "0"):
                raise PlanError(f"--filter: invalid value {value!r} for dangling")
            want = value in ("true", "1")
            out = [s for s in out if (not _tags(s)) == want]
        elif key == "reference":
            out = [s for s in out if any(_matches(value, t) for t in _tags(s))]
        else:
            name, has_value, expected = value.partition("=")
            out = [
                s
                for s in out
                if name in (s.get("Labels") or {})
                and (not has_value or (s.get("Labels") or {})[name] == expected)
            ]
    return out


def _tags(summary: Mapping[str, Any]) -> list[str]:
    return [t for t in summary.get("RepoTags") or [] if t != "<none>:<none>"]


def _matches(pattern: str, tag: str) -> bool:
    """Docker's reference filter: the pattern against ``repo:tag``, or against ``repo`` alone."""
    import fnmatch

    repo = split_name(tag)[0]
    target = tag if ":" in pattern.rsplit("/", 1)[-1] else repo
    return fnmatch.fnmatchcase(target, pattern)


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def render_ls(
    rows: Sequence[ImageRow], *, quiet: bool, fmt: str, now: float, no_trunc: bool = False
) -> str:
    """The table (``docker images``), ``-q`` ids, or one JSON object per line."""
    from composer.humanize import human_duration
    from composer.render_ops import human_size

    ident = (lambda i: i) if no_trunc else short_id

    if quiet:
        seen: list[str] = []
        for row in rows:
            if ident(row.id) not in seen:
                seen.append(ident(row.id))
        return "".join(f"{i}\n" for i in seen)
    if fmt == "json":
        lines = []
        for row in rows:
            since = human_duration(max(0.0, now - row.created)) + " ago"
            created_at = datetime.fromtimestamp(row.created, UTC)
            lines.append(
                json.dumps(
                    {
                        "Containers": "N/A",
                        "CreatedAt": created_at.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
                        "CreatedSince": since,
                        "Digest": row.digest,
                        "ID": ident(row.id),
                        "Repository": row.repository,
                        "SharedSize": "N/A",
                        "Size": human_size(row.size),
                        "Tag": row.tag,
                        "UniqueSize": "N/A",
                        "VirtualSize": _size4(row.size),
                    },
                    separators=(",", ":"),
                )
            )
        return "".join(f"{_go_escape(line)}\n" for line in lines)
    table = [
        (
            row.repository,
            row.tag,
            ident(row.id),
            human_duration(max(0.0, now - row.created)) + " ago",
            human_size(row.size),
        )
        for row in rows
    ]
    return tabwriter(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), table)


def _go_escape(text: str) -> str:
    """Go's JSON encoder escapes HTML characters; docker's ``--format json`` shows them so."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _size4(size: float) -> str:
    """go-units ``HumanSizeWithPrecision(size, 4)`` (docker's VirtualSize column)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    value, i = float(size), 0
    while value >= 1000 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    return f"{value:.4g}{units[i]}"


def tabwriter(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Go's tabwriter as the docker CLI sets it up (min width 10, padding 3)."""
    table = [list(headers), *[list(r) for r in rows]]
    widths = [max(10, *(len(row[i]) + 3 for row in table)) for i in range(len(headers) - 1)]
    return "".join(
        ("".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1]).rstrip() + "\n"
        for row in table
    )


# -- inspect, rm, prune --------------------------------------------------------


@dataclass
class Outcome:
    """Text for stdout and the errors of the names that failed (docker goes on after one)."""

    text: str = ""
    errors: list[BackendError] = field(default_factory=list)


def inspect(admin: ImageAdmin, refs: Sequence[str], fmt: str) -> Outcome:
    """A JSON array (``--format json``, the default) or a ``{{.Field}}`` template per image."""
    from composer.render_output import dump_json

    if fmt != "json" and "{{" not in fmt:
        raise PlanError(
            f"--format: invalid value {fmt!r}", hint="expected json or a template like '{{.Id}}'"
        )
    if fmt != "json":
        render_template(fmt, {})  # an unsupported template fails before any lookup
    found, errors = [], []
    for ref in refs:
        try:
            found.append(admin.inspect(ref))
        except BackendError as exc:
            errors.append(exc)
    if fmt == "json":
        return Outcome(dump_json(found), errors)
    return Outcome("".join(render_template(fmt, doc) + "\n" for doc in found), errors)


_PLACEHOLDER = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def render_template(template: str, doc: Mapping[str, Any]) -> str:
    """The subset of Go templates scripts use with inspect: ``{{.A.B}}`` and ``{{json .A}}``."""

    def field(match: re.Match[str]) -> str:
        value: Any = doc
        for key in filter(None, match.group(2).split(".")):
            value = value.get(key) if isinstance(value, Mapping) else None
        if match.group(1):
            return json.dumps(value, separators=(",", ":"))
        return go_value(value)

    text = _PLACEHOLDER.sub(field, template)
    if "{{" in text:
        raise PlanError(
            f"--format: template {template!r} is not supported",
            hint="use {{.Field.Sub}}, {{json .Field}} or --format json",
        )
    return text


def go_value(value: Any) -> str:
    """A value as Go's ``fmt`` prints it in a template (``[a b]``, ``map[k:v]``, ``<no value>``)."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def remove(admin: ImageAdmin, refs: Sequence[str], force: bool) -> Outcome:
    out = Outcome()
    for ref in refs:
        try:
            report = admin.remove(ref, force)
        except BackendError as exc:
            out.errors.append(exc)
            continue
        for item in report:
            for key, value in item.items():
                out.text += f"{key}: {value}\n"
    return out


def prune(admin: ImageAdmin, all: bool) -> str:
    from composer.render_ops import human_size

    result = admin.prune(all)
    lines = []
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        lines.append("Deleted Images:")
        for item in deleted:
            for key, value in item.items():
                lines.append(f"{key.lower()}: {value}")
        lines.append("")
    lines.append(f"Total reclaimed space: {human_size(int(result.get('SpaceReclaimed') or 0))}")
    return "\n".join(lines) + "\n"


def prune_warning(all: bool) -> str:
    if all:
        return (
            "WARNING! This will remove all images without at least one container "
            "associated to them."
        )
    return "WARNING! This will remove all dangling images."


# -- import, load, save ----------------------------------------------------------


def import_image(
    admin: ImageAdmin, tarball: Path, ref: str | None, changes: Sequence[str], message: str
) -> str:
    if ref:
        from composer.backends.native.images.reference import parse

        parse(ref)  # a bad name is a usage error before anything is read
    if not tarball.is_file():
        raise PlanError(f"open {tarball}: no such file", hint="give a rootfs tarball or '-'")
    return admin.import_image(tarball, ref, changes, message) + "\n"


def load(admin: ImageAdmin, source: Path) -> str:
    if not source.exists():
        raise PlanError(f"open {source}: no such file or directory")
    return "".join(f"{line}\n" for line in admin.load(source))


def save_to(
    admin: ImageAdmin, names: Sequence[str], path: Path | None, out: BinaryIO | None
) -> None:
    if not names:
        raise PlanError(
            "save needs at least one image", hint="composer image save -o FILE IMAGE..."
        )
    if path is not None:
        admin.save_to_file(names, path)
    elif out is not None:
        admin.save(names, out)
    else:
        raise PlanError(
            "cowardly refusing to save to a terminal",
            hint="use the -o flag or redirect the output",
        )
