"""Binding the normalised tree to the models: unknown keys, types, positions."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import ConfigError, Location, SchemaError
from composer.schema.bind import bind_project
from composer.schema.model import Project
from composer.schema.tree import YMap

from .ytree import ytree


def bind(text: str, *, disabled: str = "{}", warn: Any = None, **overrides: Any) -> Project:
    params: dict[str, Any] = {
        "name": "demo",
        "working_dir": "/srv/demo",
        "config_files": ["compose.yaml"],
        "env_files": [],
        "environment": {},
        "profiles": [],
        "disabled": ytree(disabled),
        "content_digests": {},
    }
    params.update(overrides)
    return bind_project(ytree(text), warn=warn, **params)


def problems(text: str, **kwargs: Any) -> list[tuple[str, str, str, str | None]]:
    """``(file:line:col, path, message, hint)`` of every problem, in order."""
    with pytest.raises(SchemaError) as info:
        bind(text, **kwargs)
    return [(str(p.location), p.path, p.message, p.hint) for p in info.value.problems]


def test_minimal_project_binds() -> None:
    project = bind(
        """
        services:
          web:
            image: nginx
        """
    )
    assert project.name == "demo"
    assert project.working_dir == "/srv/demo"
    assert project.services["web"].image == "nginx"
    assert project.config_files == ["compose.yaml"]


def test_parameters_are_carried_into_the_project() -> None:
    project = bind(
        "services: {a: {image: x}}",
        disabled="{b: {image: y, profiles: [debug]}}",
        environment={"A": "1"},
        profiles=["web"],
        env_files=["/srv/demo/.env"],
        content_digests={"/srv/demo/.env": "abc"},
    )
    assert project.environment == {"A": "1"}
    assert project.profiles == ["web"]
    assert project.env_files == ["/srv/demo/.env"]
    assert project.content_digests == {"/srv/demo/.env": "abc"}
    assert project.disabled_services["b"].profiles == ["debug"]
    assert "b" not in project.services


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            services:
              web:
                imgae: nginx
            """,
            [("compose.yaml:4:5", "services.web.imgae", "unknown key 'imgae'", "image")],
        ),
        (
            """
            servics:
              web: {image: nginx}
            """,
            [("compose.yaml:2:1", "servics", "unknown key 'servics'", "services")],
        ),
        (
            """
            services:
              web:
                image: nginx
                healthcheck:
                  intervall: 5s
            """,
            [
                (
                    "compose.yaml:6:7",
                    "services.web.healthcheck.intervall",
                    "unknown key 'intervall'",
                    "interval",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                depends_on:
                  db: {condition: service_started, requird: true}
              db: {image: pg}
            """,
            [
                (
                    "compose.yaml:6:40",
                    "services.web.depends_on.db.requird",
                    "unknown key 'requird'",
                    "required",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                ports:
                  - {target: 80, publised: "8080"}
            """,
            [
                (
                    "compose.yaml:6:22",
                    "services.web.ports[0].publised",
                    "unknown key 'publised'",
                    "published",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                networks:
                  front: {alias: [a]}
            networks:
              front: {drivr: bridge}
            """,
            [
                (
                    "compose.yaml:6:15",
                    "services.web.networks.front.alias",
                    "unknown key 'alias'",
                    "aliases",
                ),
                ("compose.yaml:8:11", "networks.front.drivr", "unknown key 'drivr'", "driver"),
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                deploy:
                  resources:
                    limits: {memroy: 1g}
            """,
            [
                (
                    "compose.yaml:7:18",
                    "services.web.deploy.resources.limits.memroy",
                    "unknown key 'memroy'",
                    "memory",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                zzzz: 1
            """,
            [("compose.yaml:5:5", "services.web.zzzz", "unknown key 'zzzz'", None)],
        ),
    ],
)
def test_unknown_keys_are_reported_with_did_you_mean(
    text: str, expected: list[tuple[str, str, str, str | None]]
) -> None:
    found = problems(text)
    want = [
        (loc, path, msg, f"did you mean '{h}'?" if h else None) for loc, path, msg, h in expected
    ]
    assert found == want


def test_keys_inside_free_form_maps_are_not_checked() -> None:
    project = bind(
        """
        services:
          web:
            image: nginx
            environment: {imgae: x, anything: y}
            labels: {com.example.k: v}
            sysctls: {net.core.somaxconn: "1024"}
            logging: {driver: json-file, options: {max-size: 10m}}
            x-custom: {imgae: whatever}
        networks:
          n: {driver_opts: {com.docker.network.bridge.name: br0}}
        x-anchors:
          imgae: 1
        """
    )
    assert project.services["web"].environment == {"imgae": "x", "anything": "y"}
    assert project.services["web"].extensions == {"x-custom": {"imgae": "whatever"}}
    assert project.extensions == {"x-anchors": {"imgae": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            services:
              web:
                image: 3
            """,
            [("compose.yaml:4:12", "services.web.image", "must be a string")],
        ),
        (
            """
            services:
              web:
                image: nginx
                privileged: maybe
            """,
            [("compose.yaml:5:17", "services.web.privileged", "must be a boolean")],
        ),
        (
            """
            services:
              web:
                image: nginx
                ports:
                  - target: eighty
            """,
            [("compose.yaml:6:17", "services.web.ports[0].target", "must be an integer")],
        ),
        (
            """
            services:
              web:
                image: nginx
                cap_add: ALL
            """,
            [("compose.yaml:5:14", "services.web.cap_add", "must be a list")],
        ),
        (
            """
            services:
              web:
                image: nginx
                healthcheck: yes
            """,
            [("compose.yaml:5:18", "services.web.healthcheck", "must be a mapping")],
        ),
        (
            """
            services:
              web:
                image: nginx
                depends_on:
                  db: {condition: service_ready}
              db: {image: pg}
            """,
            [
                (
                    "compose.yaml:6:23",
                    "services.web.depends_on.db.condition",
                    "must be one of: service_started, service_healthy, "
                    "service_completed_successfully",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                stop_grace_period: 5x
            """,
            [
                (
                    "compose.yaml:5:24",
                    "services.web.stop_grace_period",
                    "invalid duration '5x': use a number with a unit, like 30s, 1m30s or 500ms",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                mem_limit: lots
            """,
            [
                (
                    "compose.yaml:5:16",
                    "services.web.mem_limit",
                    "invalid size 'lots': use a number with an optional unit, like 512m or 2g",
                )
            ],
        ),
        (
            """
            services:
              web:
                image: nginx
                ports:
                  - published: "80"
            """,
            [("compose.yaml:6:9", "services.web.ports[0].target", "is required")],
        ),
        (
            """
            services: [web]
            """,
            [("compose.yaml:2:11", "services", "must be a mapping")],
        ),
    ],
)
def test_type_errors_are_readable_and_positioned(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    found = [(loc, path, msg) for loc, path, msg, _ in problems(text)]
    assert found == expected


def test_messages_carry_no_pydantic_jargon() -> None:
    found = problems(
        """
        services:
          web:
            image: [a]
            tty: 3.5
            cpus: many
            volumes: [{type: nfs, target: /x}]
            networks: {n: 5}
        """
    )
    for _, _, message, _ in found:
        for jargon in ("Input should", "valid", "pydantic", "dictionary", "instance of"):
            assert jargon not in message, message
    assert len(found) == 5


def test_all_problems_are_listed_in_file_order() -> None:
    found = problems(
        """
        services:
          web:
            tty: nope
            imgae: nginx
          api:
            image: 1
            healthcheck: {retries: many}
        volumes:
          data: {externl: true}
        """
    )
    assert [loc for loc, *_ in found] == [
        "compose.yaml:4:10",
        "compose.yaml:5:5",
        "compose.yaml:7:12",
        "compose.yaml:8:28",
        "compose.yaml:10:10",
    ]


def test_problems_in_disabled_services_are_reported_under_services() -> None:
    found = problems(
        "services: {web: {image: nginx}}",
        disabled="""
        debug:
          image: busybox
          profiles: [debug]
          tty: nope
          imgae: x
        """,
    )
    paths = [path for _, path, _, _ in found]
    assert paths == ["services.debug.tty", "services.debug.imgae"]


def test_the_error_is_a_config_error_with_exit_code_2() -> None:
    with pytest.raises(ConfigError) as info:
        bind("services: {web: {imgae: x}}")
    assert info.value.exit_code == 2
    assert str(info.value) == "compose.yaml:1:18: services.web.imgae: unknown key 'imgae'"


def test_version_1_file_gets_one_clear_error() -> None:
    found = problems(
        """
        web:
          image: nginx
          ports: ["80:80"]
        db:
          image: postgres
        """
    )
    assert len(found) == 1
    location, path, message, hint = found[0]
    assert (location, path) == ("compose.yaml:2:1", "web")
    assert "version-1" in message
    assert hint is not None
    assert "not supported" in hint and "services:" in hint


def test_build_only_top_level_service_is_also_version_1() -> None:
    found = problems("app: {build: .}")
    assert len(found) == 1 and "version-1" in found[0][2]


def test_a_file_with_services_is_not_version_1_even_with_stray_keys() -> None:
    found = problems(
        """
        services: {web: {image: nginx}}
        web: {image: nginx}
        """
    )
    assert found == [
        ("compose.yaml:3:1", "web", "unknown key 'web'", None),
    ]


def test_version_is_obsolete_warns_and_is_ignored() -> None:
    warnings: list[str] = []
    project = bind(
        """
        version: "3.8"
        services: {web: {image: nginx}}
        """,
        warn=warnings.append,
    )
    assert len(warnings) == 1
    assert "the attribute `version` is obsolete, it will be ignored" in warnings[0]
    assert warnings[0].startswith("compose.yaml: ")
    assert "version" not in project.extensions


def test_no_version_no_warning() -> None:
    warnings: list[str] = []
    bind("services: {web: {image: nginx}}", warn=warnings.append)
    assert warnings == []


def test_name_and_include_are_accepted_and_the_name_parameter_wins() -> None:
    project = bind(
        """
        name: from-file
        include: [other.yaml]
        services: {web: {image: nginx}}
        """
    )
    assert project.name == "demo"


def test_empty_top_level_entries_are_accepted() -> None:
    project = bind(
        """
        services:
        volumes:
          data:
        networks:
          back:
        """
    )
    assert project.services == {}
    assert set(project.volumes) == {"data"}
    assert set(project.networks) == {"back"}


def test_two_thousand_services_bind() -> None:
    services = YMap(loc=Location("big.yaml", 1, 1))
    for index in range(2000):
        services[f"svc{index}"] = {
            "image": "busybox",
            "environment": {"INDEX": str(index), "MODE": "test"},
            "ports": [{"target": 8000 + index % 100, "published": str(20000 + index)}],
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "retries": 3},
            "labels": {"com.example.index": str(index)},
            "depends_on": {f"svc{index - 1}": {"condition": "service_started"}} if index else {},
        }
    tree = YMap({"services": services})
    project = bind_project(
        tree,
        name="big",
        working_dir="/srv/big",
        config_files=["big.yaml"],
        env_files=[],
        environment={},
        profiles=[],
        disabled=YMap(),
        content_digests={},
    )
    assert len(project.services) == 2000
    assert project.services["svc1999"].depends_on["svc1998"].condition == "service_started"
    assert project.services["svc7"].healthcheck is not None
    assert project.services["svc7"].healthcheck.interval == 5.0


def test_file_modes_written_as_strings_are_octal() -> None:
    project = bind(
        """
        services:
          web:
            image: nginx
            secrets: [{source: a, mode: "0440"}, {source: b, mode: 288}]
        secrets: {a: {file: /a}, b: {file: /b}}
        """
    )
    assert [ref.mode for ref in project.services["web"].secrets] == [0o440, 0o440]
    found = problems("services: {web: {configs: [{source: c, mode: rw}]}}")
    assert found[0][1:3] == (
        "services.web.configs[0].mode",
        "invalid file mode 'rw': use an octal number such as 0440",
    )
