"""Rootfs import: the tarball becomes one layer, ``--change`` edits the config."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.extract import UnsafeLayer
from composer.backends.native.images.importer import apply_changes, import_rootfs
from composer.backends.native.images.store import ImageStore
from composer.errors import ConfigError


def test_import_makes_a_one_layer_image(store: ImageStore, tar: Any, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar.gz"
    rootfs.write_bytes(
        tar().dir("./").dir("./bin").file("./bin/hello", b"#!/bin/sh\n", mode=0o755).gzip()
    )
    when = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    image_id = import_rootfs(
        store,
        rootfs,
        ref="me/rootfs:1",
        changes=["ENV A=1 B=two", 'CMD ["/bin/hello"]', "WORKDIR /bin", "USER 1000:1000"],
        message="from a tarball",
        now=when,
    )
    image = store.get("me/rootfs:1")
    assert image.id == image_id
    assert image.tags == ("docker.io/me/rootfs:1",)
    assert len(image.layer_dirs) == 1
    assert (image.layer_dirs[0] / "bin" / "hello").read_bytes() == b"#!/bin/sh\n"
    assert image.created == "2025-05-01T12:00:00.000000Z"
    assert image.config["config"] == {
        "Env": ["A=1", "B=two"],
        "Cmd": ["/bin/hello"],
        "WorkingDir": "/bin",
        "User": "1000:1000",
    }
    assert image.config["history"][0]["comment"] == "from a tarball"
    raw = store.config_path(image_id).read_bytes()
    assert json.loads(raw)["rootfs"]["diff_ids"] == list(image.diff_ids)


def test_import_without_a_name_is_dangling(store: ImageStore, tar: Any, tmp_path: Path) -> None:
    rootfs = tmp_path / "r.tar"
    rootfs.write_bytes(tar().file("a", b"1").bytes())
    image_id = import_rootfs(store, rootfs)
    assert store.image(image_id).tags == ()
    assert store.prune().deleted == (image_id,)


def test_hostile_tarball_is_refused(store: ImageStore, tar: Any, tmp_path: Path) -> None:
    rootfs = tmp_path / "r.tar"
    rootfs.write_bytes(tar().symlink("etc", "/etc").file("etc/evil", b"x").bytes())
    with pytest.raises(UnsafeLayer):
        import_rootfs(store, rootfs, ref="evil")
    assert store.list() == []
    assert os.listdir(store.base / "layers") == []


def test_changes() -> None:
    config = apply_changes(
        {"Env": ["A=0", "PATH=/bin"]},
        [
            "ENV A=1",
            "ENV LEGACY some value",
            "ENTRYPOINT /bin/sh -c 'echo hi'",
            "EXPOSE 80 53/udp",
            'LABEL org.x="a b" y=2',
            'VOLUME ["/data", "/logs"]',
            "VOLUME /cache",
            "STOPSIGNAL SIGINT",
        ],
    )
    assert config == {
        "Env": ["PATH=/bin", "A=1", "LEGACY=some value"],
        "Entrypoint": ["/bin/sh", "-c", "/bin/sh -c 'echo hi'"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Labels": {"org.x": "a b", "y": "2"},
        "Volumes": {"/data": {}, "/logs": {}, "/cache": {}},
        "StopSignal": "SIGINT",
    }


@pytest.mark.parametrize(
    "change", ["RUN echo", "CMD", "CMD [1, 2]", "ENV =x", "LABEL a", "FROM scratch"]
)
def test_bad_changes_are_config_errors(change: str) -> None:
    with pytest.raises(ConfigError, match="--change"):
        apply_changes({}, [change])
