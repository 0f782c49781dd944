"""``composer image import``: a rootfs tarball becomes a one-layer image.

Like ``docker import``, the tarball (plain, gzip, zstd, xz or bzip2) is
the whole filesystem, the config starts empty, and ``--change`` applies
Dockerfile instructions to it: ``CMD``, ``ENTRYPOINT``, ``ENV``,
``EXPOSE``, ``LABEL``, ``STOPSIGNAL``, ``USER``, ``VOLUME``, ``WORKDIR``.
The tarball goes through the same extractor as any layer, so a hostile one
is refused the same way.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from composer.backends.native.images.archive import host_platform
from composer.backends.native.images.store import ImageStore
from composer.errors import ConfigError

CHANGE_HINT = (
    "write a Dockerfile instruction, e.g. 'ENV A=1', 'CMD [\"sh\"]', 'WORKDIR /app'; "
    "allowed: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"
)


def import_rootfs(
    store: ImageStore,
    tarball: Path,
    *,
    ref: str | None = None,
    changes: Sequence[str] = (),
    message: str = "",
    now: datetime | None = None,
) -> str:
    """Store ``tarball`` as an image (tagged ``ref`` if given); returns the image id."""
    config = apply_changes({}, changes)
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with store.lease():
        layer = store.add_layer(tarball)
        os_name, arch = host_platform()
        doc: dict[str, Any] = {
            "architecture": arch,
            "os": os_name,
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [
                {"created": created, "created_by": "composer image import", "comment": message}
            ],
        }
        if not message:
            del doc["history"][0]["comment"]
        raw = json.dumps(doc, separators=(",", ":")).encode()
        image_id = store.put_image(raw, [layer.blob])
        if ref:  # under the lease: a prune cannot take the image before it has its name
            store.tag(ref, image_id)
    return image_id


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """``config`` (a container config: Env, Cmd …) with the ``--change`` instructions applied."""
    out = dict(config)
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if not rest:
            raise ConfigError(
                f"--change {change!r}: {keyword or 'it'} needs an argument", hint=CHANGE_HINT
            )
        if keyword in ("CMD", "ENTRYPOINT"):
            out["Cmd" if keyword == "CMD" else "Entrypoint"] = _command(change, rest)
        elif keyword == "ENV":
            env = [e for e in out.get("Env") or [] if isinstance(e, str)]
            for key, value in _pairs(change, rest):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            out["Env"] = env
        elif keyword == "LABEL":
            labels = dict(out.get("Labels") or {})
            labels.update(_pairs(change, rest))
            out["Labels"] = labels
        elif keyword == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for port in rest.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            out["ExposedPorts"] = ports
        elif keyword == "VOLUME":
            volumes = dict(out.get("Volumes") or {})
            paths = _json_list(change, rest) if rest.startswith("[") else rest.split()
            for path in paths:
                volumes[path] = {}
            out["Volumes"] = volumes
        elif keyword in ("USER", "WORKDIR", "STOPSIGNAL"):
            key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[keyword]
            out[key] = rest
        else:
            raise ConfigError(f"--change {change!r}: {keyword} is not allowed", hint=CHANGE_HINT)
    return out


def _command(change: str, rest: str) -> list[str]:
    if rest.startswith("["):
        return _json_list(change, rest)
    return ["/bin/sh", "-c", rest]


def _json_list(change: str, rest: str) -> list[str]:
    try:
        value = json.loads(rest)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"--change {change!r}: not a JSON list of strings", hint=CHANGE_HINT)
    return value


def _pairs(change: str, rest: str) -> list[tuple[str, str]]:
    """``A=1 "B=two words"`` or the legacy ``A one value`` form."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise ConfigError(f"--change {change!r}: {exc}", hint=CHANGE_HINT) from exc
    if words and "=" not in words[0]:
        key, _, value = rest.partition(" ")
        if not value.strip():
            raise ConfigError(
                f"--change {change!r}: needs KEY=VALUE or KEY VALUE", hint=CHANGE_HINT
            )
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ConfigError(f"--change {change!r}: {word!r} is not KEY=VALUE", hint=CHANGE_HINT)
        pairs.append((key, value))
    return pairs
