"""Fixtures for builder tests: a native store holding bb:latest, and running a built image."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer.backends.native.images.store import ImageStore
from composer.backends.native.state import StateRoot

BASE = "bb:latest"


def _need_root_and_docker() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the native builder tests need root (CI=true)")
        pytest.skip("the native builder needs root")


@pytest.fixture(scope="session")
def bb_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docker save bb:latest`` once per session (made by scripts/engines.sh start)."""
    _need_root_and_docker()
    path = tmp_path_factory.mktemp("bb") / "bb.tar"
    try:
        subprocess.run(["docker", "save", "-o", str(path), BASE], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"docker save {BASE} failed: {exc}")
        pytest.skip(f"no {BASE} in docker: run `bash scripts/engines.sh start`")
    return path


@pytest.fixture
def store(tmp_path: Path, bb_archive: Path) -> ImageStore:
    from composer.backends.native.images import archive

    root = StateRoot(tmp_path / "state").ensure()
    s = ImageStore(root)
    archive.load(s, bb_archive, tag=BASE)
    return s


@dataclass
class Ran:
    code: int
    output: str


def run_image(store: ImageStore, image_id: str, *args: str) -> Ran:
    """Run ``args`` (or the image's entrypoint/cmd) in a throwaway container of the image."""
    from composer.backends.native.build.overlay import step_dirs
    from composer.backends.native.build.run import RuntimeStepRunner
    from composer.backends.native.runtime.spec import RootfsSpec

    image = store.image(image_id)
    cfg = image.config.get("config") or {}
    argv = list(args) or [*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])]
    chunks: list[bytes] = []
    with step_dirs(store.root.tmp) as dirs:
        rootfs = RootfsSpec(
            mountpoint=str(dirs.merged),
            lowerdirs=dirs.lowers(image.layer_dirs),
            upperdir=str(dirs.upper),
            workdir=str(dirs.work),
        )
        code = RuntimeStepRunner(store.root.tmp).run(
            rootfs=rootfs,
            args=argv,
            env=tuple(cfg.get("Env") or ()),
            cwd=cfg.get("WorkingDir") or "/",
            user=cfg.get("User") or "",
            network="none",
            extra_hosts=(),
            shm_size=None,
            output=chunks.append,
        )
    return Ran(code, b"".join(chunks).decode())


@pytest.fixture
def unique_tag() -> Iterator[str]:
    yield f"built-{uuid.uuid4().hex[:8]}:latest"
