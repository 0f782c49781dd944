"""The layer extractor: what it creates, and one crafted malicious layer per CVE class.

Every malicious archive is extracted into ``tmp_path/root`` next to a
``tmp_path/outside`` tree that stands for the host; each test asserts the
layer is refused and that ``outside`` is exactly as it was (names, modes,
owners, mtimes and contents).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.images.extract import (
    LayerTooLarge,
    UnsafeLayer,
    extract_layer,
    size_cap,
)
from composer.backends.native.images.store import ImageStore


@pytest.fixture
def needs_root() -> None:
    """Device nodes, owners and overlay mounts need root: skip locally, fail in CI."""
    if os.geteuid() != 0:
        from tests.backends.conftest import engine_missing

        engine_missing("device nodes, owners and overlay mounts need root")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A stand-in for the host: a file and a directory the layers try to reach."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "file").write_bytes(b"host secret")
    os.chmod(out / "file", 0o600)
    (out / "dir").mkdir()
    os.utime(out / "file", (1_000_000, 1_000_000))
    return out


def _snapshot(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, "."]:
            path = Path(dirpath) / name
            st = os.lstat(path)
            body = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, body)
    return out


def _extract(tmp_path: Path, data: bytes, **kw: Any) -> Path:
    blob = tmp_path / f"blob-{hashlib.sha256(data).hexdigest()[:12]}"
    blob.write_bytes(data)
    dest = tmp_path / "root"
    dest.mkdir(exist_ok=True)
    extract_layer(blob, dest, **kw)
    return dest


def _refused(tmp_path: Path, outside: Path, data: bytes, match: str | None = None) -> None:
    before = _snapshot(outside)
    with pytest.raises(UnsafeLayer, match=match):
        _extract(tmp_path, data)
    assert _snapshot(outside) == before


# -- what a layer creates ------------------------------------------------------


@pytest.mark.usefixtures("needs_root")
def test_files_dirs_links_nodes_owners_modes(tmp_path: Path, tar: Any) -> None:
    data = (
        tar()
        .dir(".", mode=0o755)
        .dir("etc", mode=0o750, uid=0, gid=42, mtime=1_500_000_000)
        .file("etc/passwd", b"root:x:0:0\n", mode=0o644)
        .file("etc/shadow", b"secret", mode=0o640, uid=0, gid=42)
        .file("bin/su", b"elf", mode=0o4755, uid=0, gid=0)
        .file("home/u/.profile", b"x", uid=1000, gid=1000, mode=0o600)
        .symlink("bin/sh", "/bin/busybox", uid=1000, gid=1000)
        .symlink("etc/rel", "../bin/su")
        .hardlink("bin/su2", "bin/su")
        .chardev("dev/null", 1, 3, mode=0o666)
        .fifo("run/fifo", mode=0o620)
        .file("cap", b"", pax_headers={"SCHILY.xattr.user.note": "hello"})
        .bytes()
    )
    root = _extract(tmp_path, data)
    etc = os.lstat(root / "etc")
    assert stat.S_IMODE(etc.st_mode) == 0o750 and etc.st_gid == 42
    assert etc.st_mtime == 1_500_000_000  # directory mtimes survive their children
    shadow = os.lstat(root / "etc" / "shadow")
    assert (stat.S_IMODE(shadow.st_mode), shadow.st_gid) == (0o640, 42)
    assert stat.S_IMODE(os.lstat(root / "bin" / "su").st_mode) == 0o4755  # set-uid kept
    assert os.lstat(root / "home" / "u" / ".profile").st_uid == 1000
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.lstat(root / "bin" / "sh").st_uid == 1000
    assert os.readlink(root / "etc" / "rel") == "../bin/su"
    assert os.stat(root / "bin" / "su2").st_ino == os.stat(root / "bin" / "su").st_ino
    null = os.lstat(root / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    fifo = os.lstat(root / "run" / "fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    with contextlib.suppress(OSError):  # tmpfs without user xattrs skips this check
        assert os.getxattr(root / "cap", "user.note") == b"hello"
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o755


def test_later_entries_replace_earlier_ones(tmp_path: Path, tar: Any) -> None:
    data = (
        tar()
        .file("a", b"file first")
        .dir("a")
        .file("a/inner", b"1")
        .file("b/x", b"x")
        .file("b", b"now a file")
        .symlink("c", "/nowhere")
        .file("c", b"plain")
        .bytes()
    )
    root = _extract(tmp_path, data)
    assert (root / "a" / "inner").read_bytes() == b"1"
    assert (root / "b").read_bytes() == b"now a file"
    assert not os.path.islink(root / "c") and (root / "c").read_bytes() == b"plain"


def test_hard_link_to_an_earlier_layer_is_copied(tmp_path: Path, tar: Any) -> None:
    lower = _extract(tmp_path, tar().file("usr/bin/tool", b"v1", mode=0o755).bytes())
    upper = tmp_path / "upper"
    upper.mkdir()
    blob = tmp_path / "upper.tar"
    blob.write_bytes(tar().hardlink("usr/bin/alias", "usr/bin/tool").bytes())
    extract_layer(blob, upper, lowers=[lower])
    assert (upper / "usr" / "bin" / "alias").read_bytes() == b"v1"
    assert stat.S_IMODE(os.stat(upper / "usr" / "bin" / "alias").st_mode) == 0o755


def test_hard_link_to_nothing_is_refused(tmp_path: Path, tar: Any) -> None:
    with pytest.raises(UnsafeLayer, match="not in the layer"):
        _extract(tmp_path, tar().hardlink("a", "missing").bytes())


def test_diff_id_is_the_sha256_of_the_uncompressed_tar(tmp_path: Path, tar: Any) -> None:
    layer = tar().file("a", b"abc")
    plain = tar().file("a", b"abc").bytes()
    blob = tmp_path / "l.tar.gz"
    blob.write_bytes(layer.gzip())
    (tmp_path / "d").mkdir()
    result = extract_layer(blob, tmp_path / "d")
    assert result.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert result.tar_size == len(plain)


# -- whiteouts, checked through a real overlay mount ---------------------------


def _libc_mount(source: str, target: Path, fstype: str, options: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(source.encode(), str(target).encode(), fstype.encode(), 0, options.encode()):
        err = ctypes.get_errno()
        from tests.backends.conftest import engine_missing

        engine_missing(f"overlay mount failed: {os.strerror(err)}")


@contextlib.contextmanager
def _overlay(lowers: list[Path], target: Path) -> Iterator[Path]:
    target.mkdir()
    _libc_mount("overlay", target, "overlay", "lowerdir=" + ":".join(str(p) for p in lowers))
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.mark.usefixtures("needs_root")
def test_whiteouts_and_opaque_dirs_in_a_merged_overlay(tmp_path: Path, tar: Any) -> None:
    bottom = tmp_path / "bottom"
    top = tmp_path / "top"
    for d in (bottom, top):
        d.mkdir()
    b = tmp_path / "b.tar"
    b.write_bytes(
        tar()
        .file("a/keep", b"k")
        .file("a/gone", b"g")
        .file("b/old", b"o")
        .file("b/sub/older", b"o")
        .file("c", b"file c")
        .bytes()
    )
    extract_layer(b, bottom)
    t = tmp_path / "t.tar"
    t.write_bytes(
        tar()
        .file("a/.wh.gone")
        .dir("b")
        .file("b/.wh..wh..opq")
        .file("b/new", b"n")
        .file(".wh.c")
        .bytes()
    )
    extract_layer(t, top)
    gone = os.lstat(top / "a" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(top / "b", "trusted.overlay.opaque") == b"y"
    assert not (top / "a" / ".wh.gone").exists()
    with _overlay([top, bottom], tmp_path / "merged") as merged:
        assert sorted(os.listdir(merged / "a")) == ["keep"]
        assert sorted(os.listdir(merged / "b")) == ["new"]
        assert not (merged / "c").exists()
        assert sorted(os.listdir(merged)) == ["a", "b"]


# -- malicious layers ----------------------------------------------------------


def test_cve_2014_9356_write_through_an_absolute_symlink(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    data = tar().symlink("escape", str(outside)).file("escape/pwned", b"x").bytes()
    _refused(tmp_path, outside, data, "symlink")


def test_cve_2014_9356_write_through_a_relative_symlink(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    data = tar().symlink("up", "../outside").file("up/file", b"overwritten").bytes()
    _refused(tmp_path, outside, data, "symlink")


def test_cve_2018_15664_parent_directory_swapped_for_a_symlink(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    data = (
        tar()
        .dir("usr")
        .dir("usr/lib")
        .symlink("usr", str(outside))  # the parent becomes a link after it was a dir
        .file("usr/lib/evil.so", b"x")
        .bytes()
    )
    _refused(tmp_path, outside, data, "symlink")


@pytest.mark.parametrize("name", [".", "./", ""])
def test_cve_2021_29136_layer_replacing_the_root_with_a_symlink(
    tmp_path: Path, outside: Path, tar: Any, name: str
) -> None:
    data = tar().symlink(name, str(outside)).file("pwned", b"x").bytes()
    _refused(tmp_path, outside, data, "root directory")


def test_cve_2021_32760_chmod_is_never_applied_through_a_symlink(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    before = _snapshot(outside)
    data = (
        tar()
        .symlink("victim", str(outside / "file"), mode=0o777)
        .symlink("vdir", str(outside / "dir"), mode=0o777)
        .bytes()
    )
    root = _extract(tmp_path, data)
    assert os.readlink(root / "victim") == str(outside / "file")
    assert _snapshot(outside) == before
    # the same chmod aimed at a directory behind a link is refused
    data = tar().symlink("vdir", str(outside)).dir("vdir/dir", mode=0o777).bytes()
    (tmp_path / "root").rename(tmp_path / "root-1")
    _refused(tmp_path, outside, data, "symlink")


def test_cve_2024_12718_hard_link_metadata_does_not_reach_the_target(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    before = _snapshot(outside)
    data = (
        tar()
        .symlink("s", str(outside / "file"))
        .hardlink("h", "s", mode=0o777, mtime=2_000_000_000)
        .bytes()
    )
    root = _extract(tmp_path, data)
    assert os.path.islink(root / "h")  # the link itself was linked, not its target
    assert _snapshot(outside) == before


def test_cve_2025_4517_path_max_symlink_chain(tmp_path: Path, outside: Path, tar: Any) -> None:
    """The published bypass: a chain of long dirs and links so realpath() stops resolving."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    builder = tar()
    path = ""
    for step in steps:
        builder.dir(os.path.join(path, comp))
        builder.symlink(os.path.join(path, step), comp)
        path = os.path.join(path, comp)
    linkpath = os.path.join("/".join(steps), "l" * 254)
    builder.symlink(linkpath, "../" * len(steps))
    builder.symlink("escape", os.path.join(linkpath, "../../outside"))
    builder.file("escape/file", b"overwritten")
    _refused(tmp_path, outside, builder.bytes(), "symlink")


def test_cve_2025_4138_hard_link_through_the_symlink_chain(
    tmp_path: Path, outside: Path, tar: Any
) -> None:
    data = (
        tar()
        .symlink("escape", "../outside")
        .hardlink("flag", "escape/file")
        .file("flag", b"overwritten")
        .bytes()
    )
    _refused(tmp_path, outside, data, "symlink")


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"])
def test_dot_dot_names(tmp_path: Path, outside: Path, tar: Any, name: str) -> None:
    _refused(tmp_path, outside, tar().file(name, b"x").bytes(), r"'\.\.'")


@pytest.mark.parametrize("kind", ["file", "dir", "symlink"])
def test_absolute_names(tmp_path: Path, outside: Path, tar: Any, kind: str) -> None:
    builder = tar()
    name = str(outside / "new")
    if kind == "symlink":
        builder.symlink(name, "x")
    else:
        getattr(builder, kind)(name)
    _refused(tmp_path, outside, builder.bytes(), "absolute")


@pytest.mark.parametrize(
    "target", ["../outside/file", "/outside/file", "{outside}/file", "sym/file", "."]
)
def test_hard_link_escapes(tmp_path: Path, outside: Path, tar: Any, target: str) -> None:
    data = (
        tar()
        .symlink("sym", str(outside))
        .hardlink("stolen", target.format(outside=outside))
        .bytes()
    )
    _refused(tmp_path, outside, data)
    assert not (tmp_path / "root" / "stolen").exists()


def test_whiteout_names_cannot_escape(tmp_path: Path, outside: Path, tar: Any) -> None:
    _refused(tmp_path, outside, tar().file("../outside/.wh.file").bytes(), r"'\.\.'")
    data = tar().symlink("w", str(outside)).file("w/.wh.file").bytes()
    _refused(tmp_path, outside, data, "symlink")
    data = tar().symlink("o", str(outside / "dir")).file("o/.wh..wh..opq").bytes()
    _refused(tmp_path, outside, data, "symlink")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_decompression_bomb_stops_at_the_cap(
    tmp_path: Path, outside: Path, tar: Any, compression: str
) -> None:
    bomb = getattr(tar().file("zeros", bytes(64 << 20)), compression)()
    assert len(bomb) < 1 << 20
    blob = tmp_path / f"bomb.{compression}"
    blob.write_bytes(bomb)
    dest = tmp_path / "root"
    dest.mkdir()
    with pytest.raises(LayerTooLarge):
        extract_layer(blob, dest, max_bytes=8 << 20)
    assert os.path.getsize(dest / "zeros") <= 8 << 20


def test_size_cap_policy() -> None:
    assert size_cap(0) == 8 << 30  # small layers may hold zero-filled files
    assert size_cap(1 << 30) == 200 << 30  # 200:1
    assert size_cap(10 << 30) == 256 << 30  # and never more than 256 GiB


def test_store_discards_a_refused_layer(store: ImageStore, tar: Any, outside: Path) -> None:
    blob = store.ingest_blob(None, [tar().file("zeros", bytes(4 << 20)).gzip()])
    with pytest.raises(LayerTooLarge):
        store.add_layer(blob, max_bytes=1 << 20)
    bad = store.ingest_blob(None, [tar().symlink("x", str(outside)).file("x/y").bytes()])
    with pytest.raises(UnsafeLayer):
        store.add_layer(bad)
    assert os.listdir(store.base / "layers") == []
    assert os.listdir(store.root.tmp) == []


def test_garbage_is_not_a_layer(tmp_path: Path) -> None:
    with pytest.raises(UnsafeLayer, match="could not be unpacked"):
        _extract(tmp_path, b"\x1f\x8b" + os.urandom(100))
    with pytest.raises(UnsafeLayer, match="not a valid tar"):
        _extract(tmp_path, b"plain text, not a tar archive" * 30)


@pytest.mark.usefixtures("needs_root")
def test_layers_cannot_set_overlay_xattrs(tmp_path: Path, tar: Any) -> None:
    """``trusted.*`` xattrs (overlay redirects, origins, opaque marks) are not a layer's to set."""
    data = (
        tar()
        .dir("d", pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})
        .file("f", b"x", pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"})
        .bytes()
    )
    root = _extract(tmp_path, data)
    for name in ("d", "f"):
        assert not [k for k in os.listxattr(root / name) if k.startswith("trusted.")]
