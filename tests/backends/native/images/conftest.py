"""Fixtures for the image store tests: a fresh state root per test and a tar builder."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.store import ImageStore
from composer.backends.native.state import StateRoot


class Tar:
    """Builds a tar archive entry by entry (for layers, good and malicious)."""

    def __init__(self, fmt: int = tarfile.PAX_FORMAT) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=fmt)  # noqa: SIM115 - closed in bytes()

    def _info(self, name: str, kind: bytes, **kw: Any) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mtime = kw.pop("mtime", 1_600_000_000)
        info.mode = kw.pop("mode", 0o644)
        for key, value in kw.items():
            setattr(info, key, value)
        return info

    def file(self, name: str, data: bytes = b"", **kw: Any) -> Tar:
        info = self._info(name, tarfile.REGTYPE, size=len(data), **kw)
        self.tf.addfile(info, io.BytesIO(data))
        return self

    def dir(self, name: str, **kw: Any) -> Tar:
        kw.setdefault("mode", 0o755)
        self.tf.addfile(self._info(name, tarfile.DIRTYPE, **kw))
        return self

    def symlink(self, name: str, target: str, **kw: Any) -> Tar:
        kw.setdefault("mode", 0o777)
        self.tf.addfile(self._info(name, tarfile.SYMTYPE, linkname=target, **kw))
        return self

    def hardlink(self, name: str, target: str, **kw: Any) -> Tar:
        self.tf.addfile(self._info(name, tarfile.LNKTYPE, linkname=target, **kw))
        return self

    def chardev(self, name: str, major: int, minor: int, **kw: Any) -> Tar:
        info = self._info(name, tarfile.CHRTYPE, devmajor=major, devminor=minor, **kw)
        self.tf.addfile(info)
        return self

    def fifo(self, name: str, **kw: Any) -> Tar:
        self.tf.addfile(self._info(name, tarfile.FIFOTYPE, **kw))
        return self

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()

    def gzip(self) -> bytes:
        return gzip.compress(self.bytes(), mtime=0)

    def zstd(self) -> bytes:
        import zstandard

        return zstandard.ZstdCompressor().compress(self.bytes())


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(diff_ids: list[str], **config: Any) -> bytes:
    """An image config as docker writes it, for the given layers."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": config.pop("created", "2024-01-01T00:00:00Z"),
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"], **config},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(doc).encode()


@pytest.fixture
def tar() -> type[Tar]:
    return Tar


@pytest.fixture
def state_root(tmp_path: Path) -> StateRoot:
    return StateRoot(tmp_path / "state").ensure()


@pytest.fixture
def store(state_root: StateRoot) -> Iterator[ImageStore]:
    yield ImageStore(state_root)


@pytest.fixture
def helpers() -> Any:
    """``sha`` and ``image_config`` for tests (conftest names are not importable)."""

    class H:
        sha = staticmethod(sha)
        image_config = staticmethod(image_config)

    return H


def _docker_ready() -> str | None:
    """Why docker cannot be used here, or None."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    probe = subprocess.run(
        ["docker", "image", "inspect", "bb:latest"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"no Docker engine with bb:latest ({probe.stderr.strip()[:200]})"
    return None


@pytest.fixture(scope="session")
def bb_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docker save bb:latest`` (Docker 20.10 writes the legacy layout)."""
    why = _docker_ready()
    if why is not None:
        from tests.backends.conftest import engine_missing

        engine_missing(f"{why}: run `bash scripts/engines.sh start`")
    out = tmp_path_factory.mktemp("bb") / "bb.tar"
    subprocess.run(["docker", "save", "-o", str(out), "bb:latest"], check=True)
    return out


@pytest.fixture(scope="session")
def bb_id() -> str:
    """The image id docker gives bb:latest."""
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", "bb:latest"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()
