"""Rendering the model in the shape ``docker compose config`` prints."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.schema import model as m
from composer.schema.bind import bind_project
from composer.schema.render import (
    go_key_order,
    render_project,
    render_service,
    service_for_hash,
    sorted_keys,
)

from .ytree import ytree


def project(text: str) -> m.Project:
    return bind_project(
        ytree(text),
        name="demo",
        working_dir="/srv/demo",
        config_files=["compose.yaml"],
        env_files=[],
        environment={},
        profiles=[],
        disabled=ytree("{}"),
        content_digests={},
    )


def service(text: str) -> dict[str, Any]:
    """Render the only service of a one-service file."""
    rendered = render_project(project(text))["services"]
    assert len(rendered) == 1
    result: dict[str, Any] = next(iter(rendered.values()))
    return result


def test_top_level_order_and_services_sorted() -> None:
    out = render_project(
        project(
            """
            x-b: 2
            models: {llm: {model: ai/smollm2}}
            configs: {c: {file: /srv/demo/c.txt}}
            secrets: {s: {file: /srv/demo/s.txt}}
            volumes: {data: {}}
            networks: {default: {name: demo_default}}
            services:
              web: {image: nginx}
              api: {image: api}
              db: {image: pg}
            x-a: 1
            """
        )
    )
    assert list(out) == [
        "name",
        "services",
        "networks",
        "volumes",
        "secrets",
        "configs",
        "models",
        "x-a",
        "x-b",
    ]
    assert out["name"] == "demo"
    assert list(out["services"]) == ["api", "db", "web"]


def test_services_is_always_present_and_empty_sections_are_left_out() -> None:
    out = render_project(project("services: {}"))
    assert out == {"name": "demo", "services": {}}


def test_service_keys_follow_compose_go_order() -> None:
    out = service(
        """
        services:
          web:
            working_dir: /app
            volumes: [{type: volume, source: data, target: /data}]
            user: app
            ports: [{target: 80}]
            image: nginx
            environment: {A: "1"}
            command: [run]
            build: {context: /srv/demo}
            profiles: [web]
            x-note: kept last
        volumes: {data: {}}
        """
    )
    assert list(out) == [
        "profiles",
        "build",
        "command",
        "environment",
        "image",
        "ports",
        "user",
        "volumes",
        "working_dir",
        "x-note",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("privileged: false", {}),
        ("privileged: true", {"privileged": True}),
        ("init: false", {"init": False}),
        ("attach: false", {"attach": False}),
        ("cap_add: []", {}),
        ("labels: {}", {}),
        ("environment: {}", {}),
        ("command: []", {"command": []}),
        ("entrypoint: []", {"entrypoint": []}),
        ("cpu_count: 0", {}),
        ("scale: 0", {"scale": 0}),
        ("hostname: ''", {}),
        ("read_only: false", {}),
        ("tty: false", {}),
    ],
)
def test_empty_values_are_left_out_as_docker_compose_does(
    body: str, expected: dict[str, Any]
) -> None:
    out = service(f"services: {{web: {{{body}}}}}")
    assert out == expected


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ("30s", "30s"),
        ("90s", "1m30s"),
        ("1h", "1h0m0s"),
        ("500ms", "500ms"),
        ("1m30s", "1m30s"),
        ("0s", "0s"),
        ("1.5s", "1.5s"),
        (10, "10s"),
    ],
)
def test_durations_print_as_go_strings(written: Any, printed: str) -> None:
    out = service(
        f"""
        services:
          web:
            image: nginx
            stop_grace_period: {written}
            healthcheck: {{interval: {written}, test: [CMD, "true"]}}
        """
    )
    assert out["stop_grace_period"] == printed
    assert out["healthcheck"]["interval"] == printed


def test_healthcheck_keeps_zero_pointers_and_its_order() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            healthcheck:
              disable: false
              start_period: 0s
              retries: 0
              interval: 5s
              timeout: 2s
              test: [CMD-SHELL, "curl -f localhost"]
        """
    )
    assert out["healthcheck"] == {
        "test": ["CMD-SHELL", "curl -f localhost"],
        "timeout": "2s",
        "interval": "5s",
        "retries": 0,
        "start_period": "0s",
    }
    assert list(out["healthcheck"]) == ["test", "timeout", "interval", "retries", "start_period"]


def test_sizes_print_as_byte_strings() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            mem_limit: 512m
            shm_size: 1g
            volumes: [{type: tmpfs, target: /tmp, tmpfs: {size: 10k}}]
            deploy: {resources: {limits: {memory: 50m, cpus: 0.5}}}
        """
    )
    assert out["mem_limit"] == "536870912"
    assert out["shm_size"] == "1073741824"
    assert out["volumes"][0]["tmpfs"] == {"size": "10240"}
    assert out["deploy"] == {"resources": {"limits": {"cpus": 0.5, "memory": "52428800"}}}


def test_ports_shape() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            ports:
              - {target: 80, published: "8080", host_ip: 127.0.0.1, protocol: udp}
              - {target: 443}
        """
    )
    assert out["ports"] == [
        {
            "mode": "ingress",
            "host_ip": "127.0.0.1",
            "target": 80,
            "published": "8080",
            "protocol": "udp",
        },
        {"mode": "ingress", "target": 443, "protocol": "tcp"},
    ]
    assert list(out["ports"][0]) == ["mode", "host_ip", "target", "published", "protocol"]


def test_environment_values_are_strings_or_null_in_key_order() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            environment: {b: "2", B: "1", UNSET: null, a10: x, a9: y, _x: z}
        """
    )
    assert list(out["environment"].items()) == [
        ("_x", "z"),
        ("B", "1"),
        ("UNSET", None),
        ("a9", "y"),
        ("a10", "x"),
        ("b", "2"),
    ]


@pytest.mark.parametrize(
    ("keys", "ordered"),
    [
        (["b", "a", "c"], ["a", "b", "c"]),
        (["a10", "a9", "a1"], ["a1", "a9", "a10"]),
        (["LABEL_WITH_UNDERSCORE", "LABEL.WITH.DOT"], ["LABEL.WITH.DOT", "LABEL_WITH_UNDERSCORE"]),
        (["com.example.b", "FOO", "BAR"], ["BAR", "FOO", "com.example.b"]),
        (["ab", "a.b", "a"], ["a", "a.b", "ab"]),
        (["_b", "Ba"], ["_b", "Ba"]),
        (["svc10", "svc2", "svc1"], ["svc1", "svc2", "svc10"]),
    ],
)
def test_map_keys_sort_like_the_go_yaml_encoder(keys: list[str], ordered: list[str]) -> None:
    assert sorted_keys(dict.fromkeys(keys)) == ordered


def test_extensions_are_kept_on_every_element() -> None:
    out = render_project(
        project(
            """
            services:
              web:
                image: nginx
                x-svc: 1
                ports: [{target: 80, x-port: 2}]
                depends_on: {db: {condition: service_started, x-dep: 3}}
                healthcheck: {test: [NONE], x-hc: {b: 1, a: 2}}
                deploy: {resources: {limits: {cpus: 1, x-lim: 4}}}
              db: {image: pg}
            networks: {n: {x-net: 5}}
            volumes: {v: {x-vol: 6}}
            x-top: 7
            """
        )
    )
    web = out["services"]["web"]
    assert web["x-svc"] == 1
    assert web["ports"][0]["x-port"] == 2
    assert list(web["depends_on"]["db"]) == ["condition", "required", "x-dep"]
    assert web["healthcheck"]["x-hc"] == {"a": 2, "b": 1}
    assert list(web["healthcheck"]["x-hc"]) == ["a", "b"]
    assert web["deploy"]["resources"]["limits"] == {"cpus": 1, "x-lim": 4}
    assert out["networks"]["n"] == {"x-net": 5}
    assert out["volumes"]["v"] == {"x-vol": 6}
    assert out["x-top"] == 7


def test_depends_on_always_prints_required_and_restart_only_when_true() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            depends_on:
              a: {condition: service_healthy, required: false, restart: false}
              b: {condition: service_started, restart: true}
        """
    )
    assert out["depends_on"] == {
        "a": {"condition": "service_healthy", "required": False},
        "b": {"condition": "service_started", "restart": True, "required": True},
    }


def test_special_shapes() -> None:
    out = service(
        """
        services:
          web:
            image: nginx
            extra_hosts: {somehost: [162.242.195.82], otherhost: [50.31.209.229, "::1"]}
            ulimits: {nproc: {single: 65535}, nofile: {soft: 20000, hard: 40000}}
            secrets: [{source: s, target: /run/secrets/s, uid: "103", mode: 288}]
            networks: {default: null, back: {aliases: [db]}}
            volumes:
              - {type: bind, source: /a, target: /b, bind: {create_host_path: true}}
              - {type: bind, source: /c, target: /d, bind: {create_host_path: false}}
            env_file:
              - {path: /srv/demo/a.env, required: true}
              - {path: /srv/demo/b.env, required: false}
        secrets: {s: {file: /srv/demo/s}}
        networks: {back: {}}
        """
    )
    assert out["extra_hosts"] == [
        "otherhost=50.31.209.229",
        "otherhost=::1",
        "somehost=162.242.195.82",
    ]
    assert out["ulimits"] == {"nofile": {"soft": 20000, "hard": 40000}, "nproc": 65535}
    assert out["secrets"] == [
        {"source": "s", "target": "/run/secrets/s", "uid": "103", "mode": "0440"}
    ]
    assert out["networks"] == {"back": {"aliases": ["db"]}, "default": None}
    assert out["volumes"][0]["bind"] == {}
    assert out["volumes"][1]["bind"] == {"create_host_path": False}
    assert out["env_file"] == [
        {"path": "/srv/demo/a.env"},
        {"path": "/srv/demo/b.env", "required": False},
    ]


def test_top_level_elements_shape() -> None:
    out = render_project(
        project(
            """
            services: {}
            networks:
              front:
                labels: {b: "2", a: "1"}
                internal: false
                external: true
                name: shared
                enable_ipv6: false
                ipam: {}
            volumes:
              data: {driver: local, name: demo_data, driver_opts: {o: bind}}
            secrets:
              token: {environment: TOKEN, name: demo_token}
            configs:
              conf: {content: "hello", name: demo_conf}
            """
        )
    )
    assert list(out["networks"]["front"].items()) == [
        ("name", "shared"),
        ("external", True),
        ("labels", {"a": "1", "b": "2"}),
        ("enable_ipv6", False),
    ]
    assert list(out["volumes"]["data"]) == ["name", "driver", "driver_opts"]
    assert out["secrets"] == {"token": {"name": "demo_token", "environment": "TOKEN"}}
    assert out["configs"] == {"conf": {"name": "demo_conf", "content": "hello"}}


def test_output_is_json_able_and_deterministic() -> None:
    text = """
        services:
          b: {image: x, labels: {z: "1", a: "2"}, cpus: 1.5, stop_grace_period: 3s}
          a: {image: y, deploy: {replicas: 2}}
        """
    first = json.dumps(render_project(project(text)))
    second = json.dumps(render_project(project(text)))
    assert first == second
    assert json.loads(first)["services"]["b"]["cpus"] == 1.5


def test_render_service_matches_the_project_rendering() -> None:
    p = project("services: {web: {image: nginx, tty: true, cpus: 2}}")
    assert render_service(p.services["web"]) == {"cpus": 2, "image": "nginx", "tty": True}
    assert isinstance(render_service(p.services["web"])["cpus"], int)


def test_service_for_hash_drops_what_must_not_recreate() -> None:
    p = project(
        """
        services:
          web:
            image: nginx
            build: {context: /srv/demo}
            pull_policy: always
            scale: 3
            profiles: [web]
            depends_on: {db: {condition: service_started}}
            deploy: {mode: replicated, replicas: 5, labels: {a: b}}
            labels: {com.docker.compose.project: demo, keep: "yes"}
            environment: {A: "1"}
          db: {image: pg}
        """
    )
    canonical = service_for_hash(p.services["web"])
    for dropped in ("build", "pull_policy", "scale", "profiles", "depends_on"):
        assert dropped not in canonical
    assert canonical["deploy"] == {"mode": "replicated", "labels": {"a": "b"}}
    assert list(canonical["deploy"]) == ["mode", "labels"]
    only_replicas = project("services: {web: {image: nginx, deploy: {replicas: 2}}}")
    assert "deploy" not in service_for_hash(only_replicas.services["web"])
    assert canonical["labels"] == {"keep": "yes"}
    assert canonical["environment"] == {"A": "1"}
    assert canonical["image"] == "nginx"


def test_service_for_hash_changes_with_config_and_not_with_scale() -> None:
    base = "services: {web: {image: nginx, scale: 1, environment: {A: '1'}}}"
    scaled = "services: {web: {image: nginx, scale: 4, environment: {A: '1'}}}"
    changed = "services: {web: {image: nginx, scale: 1, environment: {A: '2'}}}"

    def canon(text: str) -> str:
        return json.dumps(service_for_hash(project(text).services["web"]))

    assert canon(base) == canon(scaled)
    assert canon(base) != canon(changed)


def _reference_less(a: str, b: str) -> bool:
    """The Go encoder's key order, walked one character at a time."""
    digits = False
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            digits = a[i].isdigit()
            continue
        la, lb = a[i].isalpha(), b[i].isalpha()
        if la and lb:
            return a[i] < b[i]
        if la or lb:
            return la if digits else lb
        na = nb = 0
        if "0" in (a[i], b[i]):
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    na = nb = 1
                    break
                j -= 1
        ea, eb = i, i
        while ea < len(a) and a[ea].isdigit():
            na, ea = na * 10 + int(a[ea]), ea + 1
        while eb < len(b) and b[eb].isdigit():
            nb, eb = nb * 10 + int(b[eb]), eb + 1
        if na != nb:
            return na < nb
        if ea != eb:
            return ea < eb
        return a[i] < b[i]
    return len(a) < len(b)


KEY_TEXT = st.text(alphabet="aAbZ09_.-1", max_size=8)


@given(st.lists(KEY_TEXT, unique=True, max_size=12))
def test_key_order_matches_the_reference_walk(keys: list[str]) -> None:
    def compare(a: str, b: str) -> int:
        return -1 if _reference_less(a, b) else 1

    expected = sorted(keys, key=functools.cmp_to_key(compare))
    assert sorted_keys(dict.fromkeys(keys)) == expected
    assert sorted(keys, key=go_key_order) == expected
