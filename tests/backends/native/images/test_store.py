"""ImageStore: blobs verified while streaming, layers unpacked once, tags, removal, refcounts."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.store import ImageStore, chain_id, chain_ids
from composer.backends.native.state import StateRoot
from composer.errors import Conflict, NotFound, Unsupported


def _chunks(data: bytes, n: int = 7) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


def test_ingest_blob_verifies_digest_and_size(store: ImageStore, helpers: Any) -> None:
    data = b"hello layer" * 100
    digest = store.ingest_blob(helpers.sha(data), _chunks(data), size=len(data))
    assert digest == helpers.sha(data)
    assert store.blob_path(digest).read_bytes() == data
    with pytest.raises(Conflict, match="digest mismatch"):
        store.ingest_blob(helpers.sha(b"other"), _chunks(b"not other"))
    with pytest.raises(Conflict, match="larger than"):
        store.ingest_blob(None, _chunks(b"0123456789"), size=4)
    with pytest.raises(Conflict, match="expected 40"):
        store.ingest_blob(None, _chunks(b"0123456789"), size=40)
    # nothing half-written is left behind
    assert not store.has_blob(helpers.sha(b"not other"))
    assert os.listdir(store.root.tmp) == []


def test_ingest_of_a_known_blob_reads_nothing(store: ImageStore, helpers: Any) -> None:
    data = b"x" * 10
    store.ingest_blob(None, [data])

    def never() -> Any:
        raise AssertionError("the source was read")
        yield b""

    assert store.ingest_blob(helpers.sha(data), never()) == helpers.sha(data)


def test_chain_ids_follow_the_spec() -> None:
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    import hashlib

    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]
    assert chain_id(None, a) == a


@pytest.mark.parametrize("compression", ["bytes", "gzip", "zstd"])
def test_layers_in_every_compression(
    store: ImageStore, tar: Any, helpers: Any, compression: str
) -> None:
    layer = tar().dir("etc").file("etc/motd", b"hi\n").symlink("motd", "etc/motd")
    raw_tar = tar().dir("etc").file("etc/motd", b"hi\n").symlink("motd", "etc/motd").bytes()
    blob_data = getattr(layer, compression)()
    blob = store.ingest_blob(None, [blob_data])
    info = store.add_layer(blob)
    assert info.diff_id == helpers.sha(raw_tar)
    assert info.chain_id == info.diff_id
    assert (info.diff_dir / "etc" / "motd").read_bytes() == b"hi\n"
    assert os.readlink(info.diff_dir / "motd") == "etc/motd"
    meta = json.loads((info.path / "meta.json").read_text())
    assert meta == {
        "chain_id": info.chain_id,
        "diff_id": info.diff_id,
        "parent": None,
        "size": 3,
        "tar_size": len(raw_tar),
        "blob": blob,
        "media_type": None,
    }


def test_unknown_media_type_is_refused(store: ImageStore, tar: Any) -> None:
    blob = store.ingest_blob(None, [tar().file("a").bytes()])
    with pytest.raises(Unsupported):
        store.add_layer(blob, media_type="application/vnd.docker.image.rootfs.foreign.diff.tar")


def _image(store: ImageStore, tar: Any, helpers: Any, layers: list[bytes], **cfg: Any) -> str:
    blobs = [store.ingest_blob(None, [data]) for data in layers]
    diffs = [helpers.sha(data) for data in layers]
    return store.put_image(helpers.image_config(diffs, **cfg), blobs)


def test_put_image_then_read_it_back(store: ImageStore, tar: Any, helpers: Any) -> None:
    base = tar().dir("bin").file("bin/sh", b"#!", mode=0o755).bytes()
    top = tar().file("hello", b"world").bytes()
    image_id = _image(store, tar, helpers, [base, top])
    store.tag("app", image_id)
    image = store.get("app:latest")
    assert image.id == image_id
    assert image.tags == ("docker.io/library/app:latest",)
    assert image.diff_ids == (helpers.sha(base), helpers.sha(top))
    assert image.chain_ids == tuple(chain_ids(image.diff_ids))
    assert [d.parent.name for d in image.layer_dirs] == [c[7:] for c in reversed(image.chain_ids)]
    assert (image.layer_dirs[0] / "hello").read_bytes() == b"world"
    assert (image.layer_dirs[1] / "bin" / "sh").read_bytes() == b"#!"
    assert image.size == 2 + 5
    assert image.created == "2024-01-01T00:00:00Z"
    assert image.config["config"]["Cmd"] == ["sh"]
    assert store.resolve(image_id[7:19]) == image_id
    assert store.resolve("docker.io/library/app") == image_id
    assert store.resolve("nothere") is None


def test_put_image_checks_diff_ids(store: ImageStore, tar: Any, helpers: Any) -> None:
    data = tar().file("a", b"1").bytes()
    blob = store.ingest_blob(None, [data])
    wrong = helpers.sha(b"something else")
    with pytest.raises(Exception, match="unpacks to"):
        store.put_image(helpers.image_config([wrong]), [blob])
    assert store.image_ids() == []
    assert os.listdir(store.base / "layers") == []


def test_layers_are_unpacked_once(store: ImageStore, tar: Any, helpers: Any) -> None:
    data = tar().file("a", b"1").bytes()
    first = _image(store, tar, helpers, [data])
    layer_dir = store.image(first).layer_dirs[0]
    marker = os.stat(layer_dir).st_ino
    # a second image with the same base reuses the unpacked layer
    second = _image(store, tar, helpers, [data], Cmd=["other"])
    assert second != first
    assert os.stat(store.image(second).layer_dirs[0]).st_ino == marker
    # once known, the blob's DiffID is not recomputed either
    blob = store.image(first).layers[0].blob
    assert store.known_diff_id(blob) == helpers.sha(data)


def test_tags_move_and_untag(store: ImageStore, tar: Any, helpers: Any) -> None:
    a = _image(store, tar, helpers, [tar().file("a").bytes()])
    b = _image(store, tar, helpers, [tar().file("b").bytes()])
    store.tag("x:1", a)
    store.tag("x:1", b)
    assert store.resolve("x:1") == b
    assert store.untag("x:1") == b
    assert store.resolve("x:1") is None
    with pytest.raises(NotFound):
        store.tag("y", "sha256:" + "0" * 64)


def test_tags_written_by_another_process_are_seen(
    state_root: StateRoot, tar: Any, helpers: Any
) -> None:
    one, two = ImageStore(state_root), ImageStore(state_root)
    image_id = _image(one, tar, helpers, [tar().file("a").bytes()])
    assert two.resolve("seen") is None
    one.tag("seen", image_id)
    assert two.resolve("seen") == image_id


def test_shared_layer_survives_removing_one_image(
    store: ImageStore, tar: Any, helpers: Any
) -> None:
    base = tar().file("base", b"base").bytes()
    a = _image(store, tar, helpers, [base, tar().file("a", b"a").bytes()])
    b = _image(store, tar, helpers, [base, tar().file("b", b"b").bytes()])
    store.tag("a", a)
    store.tag("b", b)
    base_dir = store.image(b).layer_dirs[-1]
    result = store.remove("a")
    assert result.untagged == ("a:latest",)
    assert result.deleted == (a,)
    assert result.reclaimed > 0
    assert (base_dir / "base").read_bytes() == b"base"
    assert store.get("b").size == 5
    assert len(os.listdir(store.base / "layers")) == 2
    assert len(os.listdir(store.base / "blobs" / "sha256")) == 2
    store.remove("b")
    assert os.listdir(store.base / "layers") == []
    assert os.listdir(store.base / "blobs" / "sha256") == []


def test_remove_by_id_with_two_tags_needs_force(store: ImageStore, tar: Any, helpers: Any) -> None:
    image_id = _image(store, tar, helpers, [tar().file("a").bytes()])
    store.tag("one", image_id)
    store.tag("two", image_id)
    with pytest.raises(Conflict, match="multiple repositories"):
        store.remove(image_id[7:19])
    # by name only the tag goes
    assert store.remove("one").deleted == ()
    assert store.has_image(image_id)
    store.tag("one", image_id)
    result = store.remove(image_id, force=True)
    assert sorted(result.untagged) == ["one:latest", "two:latest"]
    assert result.deleted == (image_id,)
    with pytest.raises(NotFound):
        store.remove(image_id)


def test_image_in_use_is_kept_unless_forced(state_root: StateRoot, tar: Any, helpers: Any) -> None:
    used: set[str] = set()
    store = ImageStore(state_root, in_use=lambda: used)
    image_id = _image(store, tar, helpers, [tar().file("a").bytes()])
    store.tag("busy", image_id)
    used.add(image_id)
    with pytest.raises(Conflict, match="used by a container"):
        store.remove("busy")
    assert store.resolve("busy") == image_id  # refused: the name stays
    assert store.prune(all=True).deleted == ()
    layer_dir = store.image(image_id).layer_dirs[0]
    # forced, the image loses its name but keeps its layers while it is used
    result = store.remove("busy", force=True)
    assert (result.untagged, result.deleted) == (("busy:latest",), ())
    assert store.prune().deleted == ()
    assert layer_dir.is_dir()
    used.clear()
    assert store.prune().deleted == (image_id,)
    assert not layer_dir.exists()


def test_prune_dangling_and_all(store: ImageStore, tar: Any, helpers: Any) -> None:
    tagged = _image(store, tar, helpers, [tar().file("t").bytes()])
    store.tag("keep", tagged)
    dangling = _image(store, tar, helpers, [tar().file("d").bytes()])
    result = store.prune()
    assert result.deleted == (dangling,)
    assert [i.id for i in store.list()] == [tagged]
    result = store.prune(all=True)
    assert result.deleted == (tagged,)
    assert result.untagged == ("keep:latest",)
    assert store.list() == []
    assert store.tags() == {}


def test_list_is_newest_first(store: ImageStore, tar: Any, helpers: Any) -> None:
    old = _image(store, tar, helpers, [tar().file("o").bytes()], created="2020-01-01T00:00:00Z")
    new = _image(store, tar, helpers, [tar().file("n").bytes()], created="2025-01-01T00:00:00Z")
    assert [i.id for i in store.list()] == [new, old]


def _add_same_layer(root: str, blob_data: bytes, barrier: Any, queue: Any) -> None:
    try:
        store = ImageStore(StateRoot(Path(root)))
        barrier.wait()
        blob = store.ingest_blob(
            None, [blob_data[: len(blob_data) // 2], blob_data[len(blob_data) // 2 :]]
        )
        barrier.wait()
        info = store.add_layer(blob)
        queue.put(("ok", info.chain_id))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc)))


def test_two_processes_adding_the_same_layer_end_with_one_copy(
    state_root: StateRoot, tar: Any, helpers: Any
) -> None:
    builder = tar()
    for i in range(200):
        builder.file(f"d{i % 10}/f{i}", os.urandom(2000))
    data = builder.gzip()
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_add_same_layer, args=(str(state_root.path), data, barrier, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert results[0][1] == results[1][1]
    store = ImageStore(state_root)
    assert os.listdir(store.base / "layers") == [results[0][1][7:]]
    assert os.listdir(store.base / "blobs" / "sha256") == [helpers.sha(data)[7:]]
    assert os.listdir(state_root.tmp) == []
    info = store.layer(results[0][1])
    assert info is not None
    files = sum(len(f) for _, _, f in os.walk(info.diff_dir))
    assert files == 200


def test_cli_admin_keeps_images_that_container_records_name(
    state_root: StateRoot, tar: Any, helpers: Any
) -> None:
    from composer.backends.native.images.admin import NativeImageAdmin
    from composer.backends.native.supervisor.records import ContainerRecord, write_record

    admin = NativeImageAdmin.from_root(state_root)
    image_id = _image(admin.store, tar, helpers, [tar().file("a").bytes()])
    admin.store.tag("busy", image_id)
    record = ContainerRecord(
        id="c" * 64,
        name="proj-web-1",
        project="proj",
        service="web",
        created_at=0.0,
        spec={},
        launch={},
        image_id=image_id,
    )
    write_record(state_root, record)
    with pytest.raises(Conflict, match="used by a container"):
        admin.remove("busy", force=False)
    assert admin.prune(all=True)["ImagesDeleted"] == []
    assert admin.remove("busy", force=True) == [{"Untagged": "busy:latest"}]
    assert admin.summaries()[0]["RepoTags"] == []


def test_hard_link_to_a_lower_layer_through_put_image(
    store: ImageStore, tar: Any, helpers: Any
) -> None:
    base = tar().file("usr/bin/tool", b"v1", mode=0o755).bytes()
    top = tar().hardlink("usr/bin/alias", "usr/bin/tool").bytes()
    image = store.image(_image(store, tar, helpers, [base, top]))
    assert (image.layer_dirs[0] / "usr" / "bin" / "alias").read_bytes() == b"v1"


def test_a_lease_keeps_collection_out(state_root: StateRoot, tar: Any, helpers: Any) -> None:
    """Between ingest and put_image a pull holds a lease; GC needs the same lock exclusively."""
    import fcntl

    store = ImageStore(state_root)
    lock = state_root.lock_file("images-gc")
    with store.lease():
        blob = store.ingest_blob(None, [tar().file("a").bytes()])  # not referenced yet
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what prune takes
        finally:
            os.close(fd)
    assert store.has_blob(blob)
    store.prune()  # once the lease ends, the unreferenced blob is collected
    assert not store.has_blob(blob)


def test_tags_json_is_read_once_until_it_changes(
    store: ImageStore, tar: Any, helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from composer.backends.native.images import store as store_module

    for name in ("a", "b", "c"):
        store.tag(name, _image(store, tar, helpers, [tar().file(name).bytes()]))
    reads: list[Path] = []
    real = store_module.read_json

    def counting(path: Path) -> Any:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(store_module, "read_json", counting)
    fresh = ImageStore(store.root)
    assert len(fresh.list()) == 3
    fresh.resolve("a")
    fresh.get("b")
    assert reads.count(store.tags_path) == 1
    store.tag("d", fresh.resolve("c") or "")  # another writer changes the file
    assert fresh.resolve("d") is not None
    assert reads.count(store.tags_path) == 2


def test_ingest_file_by_moving_it(store: ImageStore, helpers: Any) -> None:
    download = store.root.tmp / "downloads" / "x.partial"
    download.parent.mkdir(parents=True)
    download.write_bytes(b"layer bytes")
    with pytest.raises(Conflict, match="digest mismatch"):
        store.ingest_file(download, helpers.sha(b"other"), move=True)
    assert download.read_bytes() == b"layer bytes"  # left for the caller to retry or drop
    digest = store.ingest_file(download, helpers.sha(b"layer bytes"), move=True)
    assert not download.exists()
    assert store.blob_path(digest).read_bytes() == b"layer bytes"


def test_prune_clears_what_interrupted_ingests_left(store: ImageStore) -> None:
    store.ensure()
    (store.root.tmp / "blob-abc123").write_bytes(b"half a blob")
    (store.root.tmp / "layer-xyz" / "diff" / "etc").mkdir(parents=True)
    (store.root.tmp / "downloads").mkdir()
    (store.root.tmp / "cp-other-component").mkdir()
    store.root.lock_file("layer-" + "a" * 64).write_text("")
    store.root.lock_file("images").write_text("")
    store.prune()
    assert sorted(os.listdir(store.root.tmp)) == ["cp-other-component", "downloads"]
    assert "images.lock" in os.listdir(store.root.path / "locks")
    assert not [n for n in os.listdir(store.root.path / "locks") if n.startswith("layer-")]
