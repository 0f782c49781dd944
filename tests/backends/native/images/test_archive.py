"""Archives: ``docker save`` output (legacy and OCI layout), OCI layout dirs, and ``save``.

The legacy archive comes from the local engine (``docker save bb:latest``;
Docker 20.10 writes the legacy layout); the OCI-layout variants are built
here from it, so every source holds the same image and must give the same
image id. ``save`` is checked by the engine itself: ``docker load`` of our
archive, then ``docker run`` gives the same output as the original image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images import archive
from composer.backends.native.images.archive import ArchiveError, LoadedImage
from composer.backends.native.images.extract import UnsafeLayer
from composer.backends.native.images.store import ImageStore
from composer.backends.native.state import StateRoot
from composer.errors import Conflict, Unsupported


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _legacy_parts(legacy: Path) -> tuple[bytes, list[bytes]]:
    with tarfile.open(legacy) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = tf.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
        layers = [tf.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]
    return config, layers


def _oci_layout(legacy: Path, out: Path, compression: str, *, nested: bool = False) -> Path:
    """An OCI image layout directory holding the image of ``legacy``."""
    config, layers = _legacy_parts(legacy)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
        return {"mediaType": media_type, "digest": _sha(data), "size": len(data), **extra}

    layer_type = "application/vnd.oci.image.layer.v1.tar"
    descs = []
    for layer in layers:
        if compression == "gzip":
            descs.append(put(gzip.compress(layer), layer_type + "+gzip"))
        elif compression == "zstd":
            import zstandard

            descs.append(put(zstandard.ZstdCompressor().compress(layer), layer_type + "+zstd"))
        else:
            descs.append(put(layer, layer_type))
    manifest = {
        "schemaVersion": 2,
        "mediaType": archive.OCI_MANIFEST,
        "config": put(config, archive.OCI_CONFIG),
        "layers": descs,
    }
    mdesc = put(json.dumps(manifest).encode(), archive.OCI_MANIFEST)
    if nested:
        os_, arch = archive.host_platform()
        other = dict(manifest, layers=[])
        entries = [
            put(
                json.dumps(other).encode(),
                archive.OCI_MANIFEST,
                platform={"os": "linux", "architecture": "s390x"},
            ),
            dict(mdesc, platform={"os": os_, "architecture": arch}),
            put(
                json.dumps(other).encode() + b" ",
                archive.OCI_MANIFEST,
                platform={"os": "unknown", "architecture": "unknown"},
            ),
        ]
        nested_index = {"schemaVersion": 2, "mediaType": archive.OCI_INDEX, "manifests": entries}
        top = put(
            json.dumps(nested_index).encode(),
            archive.OCI_INDEX,
            annotations={archive.REF_ANNOTATION: "v1"},
        )
    else:
        top = dict(
            mdesc,
            annotations={
                archive.NAME_ANNOTATION: "docker.io/library/bb-oci:latest",
                archive.REF_ANNOTATION: "latest",
            },
        )
    index = {"schemaVersion": 2, "mediaType": archive.OCI_INDEX, "manifests": [top]}
    (out / "index.json").write_text(json.dumps(index))
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return out


def _tar_dir(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tf:
        for path in sorted(src.rglob("*")):
            tf.add(path, arcname=str(path.relative_to(src)), recursive=False)
    return out


def test_load_legacy_docker_save(store: ImageStore, bb_archive: Path, bb_id: str) -> None:
    loaded = archive.load(store, bb_archive)
    assert loaded == [LoadedImage(bb_id, ("docker.io/library/bb:latest",))]
    image = store.get("bb")
    assert (image.layer_dirs[0] / "bin" / "busybox").is_file()
    inode = (image.layer_dirs[0] / "bin" / "busybox").stat().st_ino
    assert archive.load(store, bb_archive) == loaded  # loading again reuses the layers
    assert (store.get("bb").layer_dirs[0] / "bin" / "busybox").stat().st_ino == inode


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_load_oci_layout_archive(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path, compression: str
) -> None:
    layout = _oci_layout(bb_archive, tmp_path / "layout", compression)
    loaded = archive.load(store, _tar_dir(layout, tmp_path / "oci.tar"))
    assert loaded == [LoadedImage(bb_id, ("docker.io/library/bb-oci:latest",))]
    assert (store.get("bb-oci").layer_dirs[0] / "bin" / "busybox").is_file()


def test_load_oci_layout_directory_picks_the_host_platform(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path
) -> None:
    layout = _oci_layout(bb_archive, tmp_path / "layout", "gzip", nested=True)
    loaded = archive.load(store, layout, tag="mine")
    assert loaded == [LoadedImage(bb_id, ("docker.io/library/mine:v1",))]
    assert [i.id for i in store.list()] == [bb_id]  # the other platforms were not loaded


def test_member_names_cannot_leave_the_archive(store: ImageStore, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = json.dumps([{"Config": "c.json", "Layers": ["../../etc/passwd"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError):
        archive.load(store, tmp_path / "evil.tar")
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "manifest.json").write_text(json.dumps([{"Config": "/etc/hostname", "Layers": []}]))
    with pytest.raises(ArchiveError, match="absolute"):
        archive.load(store, layout)


def test_tampered_blob_is_refused(store: ImageStore, bb_archive: Path, tmp_path: Path) -> None:
    layout = _oci_layout(bb_archive, tmp_path / "layout", "none")
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]
    body = json.loads((layout / "blobs" / "sha256" / manifest["digest"][7:]).read_text())
    layer = layout / "blobs" / "sha256" / body["layers"][0]["digest"][7:]
    data = bytearray(layer.read_bytes())
    data[-2000] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises(Conflict, match="digest mismatch"):
        archive.load(store, layout)
    assert store.list() == []


def test_not_an_archive(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"hello")
    with pytest.raises(ArchiveError):
        archive.load(store, tmp_path / "x.tar")


def test_save_and_load_into_a_fresh_store(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path
) -> None:
    archive.load(store, bb_archive)
    store.tag("other:2", bb_id)
    out = tmp_path / "saved.tar"
    archive.save_to_file(store, ["bb", "other:2"], out)
    with tarfile.open(out) as tf:
        legacy = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert legacy[0]["RepoTags"] == ["bb:latest", "other:2"]
    names = [m["annotations"][archive.NAME_ANNOTATION] for m in index["manifests"]]
    assert names == ["docker.io/library/bb:latest", "docker.io/library/other:2"]
    fresh = ImageStore(StateRoot(tmp_path / "fresh").ensure())
    loaded = archive.load(fresh, out)
    assert {i.id for i in loaded} == {bb_id}
    assert sorted(fresh.tags()) == ["docker.io/library/bb:latest", "docker.io/library/other:2"]
    # saved by id, the image carries no name
    archive.save_to_file(store, [bb_id], out)
    with tarfile.open(out) as tf:
        legacy = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert legacy[0]["RepoTags"] is None


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_saved_archive_runs_on_docker(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path
) -> None:
    archive.load(store, bb_archive)
    name = f"composer-save-{uuid.uuid4().hex[:10]}:t"
    store.tag(name, bb_id)
    out = tmp_path / "saved.tar"
    archive.save_to_file(store, [name], out)
    script = "ls /bin | head -3; cat /etc/passwd; echo done"
    try:
        assert f"Loaded image: {name}" in _docker("load", "-i", str(out))
        assert _docker("image", "inspect", "-f", "{{.Id}}", name).strip() == bb_id
        ours = _docker("run", "--rm", name, "sh", "-c", script)
        theirs = _docker("run", "--rm", "bb:latest", "sh", "-c", script)
        assert ours == theirs
        assert ours.endswith("done\n")
    finally:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)


def _legacy_archive(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """A tar of (name, bytes) files and (name, "->target") symlinks."""
    with tarfile.open(path, "w") as tf:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body[2:]
                tf.addfile(info)
            else:
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
    return path


def test_legacy_layers_shared_through_symlinks(
    store: ImageStore, bb_archive: Path, tmp_path: Path
) -> None:
    """Older docker save writes a repeated layer once and links the other copies to it."""
    config, layers = _legacy_parts(bb_archive)
    other = json.loads(config)
    other["config"]["Cmd"] = ["echo", "other"]
    other_raw = json.dumps(other).encode()
    manifest = [
        {"Config": "a.json", "RepoTags": ["first:1"], "Layers": ["aaa/layer.tar"]},
        {"Config": "b.json", "RepoTags": ["second:1"], "Layers": ["bbb/layer.tar"]},
    ]
    path = _legacy_archive(
        tmp_path / "two.tar",
        [
            ("manifest.json", json.dumps(manifest).encode()),
            ("a.json", config),
            ("b.json", other_raw),
            ("aaa/layer.tar", layers[0]),
            ("bbb/layer.tar", "->../aaa/layer.tar"),
        ],
    )
    loaded = archive.load(store, path)
    assert [i.tags for i in loaded] == [
        ("docker.io/library/first:1",),
        ("docker.io/library/second:1",),
    ]
    assert loaded[1].id == _sha(other_raw)
    assert store.get("first:1").layer_dirs == store.get("second:1").layer_dirs


def test_legacy_symlink_out_of_the_archive_is_refused(store: ImageStore, tmp_path: Path) -> None:
    manifest = [{"Config": "a.json", "RepoTags": ["x:1"], "Layers": ["aaa/layer.tar"]}]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}})
    path = _legacy_archive(
        tmp_path / "evil.tar",
        [
            ("manifest.json", json.dumps(manifest).encode()),
            ("a.json", config.encode()),
            ("aaa/layer.tar", "->../../../etc/passwd"),
        ],
    )
    with pytest.raises(ArchiveError, match=r"'\.\.'"):
        archive.load(store, path)
    assert store.list() == []


def test_load_a_gzipped_docker_save(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path
) -> None:
    packed = tmp_path / "bb.tar.gz"
    packed.write_bytes(gzip.compress(bb_archive.read_bytes(), compresslevel=1))
    assert archive.load(store, packed) == [LoadedImage(bb_id, ("docker.io/library/bb:latest",))]


DOCKERFILE = """\
FROM bb:latest
RUN mkdir -p /opq/keep && touch /opq/old /gone /opq/keep/x && echo one > /data
RUN rm /gone && rm -r /opq && mkdir /opq && touch /opq/new && ln /data /hl && chmod 4711 /opq/new
"""
# What docker adds to every container, and mount points whose mode is the mounted fs's.
DOCKER_ADDED = {"/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab"}
MOUNT_POINTS = {"/proc", "/sys", "/dev"}


def _listing_in_docker(image: str) -> set[str]:
    script = 'find / -xdev -exec stat -c "%n %f %u %g %s %F" {} +'
    done = subprocess.run(
        ["docker", "run", "--rm", image, "sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    out = set()
    for line in done.stdout.splitlines():
        name, mode, uid, gid, size, *kind = line.split(" ")
        if name in DOCKER_ADDED or name in MOUNT_POINTS:
            continue
        out.add(f"{name} {mode} {uid} {gid} {'' if kind == ['directory'] else size}")
    return out


def _listing_of_overlay(lowers: list[Path], mountpoint: Path) -> set[str]:
    import ctypes
    import ctypes.util
    import stat

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    options = ("lowerdir=" + ":".join(str(p) for p in lowers)).encode()
    mountpoint.mkdir()
    if libc.mount(b"overlay", str(mountpoint).encode(), b"overlay", 0, options):
        from tests.backends.conftest import engine_missing

        engine_missing(f"overlay mount failed: {os.strerror(ctypes.get_errno())}")
    try:
        out = {f"/ {os.lstat(mountpoint).st_mode:x} 0 0 "}
        for dirpath, dirnames, filenames in os.walk(mountpoint):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = os.lstat(path)
                rel = "/" + str(path.relative_to(mountpoint))
                if rel in MOUNT_POINTS:
                    continue
                size = "" if stat.S_ISDIR(st.st_mode) else st.st_size
                out.add(f"{rel} {st.st_mode:x} {st.st_uid} {st.st_gid} {size}")
        return out
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_docker_built_layers_merge_as_docker_runs_them(
    store: ImageStore, bb_archive: Path, tmp_path: Path
) -> None:
    """Whiteouts, an opaque dir, a hard link into a lower layer and a set-uid file, made by
    docker build: the overlay of our unpacked layers lists exactly what the container sees."""
    if os.geteuid() != 0:
        from tests.backends.conftest import engine_missing

        engine_missing("mounting an overlay needs root")
    name = f"composer-merge-{uuid.uuid4().hex[:10]}:1"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    build = subprocess.run(
        ["docker", "build", "-q", "-t", name, str(tmp_path / "ctx")],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=False,
    )
    assert build.returncode == 0, build.stderr
    try:
        subprocess.run(["docker", "save", "-o", str(tmp_path / "m.tar"), name], check=True)
        archive.load(store, tmp_path / "m.tar")
        image = store.get(name)
        assert len(image.layer_dirs) == 3
        ours = _listing_of_overlay(image.layer_dirs, tmp_path / "merged")
        theirs = _listing_in_docker(name)
        assert ours == theirs
        assert any(line.startswith("/opq/new 89c9 ") for line in ours)  # set-uid kept
        assert not [line for line in ours if line.startswith(("/gone ", "/opq/old", "/opq/keep"))]
    finally:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)


def test_loading_an_image_the_store_has_reads_no_layer(
    store: ImageStore, bb_archive: Path, bb_id: str, tmp_path: Path
) -> None:
    """The config names the content; a store that has it whole needs no layer bytes."""
    archive.load(store, bb_archive)
    config, _ = _legacy_parts(bb_archive)
    manifest = [{"Config": "c.json", "RepoTags": ["again:1"], "Layers": ["l/layer.tar"]}]
    stub = _legacy_archive(
        tmp_path / "stub.tar",
        [
            ("manifest.json", json.dumps(manifest).encode()),
            ("c.json", config),
            ("l/layer.tar", b"not the layer"),
        ],
    )
    assert archive.load(store, stub) == [LoadedImage(bb_id, ("docker.io/library/again:1",))]
    # a store without the image reads the layer, and refuses what does not match
    fresh = ImageStore(StateRoot(tmp_path / "fresh").ensure())
    with pytest.raises(UnsafeLayer):
        archive.load(fresh, stub)
    assert fresh.list() == []


def test_unknown_layer_media_type_is_refused(
    store: ImageStore, bb_archive: Path, tmp_path: Path
) -> None:
    layout = _oci_layout(bb_archive, tmp_path / "layout", "none")
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar"
    raw = json.dumps(manifest).encode()
    (blobs / hashlib.sha256(raw).hexdigest()).write_bytes(raw)
    index["manifests"][0].update(digest=_sha(raw), size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(Unsupported, match="foreign"):
        archive.load(store, layout)
    assert store.list() == []
