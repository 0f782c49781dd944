"""``composer config`` as a user runs it: a real process over samples and small projects.

Every test starts ``python -m composer`` with a clean environment, so what
is checked is the whole path: flag parsing, discovery, the loader, rendering,
the exit code and what lands on stdout and stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WEBAPP = REPO / "samples" / "webapp"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def data(self) -> Any:
        return yaml.safe_load(self.out)


def composer(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> Run:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "composer", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# --- the webapp sample ------------------------------------------------------------------


@pytest.fixture(scope="module")
def webapp_yaml() -> Run:
    return composer("config", cwd=WEBAPP)


def test_sample_model(webapp_yaml: Run) -> None:
    assert webapp_yaml.code == 0, webapp_yaml.err
    model = webapp_yaml.data()
    assert list(model) == ["name", "services", "networks", "volumes", "x-common-env"]
    assert model["name"] == "webapp"
    assert list(model["services"]) == ["cache", "db", "web"]  # worker is behind a profile
    web = model["services"]["web"]
    # .env sets WEB_PORT; the override file sets APP_ENV and a label
    assert web["ports"] == [
        {"mode": "ingress", "target": 8080, "published": "8080", "protocol": "tcp"}
    ]
    assert web["environment"]["APP_ENV"] == "development"
    assert web["labels"] == {"com.example.reload": "true", "com.example.role": "frontend"}
    assert web["depends_on"]["db"] == {"condition": "service_healthy", "required": True}
    assert web["volumes"][0]["source"] == str(WEBAPP / "web")
    assert model["services"]["db"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert model["volumes"]["db-data"]["name"] == "webapp_db-data"


def test_sample_output_is_yaml_v3_layout(webapp_yaml: Run) -> None:
    assert webapp_yaml.out.startswith("name: webapp\nservices:\n  cache:\n")
    assert '        published: "8080"\n' in webapp_yaml.out
    assert "\n        - CMD-SHELL\n" in webapp_yaml.out


def test_json_is_the_same_model(webapp_yaml: Run) -> None:
    run = composer("config", "--format", "json", cwd=WEBAPP)
    assert run.code == 0, run.err
    assert json.loads(run.out) == webapp_yaml.data()


def test_output_is_deterministic(webapp_yaml: Run) -> None:
    assert composer("config", cwd=WEBAPP).out == webapp_yaml.out


def test_output_reads_back_to_itself(webapp_yaml: Run) -> None:
    """The printed model is a valid compose file that loads to the same model."""
    again = composer(
        "-f", "-", "--project-directory", str(WEBAPP), "config", cwd=WEBAPP, stdin=webapp_yaml.out
    )
    assert again.code == 0, again.err
    assert again.data() == webapp_yaml.data()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--services"], "cache\ndb\nweb\n"),
        (["--volumes"], "db-data\n"),
        (["--networks"], "default\n"),
        (["--images"], "redis:7-alpine\npostgres:16-alpine\npython:3.12-alpine\n"),
        (["--profiles"], "worker\n"),
        (["-q"], ""),
    ],
)
def test_sample_listings(args: list[str], expected: str) -> None:
    run = composer("config", *args, cwd=WEBAPP)
    assert (run.code, run.out) == (0, expected), run.err


def test_profile_enables_a_service() -> None:
    run = composer("--profile", "worker", "config", "--services", cwd=WEBAPP)
    assert run.out.splitlines() == ["cache", "db", "web", "worker"]
    run = composer("config", "--services", cwd=WEBAPP, env={"COMPOSE_PROFILES": "worker"})
    assert "worker" in run.out.splitlines()


def test_hash() -> None:
    every = composer("config", "--hash", "*", cwd=WEBAPP)
    assert every.code == 0, every.err
    lines = every.out.splitlines()
    assert [line.split()[0] for line in lines] == ["cache", "db", "web"]
    assert all(re.fullmatch(r"[a-z]+ [0-9a-f]{64}", line) for line in lines)
    some = composer("config", "--hash", "web,cache", cwd=WEBAPP)
    assert some.out.splitlines() == [lines[0], lines[2]]


def test_hash_of_unknown_service() -> None:
    run = composer("config", "--hash", "nope", cwd=WEBAPP)
    assert run.code == 1
    assert run.err.startswith("error: no such service: nope\n")


def test_variables_table_and_json() -> None:
    table = composer("config", "--variables", cwd=WEBAPP)
    assert table.code == 0, table.err
    assert table.out.splitlines() == [
        "NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE",
        "APP_ENV             false               production",
        "DB_PASSWORD         true",
        "WEB_PORT            false               8000",
    ]
    data = json.loads(composer("config", "--variables", "--format", "json", cwd=WEBAPP).out)
    assert data["WEB_PORT"] == {
        "Name": "WEB_PORT",
        "DefaultValue": "8000",
        "PresenceValue": "",
        "Required": False,
    }


def test_environment_lists_interpolation_environment() -> None:
    run = composer("config", "--environment", cwd=WEBAPP, env={"WEB_PORT": "9000"})
    lines = run.out.splitlines()
    assert "WEB_PORT=9000" in lines  # the process environment beats .env
    assert "DB_PASSWORD=example-only-password" in lines  # from .env
    assert lines == sorted(lines)


def test_selected_services_bring_their_dependencies() -> None:
    run = composer("config", "web", cwd=WEBAPP)
    assert list(run.data()["services"]) == ["cache", "db", "web"]
    run = composer("config", "cache", cwd=WEBAPP)
    assert list(run.data()["services"]) == ["cache"]


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "model.yaml"
    run = composer("config", "-o", str(target), cwd=WEBAPP)
    assert (run.code, run.out) == (0, "")
    assert yaml.safe_load(target.read_text())["name"] == "webapp"


# --- small projects ----------------------------------------------------------------------


def test_config_error_exits_2_with_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  web:
                    image: nginx
                    ports:
                      - "99999:80"
                """
        },
    )
    run = composer("config", cwd=tmp_path)
    assert run.code == 2
    assert run.out == ""
    first = run.err.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'compose.yaml'}:5:")
    assert "services.web.ports[0]" in first
    assert "Traceback" not in run.err


def test_debug_shows_traceback(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: ${IMG:?needed}\n"})
    plain = composer("config", cwd=tmp_path)
    assert plain.code == 2
    assert "Traceback" not in plain.err
    assert "needed" in plain.err
    debug = composer("--debug", "config", cwd=tmp_path)
    assert debug.code == 2
    assert "Traceback (most recent call last)" in debug.err
    env_debug = composer("config", cwd=tmp_path, env={"COMPOSER_DEBUG": "1"})
    assert "Traceback (most recent call last)" in env_debug.err


def test_no_compose_file(tmp_path: Path) -> None:
    run = composer("config", cwd=tmp_path)
    assert run.code == 2 or run.code == 1
    assert "Traceback" not in run.err
    assert run.err.strip()


def test_stdin_and_dollar_escaping(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: busybox\n    command: echo $$HOME ${GREETING}\n"
    run = composer("-f", "-", "config", cwd=tmp_path, stdin=text, env={"GREETING": "hi"})
    assert run.code == 0, run.err
    assert run.data()["services"]["web"]["command"] == ["echo", "$$HOME", "hi"]
    assert run.data()["name"] == tmp_path.name.lower()


def test_unset_variable_warns_on_stderr(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: busybox:${TAG}\n"})
    run = composer("config", cwd=tmp_path)
    assert run.code == 0
    assert 'The "TAG" variable is not set. Defaulting to a blank string.' in run.err
    assert run.err.count("TAG") == 1


def test_compose_file_variable(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "base.yaml": "services:\n  web:\n    image: nginx\n",
            "extra.yaml": "services:\n  web:\n    image: nginx:alpine\n  db:\n    image: pg\n",
        },
    )
    run = composer("config", "--images", cwd=tmp_path, env={"COMPOSE_FILE": "base.yaml:extra.yaml"})
    assert (run.code, run.out) == (0, "pg\nnginx:alpine\n"), run.err
    run = composer(
        "config",
        "--services",
        cwd=tmp_path,
        env={"COMPOSE_FILE": "base.yaml;extra.yaml", "COMPOSE_PATH_SEPARATOR": ";"},
    )
    assert run.out.splitlines() == ["db", "web"]


def test_no_interpolate_keeps_variables(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:${TAG:-latest}\n"})
    run = composer("config", "--no-interpolate", cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.data()["services"]["web"]["image"] == "nginx:${TAG:-latest}"
    assert composer("config", cwd=tmp_path).data()["services"]["web"]["image"] == "nginx:latest"


def test_no_path_resolution_and_no_normalize(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"compose.yaml": "services:\n  web:\n    image: x\n    volumes: ['./data:/data']\n"},
    )
    resolved = composer("config", cwd=tmp_path).data()["services"]["web"]
    assert resolved["volumes"][0]["source"] == str(tmp_path / "data")
    kept = composer("config", "--no-path-resolution", cwd=tmp_path).data()["services"]["web"]
    assert kept["volumes"][0]["source"] == "./data"
    raw = composer("config", "--no-normalize", cwd=tmp_path).data()
    assert "networks" not in raw["services"]["web"]  # no default network added


def test_project_name_flag_and_error(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: x\n"})
    assert composer("-p", "demo", "config", cwd=tmp_path).data()["name"] == "demo"
    bad = composer("-p", "Not Normal", "config", cwd=tmp_path)
    assert bad.code == 2
    assert "Traceback" not in bad.err


def test_env_file_flag(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:${TAG}\n",
            "prod.env": "TAG=1.27\n",
        },
    )
    run = composer("--env-file", "prod.env", "config", "--images", cwd=tmp_path)
    assert (run.code, run.out) == (0, "nginx:1.27\n"), run.err


def test_help_and_version_are_fast_paths(tmp_path: Path) -> None:
    version = composer("--version", cwd=tmp_path)
    assert version.code == 0
    assert version.out.startswith("composer version ")
    from composer.help_text import TOP_LEVEL_HELP

    for args in ([], ["--help"], ["-h"]):
        helptext = composer(*args, cwd=tmp_path)
        assert (helptext.code, helptext.out) == (0, TOP_LEVEL_HELP)
