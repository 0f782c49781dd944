"""``include:``: entries resolved, resources imported, clashes and cycles reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from composer.errors import IncludeError
from composer.schema.include import IncludeEntry, apply_includes, include_entries
from composer.schema.tree import YMap, to_plain
from tests.schema.ytree import ytree

FIXTURES = Path(__file__).parent / "fixtures" / "include"


def _read(path: Path) -> YMap:
    tree = ytree(path.read_text(), file=str(path))
    assert isinstance(tree, YMap)
    return tree


class RecursiveLoader:
    """A stand-in for the loader: reads the first file and applies its includes."""

    def __init__(self) -> None:
        self.seen: list[IncludeEntry] = []

    def __call__(self, entry: IncludeEntry) -> YMap:
        self.seen.append(entry)
        tree = _read(entry.paths[0])
        return apply_includes(
            tree, project_dir=entry.project_dir, load_included=self, chain=entry.chain
        )


def test_entries_resolve_paths_project_directory_and_env_files() -> None:
    tree = _read(FIXTURES / "app" / "compose.yaml")
    entries = include_entries(tree, project_dir=FIXTURES / "app")
    main = str(FIXTURES / "app" / "compose.yaml")
    assert entries[0].paths == (FIXTURES / "lib" / "compose.yaml",)
    assert entries[0].project_dir == FIXTURES / "lib"
    assert entries[0].env_files == (FIXTURES / "lib" / ".env",)  # its own .env
    assert entries[0].chain == (main, str(FIXTURES / "lib" / "compose.yaml"))
    assert entries[0].location is not None and entries[0].location.line == 2
    assert entries[1].paths == (FIXTURES / "other" / "compose.yaml",)
    assert entries[1].project_dir == FIXTURES / "other" / "proj"
    assert entries[1].env_files == (FIXTURES / "app" / "custom.env",)


def test_resources_are_imported_and_include_is_dropped() -> None:
    tree = _read(FIXTURES / "app" / "compose.yaml")
    loader = RecursiveLoader()
    out = apply_includes(tree, project_dir=FIXTURES / "app", load_included=loader)
    plain = to_plain(out)
    assert "include" not in plain
    assert sorted(plain["services"]) == ["cache", "db", "web"]
    assert plain["volumes"] == {"data": {}}
    assert plain["networks"] == {"back": {}}
    assert "include" in tree  # the input is left alone
    loc = out["services"].key_locs["db"]
    assert loc.file == str(FIXTURES / "lib" / "compose.yaml") and loc.line == 2


def test_clash_names_both_definitions_and_identical_is_allowed() -> None:
    tree = _read(FIXTURES / "clash" / "compose.yaml")
    with pytest.raises(IncludeError) as info:
        apply_includes(tree, project_dir=FIXTURES / "clash", load_included=RecursiveLoader())
    problems = info.value.problems
    assert len(problems) == 1  # `same` is identical in both files: allowed
    rendered = problems[0].render()
    assert rendered.startswith(f"{FIXTURES / 'clash' / 'compose.yaml'}:4:3: services.web: ")
    assert "services.web conflicts with imported resource" in rendered
    assert f"{FIXTURES / 'clash' / 'inc.yaml'}:2:3" in rendered


def test_cycle_names_the_chain() -> None:
    tree = _read(FIXTURES / "cycle" / "a.yaml")
    with pytest.raises(IncludeError) as info:
        apply_includes(tree, project_dir=FIXTURES / "cycle", load_included=RecursiveLoader())
    a, b = FIXTURES / "cycle" / "a.yaml", FIXTURES / "cycle" / "b.yaml"
    assert (
        info.value.problems[0].message
        == f"include cycle detected:\n{a}\n include {b}\n include {a}"
    )
    assert info.value.location is not None and info.value.location.file == str(b)


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("include: [compose.yaml]\n")
    with pytest.raises(IncludeError, match="include cycle detected"):
        apply_includes(_read(path), project_dir=tmp_path, load_included=RecursiveLoader())


def test_explicit_chain_wins_over_the_tree_file(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("services: {}\n")
    tree = ytree("include: [x.yaml]\n", file="-")
    entries = include_entries(tree, project_dir=tmp_path, chain=["/root/compose.yaml"])
    assert entries[0].chain == ("/root/compose.yaml", str(tmp_path / "x.yaml"))


def test_include_list_of_paths_keeps_the_first_as_main(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text("services: {}\n")
    (tmp_path / "sub" / "b.yaml").write_text("services: {}\n")
    tree = ytree("include:\n  - path: [sub/a.yaml, sub/b.yaml]\n")
    (entry,) = include_entries(tree, project_dir=tmp_path)
    assert entry.paths == (tmp_path / "sub" / "a.yaml", tmp_path / "sub" / "b.yaml")
    assert entry.project_dir == tmp_path / "sub"
    assert entry.env_files == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("include: [missing.yaml]\n", "included file"),
        ("include:\n  - path: present.yaml\n    env_file: gone.env\n", "env file"),
        ("include:\n  - project_directory: x\n", "needs a path"),
        ("include:\n  - path: []\n", "must not be empty"),
        ("include:\n  - path: {a: 1}\n", "string or a list"),
        ("include: present.yaml\n", "must be a list"),
    ],
)
def test_broken_entries(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "present.yaml").write_text("services: {}\n")
    tree = ytree(text)
    with pytest.raises(IncludeError, match=message) as info:
        apply_includes(tree, project_dir=tmp_path, load_included=RecursiveLoader())
    assert info.value.location is not None


def test_dev_null_env_file_means_none(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("services: {}\n")
    (tmp_path / ".env").write_text("A=1\n")
    tree = ytree("include:\n  - path: x.yaml\n    env_file: /dev/null\n")
    (entry,) = include_entries(tree, project_dir=tmp_path)
    assert entry.env_files == ()


def test_two_includes_clashing_with_each_other(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("networks:\n  n: {driver: bridge}\n")
    (tmp_path / "b.yaml").write_text("networks:\n  n: {driver: overlay}\n")
    tree = ytree("include: [a.yaml, b.yaml]\n", file=str(tmp_path / "compose.yaml"))
    with pytest.raises(IncludeError) as info:
        apply_includes(tree, project_dir=tmp_path, load_included=RecursiveLoader())
    rendered: Any = info.value.problems[0].render()
    assert rendered.startswith(f"{tmp_path / 'a.yaml'}:2:3: networks.n:")
    assert str(tmp_path / "b.yaml") in rendered


def test_no_include_returns_an_equal_copy() -> None:
    tree = ytree("services:\n  a: {image: x}\n")
    out = apply_includes(tree, project_dir=Path("/"), load_included=RecursiveLoader())
    assert out == tree and out is not tree
