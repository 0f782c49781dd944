"""cp inside a container root: paths resolved in the root, never out of it."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from composer.backends.native import copy as cp
from composer.errors import NotFound


def archive(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o640
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack(chunks: list[bytes]) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        for m in tar.getmembers():
            if m.isfile():
                out[m.name] = (tar.extractfile(m) or io.BytesIO()).read()
            elif m.isdir():
                out[m.name] = "dir"
            elif m.issym():
                out[m.name] = "-> " + m.linkname
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "tmp").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    # Links that would leave the root if they were followed on the host.
    os.symlink("/", r / "tmp" / "abs")
    os.symlink("../../../../..", r / "tmp" / "up")
    (tmp_path / "host-secret").write_text("host")
    return r


def test_copy_in_stat_and_out(root: Path) -> None:
    with cp.root_dir(str(root)) as fd:
        cp.copy_to(fd, "/tmp", archive({"d/f.txt": b"hello", "top.txt": b"x"}))
        assert (root / "tmp" / "d" / "f.txt").read_bytes() == b"hello"
        assert (root / "tmp" / "top.txt").stat().st_mode & 0o777 == 0o640
        st = cp.stat_path(fd, "/tmp/d/f.txt")
        assert (st.name, st.size, st.is_dir) == ("f.txt", 5, False)
        assert cp.stat_path(fd, "/tmp/d").is_dir
        assert cp.stat_path(fd, "/tmp/abs").link_target == "/"
        assert unpack(list(cp.copy_from(fd, "/tmp/d"))) == {"d": "dir", "d/f.txt": b"hello"}
        assert unpack(list(cp.copy_from(fd, "tmp/top.txt"))) == {"top.txt": b"x"}


def test_symlinks_resolve_inside_the_root(root: Path, tmp_path: Path) -> None:
    with cp.root_dir(str(root)) as fd:
        # /tmp/abs -> / and /tmp/up -> ../../.. both mean the container's root.
        cp.copy_to(fd, "/tmp/abs/etc", archive({"from-abs": b"1"}))
        cp.copy_to(fd, "/tmp/up", archive({"from-up": b"2"}))
        assert (root / "etc" / "from-abs").read_bytes() == b"1"
        assert (root / "from-up").read_bytes() == b"2"
        assert not (tmp_path / "from-up").exists()
        assert unpack(list(cp.copy_from(fd, "/tmp/up/etc/passwd"))) == {
            "passwd": b"root:x:0:0::/root:/bin/sh\n"
        }
        with pytest.raises(NotFound):
            cp.stat_path(fd, "/tmp/up/host-secret")


def test_archive_members_cannot_climb_out(root: Path, tmp_path: Path) -> None:
    with cp.root_dir(str(root)) as fd:
        cp.copy_to(
            fd, "/tmp", archive({"../../../../escape": b"no", "ln/inner": b"in"}, {"ln": "/"})
        )
    assert not (tmp_path / "escape").exists()
    assert (root / "escape").read_bytes() == b"no"
    # The archive's own symlink to / means the container's root too.
    assert (root / "inner").read_bytes() == b"in"


def test_missing_paths_are_not_found(root: Path) -> None:
    with cp.root_dir(str(root)) as fd:
        with pytest.raises(NotFound):
            cp.stat_path(fd, "/no/such")
        with pytest.raises(NotFound):
            cp.copy_from(fd, "/no/such")
        with pytest.raises(NotFound):
            cp.copy_to(fd, "/no/such/dir", archive({"f": b""}))


def test_go_file_modes() -> None:
    st = os.stat("/")
    assert cp.go_mode(st) & cp.GO_DIR
    assert cp.go_mode(os.lstat("/dev/null")) & cp.GO_CHARDEV
