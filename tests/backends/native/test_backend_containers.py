"""Container records: create (mounts, volumes filled from the image, record.json), observe,
rename, remove with and without -v, anonymous image volumes carried over on recreate."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from composer.backends import labels as L
from composer.backends.native import observe as O
from composer.backends.native.containers import ContainerDirs, Containers, healthcheck_record
from composer.backends.native.images.store import ImageStore, StoredImage
from composer.backends.native.runtime.spec import LaunchSpec, MountEntry, RootfsSpec
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import (
    ContainerRunState,
    HealthState,
    read_record,
    write_state,
)
from composer.backends.native.volumes import Volumes
from composer.backends.observed import ContainerStatus
from composer.backends.specs import ContainerSpec, HealthcheckSpec, MountSpec, PortSpec
from composer.errors import Conflict, NotFound


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dirs = sorted({str(Path(n).parent) for n in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def small_image(store: ImageStore) -> str:
    """An image whose /data holds a seed file, with a VOLUME /cache and a healthcheck."""
    layer = layer_tar({"data/seed": b"from the image", "cache/warm": b"cached", "etc/x": b""})
    blob = store.ingest_blob(None, [layer])
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {
            "Cmd": ["sleep", "300"],
            "Volumes": {"/cache": {}},
            "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Retries": 7},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    image_id = store.put_image(json.dumps(config).encode(), [blob])
    store.tag("small:1", image_id)
    return image_id


def stub_launch(
    spec: ContainerSpec, image: StoredImage, dirs: ContainerDirs, mounts: Sequence[MountEntry]
) -> LaunchSpec:
    rootfs = RootfsSpec(
        str(dirs.rootfs), tuple(str(d) for d in image.layer_dirs), str(dirs.upper), str(dirs.work)
    )
    stop = spec.stop_signal or image.config["config"].get("StopSignal") or "SIGTERM"
    return LaunchSpec(
        id=dirs.base.name, rootfs=rootfs, args=spec.command or (), mounts=tuple(mounts),
        stop_signal=stop,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> tuple[StateRoot, Containers, ImageStore]:
    root = StateRoot(tmp_path / "state").ensure()
    store = ImageStore(root)
    small_image(store)
    return root, Containers(root, Volumes(root)), store


def spec(number: int = 1, **kw: object) -> ContainerSpec:
    labels = L.container_labels(
        project="p", service="app", number=number, config_hash="h", image_id="", working_dir="/"
    )
    base = ContainerSpec(
        name=f"p-app-{number}", service="app", image="small:1", labels=labels,
        command=("sleep", "300"), number=number,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_create_writes_the_record_and_resolves_volumes(
    env: tuple[StateRoot, Containers, ImageStore],
) -> None:
    root, containers, store = env
    s = spec(
        mounts=(MountSpec("volume", "/data", "p_data"), MountSpec("volume", "/anon")),
        ports=(PortSpec(80, "8080"), PortSpec(81), PortSpec(82, "9000-9010", "127.0.0.1")),
    )
    record = containers.create(s, store.get("small:1"), stub_launch)
    assert len(record.id) == 64 and record.project == "p"
    again = read_record(root, record.id)
    assert again.container_spec() == s
    assert (again.stop_signal, again.restart) == ("SIGQUIT", "no")
    assert again.healthcheck is not None
    assert (again.healthcheck.test, again.healthcheck.interval, again.healthcheck.retries) == (
        ("CMD", "true"), 2.0, 7
    )  # fmt: skip
    assert [(p.container_port, p.host_port, p.published) for p in again.ports] == [
        (80, 8080, None), (81, 0, None), (82, 9000, "9000-9010")
    ]  # fmt: skip
    dirs = containers.dirs(record.id)
    assert dirs.upper.is_dir() and dirs.work.is_dir() and dirs.rootfs.is_dir()
    # The new named volume and the image's VOLUME were filled from the image.
    assert (containers.volumes.data_dir("p_data") / "seed").read_bytes() == b"from the image"
    observed = O.observed_container(O.snapshot(root, record))
    assert (observed.state, observed.status, observed.volumes) == (
        "created",
        "Created",
        ("p_data",),
    )
    targets = dict(observed.anonymous_volumes)
    assert set(targets) == {"/anon", "/cache"}
    assert (containers.volumes.data_dir(targets["/cache"]) / "warm").read_bytes() == b"cached"
    assert observed.command == "sleep 300"
    assert {(p.target, p.host_port) for p in observed.ports} == {(80, None), (81, None), (82, None)}
    with pytest.raises(Conflict, match="already in use"):
        containers.create(s, store.get("small:1"), stub_launch)


def test_nocopy_leaves_a_new_volume_empty(env: tuple[StateRoot, Containers, ImageStore]) -> None:
    _, containers, store = env
    s = spec(mounts=(MountSpec("volume", "/data", "p_empty", volume_nocopy=True),))
    containers.create(s, store.get("small:1"), stub_launch)
    assert os.listdir(containers.volumes.data_dir("p_empty")) == []


def test_find_rename_and_remove(env: tuple[StateRoot, Containers, ImageStore]) -> None:
    _, containers, store = env
    image = store.get("small:1")
    first = containers.create(
        spec(1, mounts=(MountSpec("volume", "/data", "p_data"),)), image, stub_launch
    )
    second = containers.create(spec(2), image, stub_launch)
    assert containers.find(first.id[:10]).id == first.id
    assert containers.find("p-app-2").id == second.id
    with pytest.raises(NotFound):
        containers.find("p-app-9")
    with pytest.raises(Conflict):
        containers.rename(first.id, "p-app-2")
    renamed = containers.rename(first.id, "p-app-1-old")
    assert containers.find("p-app-1-old").spec["name"] == "p-app-1-old" == renamed.name
    assert containers.users_of_volume("p_data") == ["p-app-1-old"]
    anon = [m.volume for m in O.snapshot(containers.root, renamed).mounts if m.anonymous]
    containers.remove(renamed, volumes=True)
    assert not containers.dirs(first.id).base.exists()
    assert containers.volumes.exists("p_data")  # named volumes stay, as with docker rm -v
    assert not any(containers.volumes.exists(v or "") for v in anon)
    containers.remove(second, volumes=False)
    assert [m.anonymous for m in containers.volumes.list()] == [True, False]


def test_recreate_carries_the_image_volumes_over(
    env: tuple[StateRoot, Containers, ImageStore],
) -> None:
    root, containers, store = env
    image = store.get("small:1")
    old = containers.create(spec(), image, stub_launch)
    old_cache = dict(O.observed_container(O.snapshot(root, old)).anonymous_volumes)["/cache"]
    containers.rename(old.id, f"{old.id[:12]}_p-app-1")
    labels = {**spec().labels, L.LABEL_REPLACE: "p-app-1"}
    new = containers.create(spec(labels=labels), image, stub_launch)
    assert (
        dict(O.observed_container(O.snapshot(root, new)).anonymous_volumes)["/cache"] == old_cache
    )


def test_status_texts_and_health(env: tuple[StateRoot, Containers, ImageStore]) -> None:
    root, containers, store = env
    record = containers.create(spec(), store.get("small:1"), stub_launch)
    me = os.getpid()
    from composer.backends.native.supervisor.records import pid_start_time

    start = pid_start_time(me) or 0
    write_state(root, record.id, ContainerRunState("running", me, start, started_at=1000.0))
    snap = O.snapshot(root, record)
    assert O.status_text(snap, 1003.5) == "Up 3 seconds (health: starting)"
    healthy = ContainerRunState(
        "running", me, start, started_at=1000.0, health=HealthState("healthy")
    )
    write_state(root, record.id, healthy)
    assert O.status_text(O.snapshot(root, record), 1000.2) == "Up Less than a second (healthy)"
    write_state(root, record.id, replace(healthy, status="paused"))
    assert O.status_text(O.snapshot(root, record), 1120) == "Up 2 minutes (Paused)"
    gone = ContainerRunState("exited", 0, 0, 1000.0, 1100.0, exit_code=137)
    write_state(root, record.id, gone)
    snap = O.snapshot(root, record)
    assert O.status_text(snap, 1105) == "Exited (137) 5 seconds ago"
    assert O.container_status(snap) == ContainerStatus("exited", None, 137)
    # A running record whose process is not ours any more is reported as exited.
    write_state(root, record.id, ContainerRunState("running", me, start + 1, started_at=1.0))
    assert O.snapshot(root, record).status == "exited"


def test_healthcheck_resolution() -> None:
    image = {"config": {"Healthcheck": {"Test": ["CMD-SHELL", "exit 0"], "Timeout": 5_000_000_000}}}
    assert healthcheck_record(spec(), {}) is None
    mine = healthcheck_record(spec(healthcheck=HealthcheckSpec(interval=1.5)), image)
    assert mine is not None
    assert (mine.test, mine.interval, mine.timeout, mine.retries) == (
        ("CMD-SHELL", "exit 0"), 1.5, 5.0, 3
    )  # fmt: skip
    assert healthcheck_record(spec(healthcheck=HealthcheckSpec(test=("NONE",))), image) is None


def test_renewed_anonymous_volumes_renew_the_image_ones_too(
    env: tuple[StateRoot, Containers, ImageStore],
) -> None:
    root, containers, store = env
    image = store.get("small:1")
    old = containers.create(spec(mounts=(MountSpec("volume", "/anon"),)), image, stub_launch)
    old_volumes = dict(O.observed_container(O.snapshot(root, old)).anonymous_volumes)
    containers.rename(old.id, f"{old.id[:12]}_p-app-1")
    labels = {**spec().labels, L.LABEL_REPLACE: "p-app-1"}
    # -V: the planner does not carry /anon over, so /cache is not carried either.
    new = containers.create(
        spec(labels=labels, mounts=(MountSpec("volume", "/anon"),)), image, stub_launch
    )
    new_volumes = dict(O.observed_container(O.snapshot(root, new)).anonymous_volumes)
    assert set(new_volumes) == {"/anon", "/cache"}
    assert not set(new_volumes.values()) & set(old_volumes.values())


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_removing_a_container_never_deletes_through_a_mount(tmp_path: Path) -> None:
    import subprocess

    from composer.backends.native.containers import mounts_under, remove_tree

    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "precious").write_text("keep me")
    base = tmp_path / "container"
    (base / "rootfs" / "data").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(volume), str(base / "rootfs" / "data")], check=True)
    try:
        assert mounts_under(base) == [str(base / "rootfs" / "data")]
        remove_tree(base)
    finally:
        subprocess.run(["umount", "-l", str(base / "rootfs" / "data")], capture_output=True)
    assert not base.exists()
    assert (volume / "precious").read_text() == "keep me"
