"""The .dockerignore matcher against Docker's own cases (moby/patternmatcher tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import ConfigError
from composer.ignorefile import IgnoreFile, clean_pattern, parse_lines

# (pattern, path, excluded) — from patternmatcher's TestMatches, which checks a path
# and its parents, plus the cleaning Docker applies to patterns and paths.
DOCKER_CASES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**/", "file/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # '*' and '?' never cross a '/', but a parent directory that matches excludes its tree.
    ("*.go", "a.go", True),
    ("*.go", "dir/a.go", False),
    ("*", "dir/a.go", True),
    ("dir", "dir/sub/file", True),
    ("dir", "dirt", False),
    # Cleaning: leading '/' and './', trailing '/', doubled slashes, '..'.
    ("/dir", "dir/file", True),
    ("./dir", "dir/file", True),
    ("dir/", "dir", True),
    ("a//b", "a/b", True),
    ("a/../b", "b", True),
    ("dir", "./dir/x", True),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), DOCKER_CASES)
def test_docker_cases(pattern: str, path: str, excluded: bool) -> None:
    assert IgnoreFile.from_patterns([pattern]).matches(path) is excluded


# (patterns, path, excluded): the last pattern that matches decides.
NEGATION_CASES = [
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README.md", False),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "CHANGES.md", True),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    (["**", "!src", "src/*.tmp"], "src/main.py", False),
    (["**", "!src", "src/*.tmp"], "src/x.tmp", True),
    (["**", "!src", "src/*.tmp"], "other/x", True),
    (["!keep", "keep"], "keep", True),
    (["keep", "!keep"], "keep", False),
    (["a", "!a/b"], "a/b/c", False),
    (["node_modules", "!/node_modules/x"], "node_modules/x/y", False),
]


@pytest.mark.parametrize(("patterns", "path", "excluded"), NEGATION_CASES)
def test_last_match_wins(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreFile.from_patterns(patterns).matches(path) is excluded


def test_root_is_never_excluded() -> None:
    ignore = IgnoreFile.from_patterns(["**"])
    assert not ignore.matches(".")
    assert not ignore.matches("")


def test_lines_comments_and_blanks() -> None:
    text = "\ufeff# a comment\n\n  build  \n ! keep \n  # not a comment\n*.log\n"
    assert parse_lines(text.splitlines()) == ["build", "! keep", "# not a comment", "*.log"]
    ignore = IgnoreFile.from_patterns(text.splitlines())
    assert [(p.text, p.exclusion) for p in ignore.patterns] == [
        ("build", False),
        ("keep", True),
        ("# not a comment", False),
        ("*.log", False),
    ]
    assert ignore.matches("build/x")
    assert ignore.matches("# not a comment")


def test_clean_pattern() -> None:
    assert clean_pattern("./a/./b/") == "a/b"
    assert clean_pattern("/") == "/"
    assert clean_pattern("/a") == "a"
    assert clean_pattern("a/b/../c") == "a/c"


def test_invalid_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid ignore pattern"):
        IgnoreFile.from_patterns(["a[b"])


def test_pruning_directories() -> None:
    plain = IgnoreFile.from_patterns(["node_modules", "*.log"])
    assert not plain.includes_dir_children("node_modules")
    assert plain.includes_dir_children("src")
    negated = IgnoreFile.from_patterns(["node_modules", "!node_modules/keep/*.js"])
    assert negated.includes_dir_children("node_modules")
    assert negated.includes_dir_children("node_modules/keep")
    assert not negated.includes_dir_children("node_modules/other")
    wild = IgnoreFile.from_patterns(["vendor", "!**/LICENSE"])
    assert wild.includes_dir_children("vendor/a/b")
    everything = IgnoreFile.from_patterns(["*", "!src"])
    assert everything.includes_dir_children("src")
    assert not everything.includes_dir_children("docs")
    assert not IgnoreFile.from_patterns(["**"]).includes_dir_children("a")


def test_load_prefers_the_dockerfile_specific_file(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Dockerfile.dev.dockerignore").write_text("b\n")
    assert IgnoreFile.load(tmp_path).matches("a")
    specific = IgnoreFile.load(tmp_path, "sub/Dockerfile.dev")
    assert specific.matches("b") and not specific.matches("a")
    assert specific.source == tmp_path / "sub" / "Dockerfile.dev.dockerignore"
    absolute = IgnoreFile.load(tmp_path, str(tmp_path / "sub" / "Dockerfile.dev"))
    assert absolute.matches("b")
    fallback = IgnoreFile.load(tmp_path, "Dockerfile")
    assert fallback.matches("a") and fallback.source == tmp_path / ".dockerignore"


def test_load_without_a_file_is_empty(tmp_path: Path) -> None:
    ignore = IgnoreFile.load(tmp_path / "missing")
    assert not ignore and not ignore.matches("anything")
