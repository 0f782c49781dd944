"""Watch rule filters: rule ignore/include, the context's .dockerignore, editor noise, walks."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.watch.filters import RuleFilter, container_path, editor_noise


@pytest.mark.parametrize(
    "rel",
    [
        "a/.main.py.swp",
        "main.py.swp",
        "main.py~",
        ".#main.py",
        "src/#main.py#",
        "4913",
        "src/4913",
        "main.py___jb_tmp___",
        "main.py___jb_old___",
        ".git",
        ".git/index",
        "sub/.git/HEAD",
    ],
)
def test_editor_noise(rel: str) -> None:
    assert editor_noise(rel)


@pytest.mark.parametrize("rel", ["main.py", "src/swp", "4913.txt", "gitignore", ".github/x"])
def test_not_editor_noise(rel: str) -> None:
    assert not editor_noise(rel)


def test_rule_ignore_is_relative_to_the_rule_path(tmp_path: Path) -> None:
    rule = RuleFilter.build(tmp_path / "src", ["cache", "*.pyc", "!keep.pyc"], [])
    assert rule.relpath(tmp_path / "src" / "app.py") == "app.py"
    assert rule.relpath(tmp_path / "src" / "cache" / "x") is None
    assert rule.relpath(tmp_path / "src" / "a.pyc") is None
    assert rule.relpath(tmp_path / "src" / "keep.pyc") == "keep.pyc"
    assert rule.relpath(tmp_path / "other" / "app.py") is None
    assert rule.relpath(tmp_path / "src") == "."


def test_include_keeps_only_matching_paths(tmp_path: Path) -> None:
    rule = RuleFilter.build(tmp_path, [], ["**/*.py", "static"])
    assert rule.accepts(tmp_path / "a.py")
    assert rule.accepts(tmp_path / "pkg" / "b.py")
    assert rule.accepts(tmp_path / "static" / "logo.png")
    assert not rule.accepts(tmp_path / "README.md")


def test_context_dockerignore_applies(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("node_modules\n*.log\n!important.log\n")
    rule = RuleFilter.build(tmp_path / "web", [], [], context=tmp_path)
    # Patterns are anchored at the context root, as in docker build.
    assert rule.accepts(tmp_path / "web" / "node_modules" / "x.js")
    assert rule.accepts(tmp_path / "web" / "debug.log")  # *.log matches only at the root
    rule = RuleFilter.build(tmp_path, [], [], context=tmp_path)
    assert not rule.accepts(tmp_path / "node_modules" / "x.js")
    assert not rule.accepts(tmp_path / "debug.log")
    assert rule.accepts(tmp_path / "important.log")
    assert rule.accepts(tmp_path / "app.js")


def test_walk_prunes_and_filters(tmp_path: Path) -> None:
    for rel in ["a.py", "b.swp", "pkg/c.py", "pkg/deep/d.py", "cache/e", ".git/HEAD", "skip/f"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (tmp_path / "empty").mkdir()
    rule = RuleFilter.build(tmp_path, ["cache", "skip"], [])
    walked = list(rule.walk())
    assert sorted(walked) == ["a.py", "empty", "pkg", "pkg/c.py", "pkg/deep", "pkg/deep/d.py"]
    assert walked.index("pkg") < walked.index("pkg/c.py")  # a directory before its contents
    assert sorted(rule.walk("pkg")) == ["pkg", "pkg/c.py", "pkg/deep", "pkg/deep/d.py"]


def test_container_path() -> None:
    assert container_path("/app", ".") == "/app"
    assert container_path("/app", "src/a.py") == "/app/src/a.py"
