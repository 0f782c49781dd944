"""``composer image …`` on the Docker Engine: the engine's own answers, passed through.

The native store answers the same questions in the same shapes
(``composer.backends.native.images.admin``), so the CLI renders both alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from composer.backends.docker.session import EngineSession
from composer.errors import BackendError, Unsupported

_CHUNK = 1 << 20


def _messages(chunks: Any, what: str) -> list[dict[str, Any]]:
    """The JSON messages of a streamed engine answer; an ``error`` message raises."""
    out: list[dict[str, Any]] = []
    buffer = b""
    for chunk in chunks:
        if isinstance(chunk, dict):
            out.append(chunk)
            continue
        buffer += chunk if isinstance(chunk, bytes) else str(chunk).encode()
        *lines, buffer = buffer.split(b"\n")
        out.extend(json.loads(line) for line in lines if line.strip())
    if buffer.strip():
        out.append(json.loads(buffer))
    for message in out:
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            raise BackendError(f"{what}: {message.get('error') or detail.get('message')}")
    return out


class DockerImageAdmin(EngineSession):
    """Image administration through the docker SDK: ls, inspect, rm, prune, import, load, save."""

    def summaries(self) -> list[dict[str, Any]]:
        with self._engine("list images") as api:
            return list(api.images())

    def inspect(self, ref: str) -> dict[str, Any]:
        with self._engine(f"inspect image {ref}") as api:
            return dict(api.inspect_image(ref))  # type: ignore[no-untyped-call]

    def remove(self, ref: str, force: bool) -> list[dict[str, str]]:
        with self._engine(f"remove image {ref}") as api:
            return list(api.remove_image(ref, force=force) or [])

    def prune(self, all: bool) -> dict[str, Any]:
        filters = {"dangling": False} if all else None
        with self._engine("prune images") as api:
            result = dict(api.prune_images(filters=filters))  # type: ignore[no-untyped-call]
        result["ImagesDeleted"] = result.get("ImagesDeleted") or []
        return result

    def import_image(
        self, tarball: Path, ref: str | None, changes: Sequence[str], message: str
    ) -> str:
        params: dict[str, Any] = {"fromSrc": "-", "changes": list(changes)}
        if ref:
            params["repo"] = ref
        if message:
            params["message"] = message
        with self._engine(f"import {tarball}") as api, open(tarball, "rb") as f:
            raw: Any = api
            response = raw._post(
                raw._url("/images/create"),
                data=f,
                params=params,
                headers={"Content-Type": "application/tar"},
                stream=True,
            )
            raw._raise_for_status(response)
            messages = _messages(raw._stream_helper(response, decode=True), "import")
        ids = [m["status"] for m in messages if str(m.get("status", "")).startswith("sha256:")]
        if not ids:
            raise BackendError("import: the engine did not report an image id")
        return str(ids[-1])

    def load(self, source: Path) -> list[str]:
        if source.is_dir():
            raise Unsupported(
                f"{source} is a directory: the Docker Engine loads archives only",
                hint=f"make an archive of the layout: tar -cf layout.tar -C {source} .",
            )
        with self._engine(f"load {source}") as api, open(source, "rb") as f:
            messages = _messages(api.load_image(f), "load")  # type: ignore[no-untyped-call]
        return [str(m["stream"]).strip() for m in messages if str(m.get("stream", "")).strip()]

    def save(self, names: Sequence[str], out: BinaryIO) -> None:
        with self._engine(f"save {' '.join(names)}") as api:
            raw: Any = api
            response = raw._get(raw._url("/images/get"), params={"names": list(names)}, stream=True)
            raw._raise_for_status(response)
            for chunk in raw._stream_raw_result(response, _CHUNK, False):
                out.write(chunk)

    def save_to_file(self, names: Sequence[str], path: Path) -> None:
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                self.save(names, f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
