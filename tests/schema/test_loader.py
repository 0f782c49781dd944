"""The whole loader on small projects written into a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import ConfigError
from composer.schema.loader import LoadOptions, load_project, load_variables
from composer.schema.model import Project


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def load(
    root: Path, environ: dict[str, str] | None = None, **kw: object
) -> tuple[Project, list[str]]:
    warnings: list[str] = []
    opts = LoadOptions(working_dir=root, environ=environ or {}, **kw)  # type: ignore[arg-type]
    return load_project(opts, warnings.append), warnings


def test_override_file_env_file_and_interpolation(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: app:${TAG}\n    ports: ['8080:80']\n",
            "compose.override.yaml": "services:\n  web:\n    ports: ['9090:90']\n",
            ".env": "TAG=1.0\n",
        },
    )
    project, warnings = load(tmp_path)
    web = project.services["web"]
    assert web.image == "app:1.0"
    assert [(p.target, p.published) for p in web.ports] == [(80, "8080"), (90, "9090")]
    assert project.name == tmp_path.name.lower()
    assert warnings == []


def test_process_environment_wins_over_env_file(tmp_path: Path) -> None:
    write(
        tmp_path, {"compose.yaml": "services:\n  a:\n    image: x:${TAG}\n", ".env": "TAG=file\n"}
    )
    project, _ = load(tmp_path, {"TAG": "process"})
    assert project.services["a"].image == "x:process"


def test_unset_variable_warns_once(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x:${NOPE}\n    user: ${NOPE}\n"})
    project, warnings = load(tmp_path)
    assert project.services["a"].image == "x:"
    assert warnings == ['The "NOPE" variable is not set. Defaulting to a blank string.']


def test_search_upwards_and_project_name_from_top_level(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "name: Demo_App\nservices:\n  a:\n    image: x\n"})
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    project, _ = load(sub)
    assert project.name == "demo_app"
    assert project.working_dir == str(tmp_path)


def test_explicit_files_merge_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "services:\n  s:\n    image: one\n    command: [a, b]\n",
            "b.yaml": "services:\n  s:\n    command: [c]\n",
        },
    )
    project, _ = load(tmp_path, files=("a.yaml", "b.yaml"))
    assert project.services["s"].command == ["c"]
    assert project.config_files == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


def test_stdin(tmp_path: Path) -> None:
    text = "services:\n  s:\n    image: from-stdin\n"
    project, _ = load(tmp_path, files=("-",), read_stdin=lambda: text)
    assert project.services["s"].image == "from-stdin"


def test_extends_from_other_file_and_include(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "include:\n  - lib/compose.yaml\n"
                "services:\n  web:\n    extends: {file: base/common.yaml, service: base}\n"
                "    image: web\n"
            ),
            "base/common.yaml": "services:\n  base:\n    env_file: [base.env]\n    image: b\n",
            "base/base.env": "FROM_BASE=1\n",
            "lib/compose.yaml": "services:\n  lib:\n    build: .\n",
            "lib/.env": "UNUSED=1\n",
        },
    )
    project, _ = load(tmp_path)
    web = project.services["web"]
    assert web.image == "web"
    assert web.environment["FROM_BASE"] == "1"
    assert project.services["lib"].build is not None
    assert project.services["lib"].build.context == str(tmp_path / "lib")


def test_profiles_from_environment(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  a:\n    image: x\n  dbg:\n    image: y\n    profiles: [debug]\n"
            )
        },
    )
    plain, _ = load(tmp_path)
    assert sorted(plain.services) == ["a"]
    assert sorted(plain.disabled_services) == ["dbg"]
    with_debug, _ = load(tmp_path, {"COMPOSE_PROFILES": "debug"})
    assert sorted(with_debug.services) == ["a", "dbg"]
    named, _ = load(tmp_path, services=("dbg",))
    assert "dbg" in named.services


def test_errors_carry_file_line_column(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x\n    imagee: y\n"})
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    text = str(info.value)
    assert f"{tmp_path / 'compose.yaml'}:4:5" in text
    assert "imagee" in text
    assert info.value.exit_code == 2


def test_required_variable_error(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: ${IMG:?set IMG}\n"})
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert "set IMG" in str(info.value)
    assert ":3:" in str(info.value)


def test_no_interpolate_keeps_templates(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x:${TAG}\n"})
    project, _ = load(tmp_path, interpolate=False)
    assert project.services["a"].image == "x:${TAG}"


def test_variables(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: ${IMG:-busybox}:${TAG:?}\n"})
    uses = load_variables(LoadOptions(working_dir=tmp_path, environ={}), lambda _: None)
    by_name = {u.name: u for u in uses}
    assert by_name["IMG"].default == "busybox"
    assert by_name["TAG"].required is True


def test_content_digests_cover_env_and_config_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": (
                "services:\n  a:\n    image: x\n    env_file: app.env\n    configs: [c]\n"
                "configs:\n  c:\n    file: ./c.txt\n"
            ),
            "app.env": "K=V\n",
            "c.txt": "hello",
        },
    )
    project, _ = load(tmp_path)
    assert str(tmp_path / "app.env") in project.content_digests
    assert str(tmp_path / "c.txt") in project.content_digests


def test_override_file_may_change_an_included_service(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "include: [lib/compose.yaml]\nservices:\n  app:\n    image: app\n",
            "compose.override.yaml": "services:\n  lib:\n    environment: {MODE: dev}\n",
            "lib/compose.yaml": "services:\n  lib:\n    image: lib\n",
        },
    )
    project, _ = load(tmp_path)
    assert project.services["lib"].image == "lib"
    assert project.services["lib"].environment == {"MODE": "dev"}


def test_include_clash_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "include: [lib/compose.yaml]\nservices:\n  lib:\n    image: mine\n",
            "lib/compose.yaml": "services:\n  lib:\n    image: lib\n",
        },
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert "lib" in str(info.value)
