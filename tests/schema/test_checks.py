"""Semantic checks: every problem listed at once, in file order, at the user's text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.errors import ConfigError, DependencyCycleError
from composer.schema.checks import check_project
from composer.schema.normalize import normalize
from composer.schema.transform import transform_file
from composer.schema.tree import YMap
from composer.schema.yamlread import parse_yaml


def _project(text: str) -> YMap:
    tree = parse_yaml(textwrap.dedent(text), "compose.yaml")
    assert isinstance(tree, YMap)
    tree = transform_file(tree, filename="compose.yaml")
    out, _ = normalize(tree, project_name="demo", project_dir=Path("/p"), environ={})
    return out


def _problems(text: str, disabled: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check_project(_project(text), disabled_services=disabled)
    return [p.render() for p in info.value.problems]


def _ok(text: str, disabled: tuple[str, ...] = ()) -> None:
    check_project(_project(text), disabled_services=disabled)


def test_a_valid_project_passes() -> None:
    _ok(
        """
        services:
          web:
            image: nginx
            depends_on: [db]
            ports: ["8080:80", "127.0.0.1:8081:80", "9000-9001:9000-9001/udp"]
            volumes: [data:/data, ./src:/src]
            secrets: [token]
            configs: [conf]
            restart: on-failure:3
            pull_policy: every_12h
            healthcheck: {test: [CMD, "true"], interval: 10s}
            mem_limit: 512m
          db:
            image: pg
            networks: [back]
            restart: unless-stopped
            pull_policy: if_not_present
        volumes: {data: {}}
        networks: {back: {}}
        secrets: {token: {file: ./t}}
        configs: {conf: {file: ./c}}
        """
    )


def test_unknown_services_in_every_reference_kind() -> None:
    got = _problems(
        """
        services:
          web:
            image: x
            depends_on: [dbb]
            links: [cache]
            volumes_from: [store:ro]
            ipc: service:nope
          db: {image: x}
        """
    )
    assert got == [
        "compose.yaml:5:18: services.web.depends_on.dbb: "
        "service 'web' depends on undefined service 'dbb'",
        "compose.yaml:6:13: services.web.links[0]: "
        "service 'web' refers to undefined service 'cache' in links",
        "compose.yaml:7:20: services.web.volumes_from[0]: "
        "service 'web' refers to undefined service 'store' in volumes_from",
        "compose.yaml:8:10: services.web.ipc: service 'nope' not found for ipc 'service:nope'",
    ]


def test_a_service_build_context_must_name_a_service() -> None:
    got = _problems(
        """
        services:
          app:
            build:
              context: .
              additional_contexts: {base: "service:bse", other: ../lib}
          base: {build: ./base}
        """
    )
    assert got == [
        "compose.yaml:6:35: services.app.build.additional_contexts.base: "
        "service 'app' refers to undefined service 'bse' in build",
    ]


def test_did_you_mean_hint() -> None:
    with pytest.raises(ConfigError) as info:
        check_project(
            _project("services:\n  web: {image: x, depends_on: [dbb]}\n  db: {image: x}\n")
        )
    assert info.value.problems[0].hint == "did you mean 'db'?"


def test_optional_dependency_on_a_disabled_service_is_fine() -> None:
    text = """
    services:
      web:
        image: x
        depends_on:
          dbg: {condition: service_started, required: false}
    """
    _ok(text, disabled=("dbg",))
    assert "depends on undefined service 'dbg'" in _problems(text)[0]


def test_undefined_resources() -> None:
    got = _problems(
        """
        services:
          web:
            image: x
            networks: [front]
            volumes: [dta:/data]
            secrets: [tokn]
            configs: [conf]
            models: [llm]
            build: {context: ., secrets: [bsecret]}
        volumes: {data: {}}
        secrets: {token: {file: ./t}}
        """
    )
    messages = [g.split(": ", 2)[2] for g in got]
    assert messages == [
        "service 'web' refers to undefined network 'front'",
        "service 'web' refers to undefined volume 'dta'",
        "service 'web' refers to undefined secret 'tokn'",
        "service 'web' refers to undefined config 'conf'",
        "service 'web' refers to undefined model 'llm'",
        "service 'web' refers to undefined secret 'bsecret'",
    ]


def test_network_mode_with_networks() -> None:
    got = _problems(
        "services:\n  a: {image: x, network_mode: host, networks: [n]}\nnetworks: {n: {}}\n"
    )
    assert got == [
        "compose.yaml:2:31: services.a.network_mode: "
        "service 'a' declares mutually exclusive `network_mode` and `networks`"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            services:
              b: {image: x, depends_on: [a]}
              a: {image: x, depends_on: [c]}
              c: {image: x, depends_on: [b]}
            """,
            "dependency cycle detected: a -> c -> b -> a",
        ),
        (
            "services:\n  z: {image: x, depends_on: [z]}\n",
            "dependency cycle detected: z -> z",
        ),
        (
            """
            services:
              m: {image: x, links: [n]}
              n: {image: x, network_mode: "service:m"}
            """,
            "dependency cycle detected: m -> n -> m",
        ),
    ],
)
def test_dependency_cycles(text: str, expected: str) -> None:
    with pytest.raises(DependencyCycleError) as info:
        check_project(_project(text))
    assert [p.message for p in info.value.problems] == [expected]


def test_cycles_are_reported_once_each_and_deterministically() -> None:
    text = """
    services:
      a: {image: x, depends_on: [b]}
      b: {image: x, depends_on: [a]}
      c: {image: x, depends_on: [d, a]}
      d: {image: x, depends_on: [c]}
    """
    with pytest.raises(DependencyCycleError) as info:
        check_project(_project(text))
    assert sorted(p.message for p in info.value.problems) == [
        "dependency cycle detected: a -> b -> a",
        "dependency cycle detected: c -> d -> c",
    ]
    assert info.value.problems[0].path == "services.a.depends_on.b"


def test_long_chain_is_not_a_cycle() -> None:
    lines = ["services:"]
    for i in range(3000):
        dep = f", depends_on: [s{i + 1}]" if i < 2999 else ""
        lines.append(f"  s{i}: {{image: x{dep}}}")
    check_project(_project("\n".join(lines) + "\n"))


def test_cycle_plus_other_problem_is_a_plain_config_error() -> None:
    text = "services:\n  a: {image: x, depends_on: [a], restart: sometimes}\n"
    with pytest.raises(ConfigError) as info:
        check_project(_project(text))
    assert not isinstance(info.value, DependencyCycleError)
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("{image: x, container_name: c, scale: 2}", "can't set container_name and scale"),
        (
            "{image: x, container_name: c, deploy: {replicas: 3}}",
            "can't set container_name and deploy.replicas",
        ),
        ("{image: x, scale: 2, deploy: {replicas: 3}}", "distinct values on 'scale'"),
        ("{image: x, scale: -1}", "scale must be greater than or equal to 0"),
        ("{image: x, restart: sometimes}", "invalid restart policy 'sometimes'"),
        ("{image: x, restart: 'on-failure:x'}", "invalid restart policy"),
        ("{image: x, pull_policy: often}", "invalid pull_policy 'often'"),
        ("{image: x, pull_policy: every_soon}", "invalid pull_policy"),
        ("{image: x, healthcheck: {interval: 10 seconds}}", "invalid duration"),
        ("{image: x, stop_grace_period: forever}", "invalid duration"),
        ("{image: x, mem_limit: lots}", "invalid size"),
        ("{image: x, deploy: {resources: {limits: {memory: 1x}}}}", "invalid size"),
        ("{image: x, ports: [{target: 70000}]}", "invalid target port 70000"),
        ("{image: x, ports: [{target: 80, published: '9-8'}]}", "invalid published port"),
        ("{image: x, ports: [{target: 80, published: '99999'}]}", "invalid published port"),
        (
            "{image: x, volumes: [{type: tmpfs, target: /t, tmpfs: {size: big}}]}",
            "invalid size",
        ),
    ],
)
def test_invalid_values(service: str, message: str) -> None:
    got = _problems(f"services:\n  a: {service}\n")
    assert len(got) == 1
    assert message in got[0]
    assert got[0].startswith("compose.yaml:2:")


@pytest.mark.parametrize(
    "policy", ["always", "never", "missing", "build", "refresh", "daily", "weekly", "every_2d"]
)
def test_valid_pull_policies(policy: str) -> None:
    _ok(f"services:\n  a: {{image: x, pull_policy: {policy}}}\n")


@pytest.mark.parametrize(
    "restart", ["no", "always", "on-failure", "on-failure:5", "unless-stopped"]
)
def test_valid_restart_policies(restart: str) -> None:
    _ok(f"services:\n  a: {{image: x, restart: '{restart}'}}\n")


def test_same_host_port_twice() -> None:
    got = _problems(
        """
        services:
          a: {image: x, ports: ["8080:80", "127.0.0.1:9000:90", "5353:53/udp"]}
          b: {image: x, ports: ["8080:81", "9000:90", "5353:53/tcp", "8000-8010:80"]}
          c: {image: x, ports: ["0.0.0.0:8080:82"]}
        """
    )
    assert len(got) == 2
    assert got[0].startswith("compose.yaml:4:25: services.b.ports[0]: host port 0.0.0.0:8080/tcp")
    assert "already published by service 'a' (at compose.yaml:3:25)" in got[0]
    assert got[1].startswith("compose.yaml:5:25: services.c.ports[0]:")


def test_duplicate_container_names() -> None:
    got = _problems(
        "services:\n  a: {image: x, container_name: same}\n  b: {image: x, container_name: same}\n"
    )
    assert got == [
        "compose.yaml:3:33: services.b.container_name: "
        "container name 'same' is already in use by service 'a'"
    ]


def test_all_problems_sorted_in_file_order() -> None:
    got = _problems(
        """
        services:
          z:
            image: x
            restart: bad
          a:
            image: x
            depends_on: [ghost]
            pull_policy: bad
        """
    )
    lines = [int(g.split(":")[1]) for g in got]
    assert lines == sorted(lines) and len(lines) == 3


def test_extends_leftover_to_an_unknown_service() -> None:
    tree = _project("services:\n  a: {image: x}\n")
    tree["services"]["a"]["extends"] = {"service": "bse"}
    with pytest.raises(ConfigError, match="extends undefined service 'bse'"):
        check_project(tree)
