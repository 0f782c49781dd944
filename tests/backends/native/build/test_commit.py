"""A step's layer is its upper directory renamed into the store: the same as its tar unpacked."""

from __future__ import annotations

import hashlib
import os
import stat
import textwrap
from pathlib import Path

from composer.backends.native.build.builder import Builder
from composer.backends.native.build.run import RuntimeStepRunner
from composer.backends.native.images.extract import extract_layer
from composer.backends.native.images.store import ImageStore
from composer.backends.specs import BuildSpec
from tests.backends.native.build.conftest import run_image

DOCKERFILE = """\
FROM bb:latest
RUN mkdir -p /data/old && echo old > /data/old/f && echo gone > /data/gone
RUN rm /data/gone && rm -rf /data/old && mkdir /data/old && echo new > /data/old/g \\
    && echo one > /data/one && ln /data/one /data/hard && ln -s one /data/soft \\
    && chmod 0750 /data/old && chown 12:34 /data/one
COPY app.txt /data/app.txt
CMD ["/bin/sh", "-c", "cat /data/old/g /data/hard /data/app.txt; ls /data/old; \\
test -e /data/gone || echo no-gone; readlink /data/soft; stat -c %u:%g /data/one"]
"""


def _tree(root: Path) -> list[tuple[object, ...]]:
    """Everything a layer says about each entry (hard links as the first name of their inode)."""
    out: list[tuple[object, ...]] = []
    first: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            row: list[object] = [rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)]
            row += [st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                row.append(hashlib.sha256(path.read_bytes()).hexdigest())
                row.append(first.setdefault(st.st_ino, rel))
            elif stat.S_ISLNK(st.st_mode):
                row.append(os.readlink(path))
            elif stat.S_ISCHR(st.st_mode):
                row.append(st.st_rdev)
            elif stat.S_ISDIR(st.st_mode):
                row.append(sorted(os.listxattr(path, follow_symlinks=False)))
            out.append(tuple(row))
    return out


def test_renamed_layers_equal_their_tars_unpacked_and_run(
    store: ImageStore, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(textwrap.dedent(DOCKERFILE))
    (ctx / "app.txt").write_text("app\n")
    builder = Builder(store, runner=RuntimeStepRunner(store.root.tmp))
    image_id = builder.build(BuildSpec(tag="commit:test", context=str(ctx)))
    image = store.image(image_id)
    built = image.layers[-3:]
    assert len(image.layers) >= 4
    for n, layer in enumerate(built):
        assert layer.blob == layer.diff_id  # the uncompressed tar written at commit time
        again = tmp_path / f"unpacked-{n}"
        again.mkdir()
        result = extract_layer(store.blob_path(layer.blob), again)
        assert result.diff_id == layer.diff_id
        assert _tree(layer.diff_dir) == _tree(again)
        assert layer.size == result.content_size
        for dirpath, dirnames, filenames in os.walk(layer.diff_dir):
            for name in dirnames + filenames + ["."]:
                names = os.listxattr(Path(dirpath) / name, follow_symlinks=False)
                assert [x for x in names if x.startswith("trusted.overlay.")] in (
                    [],
                    ["trusted.overlay.opaque"],
                )
    second = _tree(built[1].diff_dir)
    assert ("data/gone", stat.S_IFCHR, 0, 0, 0, 0) in [r[:6] for r in second]
    assert any(r[0] == "data/old" and r[-1] == ["trusted.overlay.opaque"] for r in second)
    ran = run_image(store, image_id)
    assert ran.code == 0, ran.output
    assert ran.output.split("\n") == ["new", "one", "app", "g", "no-gone", "one", "12:34", ""]
