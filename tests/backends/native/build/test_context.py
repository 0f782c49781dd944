"""The build context: matching, ignore rules, safety and content checksums."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.backends.native.build.context import BuildContext, ContextError


def make(tmp_path: Path, files: dict[str, str], ignore: str | None = None) -> BuildContext:
    root = tmp_path / "ctx"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    root.mkdir(exist_ok=True)
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore)
    return BuildContext.open(root)


def rels(ctx: BuildContext, pattern: str) -> list[str]:
    return [s.rel for s in ctx.sources(pattern)]


def test_plain_paths_globs_and_root(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"a.txt": "a", "b.txt": "b", "src/x.py": "x", "src/y.md": "y"})
    assert rels(ctx, "a.txt") == ["a.txt"]
    assert rels(ctx, "/a.txt") == ["a.txt"]
    assert rels(ctx, "*.txt") == ["a.txt", "b.txt"]
    assert rels(ctx, "src/*.py") == ["src/x.py"]
    assert rels(ctx, ".") == ["."]
    assert rels(ctx, "src/../a.txt") == ["a.txt"]
    [src] = ctx.sources("src")
    assert src.is_dir
    assert [e.rel for e in ctx.walk(src)] == ["", "x.py", "y.md"]


def test_missing_and_unmatched_sources(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"a.txt": "a"})
    with pytest.raises(ContextError, match="not found"):
        ctx.sources("nope.txt")
    with pytest.raises(ContextError, match="nothing matches"):
        ctx.sources("*.py")


@pytest.mark.parametrize("pattern", ["../x", "..", "a/../../x"])
def test_sources_outside_the_context_are_rejected(tmp_path: Path, pattern: str) -> None:
    ctx = make(tmp_path, {"a/b": "b"})
    (tmp_path / "x").write_text("secret")
    with pytest.raises(ContextError, match="outside the build context"):
        ctx.sources(pattern)


def test_symlinks_pointing_outside_are_rejected_inside_ones_kept(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"app/main.py": "m", "app/data.txt": "d"})
    (tmp_path / "secret").write_text("s")
    os.symlink("data.txt", ctx.root / "app" / "inner")
    [app] = ctx.sources("app")
    assert [e.rel for e in ctx.walk(app)] == ["", "data.txt", "inner", "main.py"]
    os.symlink(str(tmp_path / "secret"), ctx.root / "app" / "abs")
    with pytest.raises(ContextError, match="points outside the build context"):
        list(ctx.walk(app))
    os.unlink(ctx.root / "app" / "abs")
    os.symlink("../../secret", ctx.root / "app" / "rel")
    with pytest.raises(ContextError, match="points outside the build context"):
        list(ctx.walk(app))
    os.unlink(ctx.root / "app" / "rel")
    os.symlink(str(tmp_path), ctx.root / "up")
    with pytest.raises(ContextError, match="up is a symlink that points outside"):
        ctx.sources("up/secret")


def test_ignore_file_hides_files_and_negation_brings_them_back(tmp_path: Path) -> None:
    ctx = make(
        tmp_path,
        {"src/a.py": "a", "src/a.pyc": "c", "node_modules/m/i.js": "i", "keep/x.log": "x",
         "keep/y.log": "y"},
        ignore="**/*.pyc\nnode_modules\nkeep/*.log\n!keep/y.log\n",
    )  # fmt: skip
    [root] = ctx.sources(".")
    walked = [e.rel for e in ctx.walk(root)]
    assert walked == ["", ".dockerignore", "keep", "keep/y.log", "src", "src/a.py"]
    with pytest.raises(ContextError, match=r"excluded by \.dockerignore"):
        ctx.sources("src/a.pyc")
    assert rels(ctx, "keep/*.log") == ["keep/y.log"]


def test_checksum_follows_content_and_mode_not_mtime(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"src/a.py": "a", "src/b.py": "b"})
    sources = ctx.sources("src")
    first = ctx.checksum(sources)
    os.utime(ctx.root / "src" / "a.py", (1, 1))
    assert ctx.checksum(sources) == first
    (ctx.root / "src" / "a.py").write_text("A")
    changed = ctx.checksum(sources)
    assert changed != first
    os.chmod(ctx.root / "src" / "a.py", 0o755)
    assert ctx.checksum(sources) != changed
    (ctx.root / "src" / "c.py").write_text("")
    assert ctx.checksum(ctx.sources("src")) not in (first, changed)
