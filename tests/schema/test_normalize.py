"""Normalisation: defaults made explicit, paths resolved, files read and digested."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any

import pytest

from composer.errors import ConfigError
from composer.schema.normalize import MISSING, normalize
from composer.schema.transform import transform_file
from composer.schema.tree import YMap, to_plain
from composer.schema.yamlread import parse_yaml

PROJ = Path(__file__).parent / "fixtures" / "envfiles" / "proj"


def _tree(text: str) -> YMap:
    tree = parse_yaml(textwrap.dedent(text), "compose.yaml")
    assert isinstance(tree, YMap)
    return transform_file(tree, filename="compose.yaml")


def _norm(
    text: str,
    environ: dict[str, str] | None = None,
    project_dir: Path = Path("/proj"),
    resolve_paths: bool = True,
) -> tuple[dict[str, Any], YMap, dict[str, str]]:
    out, digests = normalize(
        _tree(text),
        project_name="demo",
        project_dir=project_dir,
        environ=environ or {},
        resolve_paths=resolve_paths,
    )
    return to_plain(out), out, digests


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- networks and names -------------------------------------------------------


def test_default_network_is_added_when_used() -> None:
    plain, _, _ = _norm(
        """
        services:
          a: {image: x}
          b: {image: x, networks: [front]}
          c: {image: x, network_mode: host}
          d: {image: x, networks: {}}
        networks:
          front: {}
        """
    )
    assert plain["services"]["a"]["networks"] == {"default": None}
    assert plain["services"]["b"]["networks"] == {"front": None}
    assert "networks" not in plain["services"]["c"]
    assert plain["services"]["d"]["networks"] == {"default": None}
    assert plain["networks"] == {
        "front": {"name": "demo_front"},
        "default": {"name": "demo_default"},
    }
    assert plain["name"] == "demo"


def test_default_network_not_added_when_unused() -> None:
    plain, _, _ = _norm("services:\n  a: {image: x, network_mode: none}\n")
    assert "networks" not in plain


def test_declared_default_network_keeps_its_settings() -> None:
    plain, _, _ = _norm(
        """
        services:
          a: {image: x}
        networks:
          default: {driver: overlay}
        """
    )
    assert plain["networks"]["default"] == {"driver": "overlay", "name": "demo_default"}


@pytest.mark.parametrize("section", ["networks", "volumes", "configs", "secrets"])
def test_resource_names(section: str) -> None:
    extra = {"configs": " file: ./c", "secrets": " file: ./s"}.get(section, "")
    plain, _, _ = _norm(
        f"""
        {section}:
          plain:{" {}" if not extra else ""}
          {extra and "  " + extra.strip()}
          named: {{name: custom}}
          ext: {{external: true}}
          ext_named: {{external: true, name: real}}
        """.replace("\n          \n", "\n")
    )
    entries = plain[section]
    assert entries["plain"]["name"] == "demo_plain"
    assert entries["named"]["name"] == "custom"
    assert entries["ext"]["name"] == "ext"
    assert entries["ext_named"]["name"] == "real"


def test_null_resource_gets_a_name() -> None:
    plain, _, _ = _norm("services: {}\nvolumes:\n  data:\n")
    assert plain["volumes"] == {"data": {"name": "demo_data"}}


# --- services -----------------------------------------------------------------


def test_build_defaults_and_paths() -> None:
    plain, _, _ = _norm(
        """
        services:
          a: {build: ./app}
          b:
            build:
              context: https://github.com/x/y.git
              dockerfile_inline: FROM scratch
          c:
            build:
              additional_contexts:
                base: ../base
                img: docker-image://alpine
                svc: service:a
              args: [SET=1, FROM_ENV, UNSET]
          d: {build: {}}
        """,
        environ={"FROM_ENV": "yes"},
    )
    services = plain["services"]
    assert services["a"]["build"] == {"context": "/proj/app", "dockerfile": "Dockerfile"}
    assert services["b"]["build"] == {
        "context": "https://github.com/x/y.git",
        "dockerfile_inline": "FROM scratch",
    }
    assert services["c"]["build"]["context"] == "/proj"
    assert services["c"]["build"]["additional_contexts"] == {
        "base": "/base",
        "img": "docker-image://alpine",
        "svc": "service:a",
    }
    assert services["c"]["build"]["args"] == {"SET": "1", "FROM_ENV": "yes"}
    assert services["d"]["build"] == {"context": "/proj", "dockerfile": "Dockerfile"}


def test_environment_bare_keys_take_the_environment() -> None:
    plain, _, _ = _norm(
        "services:\n  a:\n    image: x\n    environment: [A=1, B, C]\n",
        environ={"B": "from-env"},
    )
    assert plain["services"]["a"]["environment"] == {"A": "1", "B": "from-env", "C": None}


def test_volume_paths_and_bind_defaults() -> None:
    plain, _, _ = _norm(
        """
        services:
          a:
            image: x
            volumes:
              - ./data:/data
              - ~/cache:/cache:ro
              - /abs:/abs
              - named:/named
              - type: bind
                source: rel
                target: /rel
              - type: bind
                source: other
                target: /other
                bind: {create_host_path: false}
        volumes:
          named: {}
        """,
        environ={"HOME": "/home/me"},
    )
    volumes = plain["services"]["a"]["volumes"]
    assert [v.get("source") for v in volumes] == [
        "/proj/data",
        "/home/me/cache",
        "/abs",
        "named",
        "/proj/rel",
        "/proj/other",
    ]
    assert volumes[0]["bind"] == {"create_host_path": True}
    assert "bind" not in volumes[4]  # long syntax without bind options stays without
    assert volumes[5]["bind"] == {"create_host_path": False}


def test_no_path_resolution_keeps_paths_as_written() -> None:
    plain, _, _ = _norm(
        """
        services:
          a:
            build: ./app
            volumes: [./data:/data]
            extends: {file: base.yaml, service: b}
            develop:
              watch: [{path: ./src, action: rebuild}]
        """,
        resolve_paths=False,
    )
    service = plain["services"]["a"]
    assert service["build"]["context"] == "./app"
    assert service["volumes"][0]["source"] == "./data"
    assert service["extends"]["file"] == "base.yaml"
    assert service["develop"]["watch"][0]["path"] == "./src"


def test_extends_and_watch_paths_are_resolved() -> None:
    plain, _, _ = _norm(
        """
        services:
          a:
            image: x
            extends: {file: ../base.yaml, service: b}
            develop:
              watch: [{path: ./src, action: sync, target: /app}]
        """
    )
    service = plain["services"]["a"]
    assert service["extends"]["file"] == "/base.yaml"
    assert service["develop"]["watch"][0]["path"] == "/proj/src"


def test_secret_and_config_targets() -> None:
    plain, _, _ = _norm(
        """
        services:
          a:
            image: x
            secrets: [token, {source: key, target: /etc/key}]
            configs: [conf, {source: other, target: /etc/o}]
        """
    )
    service = plain["services"]["a"]
    assert service["secrets"] == [
        {"source": "token", "target": "/run/secrets/token"},
        {"source": "key", "target": "/etc/key"},
    ]
    assert service["configs"] == [
        {"source": "conf", "target": "/conf"},
        {"source": "other", "target": "/etc/o"},
    ]


def test_implicit_depends_on() -> None:
    plain, _, _ = _norm(
        """
        services:
          a:
            image: x
            depends_on:
              db: {condition: service_healthy}
            links: [db, "cache:c"]
            network_mode: service:vpn
            volumes_from: [store, "store2:ro", "container:foreign"]
          b:
            image: x
            ipc: service:a
            pid: host
        """
    )
    started = {"condition": "service_started", "required": True}
    assert plain["services"]["a"]["depends_on"] == {
        "db": {"condition": "service_healthy", "required": True},
        "cache": {**started, "restart": True},
        "vpn": {**started, "restart": True},
        "store": {**started, "restart": False},
        "store2": {**started, "restart": False},
    }
    assert plain["services"]["b"]["depends_on"] == {"a": {**started, "restart": True}}


def test_pull_policy_and_replicas() -> None:
    plain, _, _ = _norm(
        """
        services:
          a: {image: x, pull_policy: if_not_present, scale: 3, deploy: {}}
          b: {image: x, pull_policy: always, scale: 2}
          c: {image: x, scale: 2, deploy: {replicas: 2}}
        """
    )
    services = plain["services"]
    assert services["a"]["pull_policy"] == "missing"
    assert services["a"]["deploy"] == {"replicas": 3}
    assert services["b"]["pull_policy"] == "always"
    assert "deploy" not in services["b"]
    assert services["c"]["deploy"] == {"replicas": 2}


def test_input_tree_is_not_modified() -> None:
    tree = _tree("services:\n  a: {image: x}\n")
    normalize(tree, project_name="demo", project_dir=Path("/p"), environ={})
    assert to_plain(tree) == {"services": {"a": {"image": "x"}}}


def test_without_copy_the_tree_is_normalised_in_place() -> None:
    text = "services:\n  a:\n    image: x\n    volumes: [./d:/d]\n  b: {image: y, links: [a]}\n"
    copied, _ = normalize(_tree(text), project_name="demo", project_dir=Path("/p"), environ={})
    tree = _tree(text)
    out, _ = normalize(tree, project_name="demo", project_dir=Path("/p"), environ={}, copy=False)
    assert out is tree
    assert to_plain(out) == to_plain(copied)
    assert out["services"]["a"]["volumes"].loc_of(0) == copied["services"]["a"]["volumes"].loc_of(0)


def test_positions_survive() -> None:
    _, out, _ = _norm("services:\n  a:\n    image: x\n    volumes: [./d:/d]\n")
    assert out["services"]["a"]["volumes"].loc_of(0).line == 4
    assert out["services"].key_locs["a"].line == 2


# --- files: env_file, label_file, configs, secrets ------------------------------


def test_env_files_merge_in_order_and_explicit_wins() -> None:
    plain, _, digests = _norm(
        """
        services:
          a:
            image: x
            env_file: [a.env, b.env, {path: gone.env, required: false}]
            environment:
              A: explicit
              UNSET:
        """,
        environ={"HOST_VAR": "host"},
        project_dir=PROJ,
    )
    service = plain["services"]["a"]
    assert service["environment"] == {
        "A": "explicit",
        "SHARED": "b",
        "B": "from_a",
        "REF": "host-explicit",
        "UNSET": None,
    }
    assert service["env_file"][0] == {"path": str(PROJ / "a.env"), "required": True}
    assert digests == {
        str(PROJ / "a.env"): _sha(PROJ / "a.env"),
        str(PROJ / "b.env"): _sha(PROJ / "b.env"),
        str(PROJ / "gone.env"): MISSING,
    }


def test_raw_env_file_is_not_interpolated() -> None:
    plain, _, _ = _norm(
        "services:\n  a:\n    image: x\n    env_file: [{path: raw.env, format: raw}]\n",
        project_dir=PROJ,
    )
    assert plain["services"]["a"]["environment"] == {"RAW": "$NOT_INTERPOLATED"}


def test_missing_required_env_file_is_an_error_with_location() -> None:
    with pytest.raises(ConfigError) as info:
        _norm("services:\n  a:\n    image: x\n    env_file: [nope.env]\n", project_dir=PROJ)
    assert str(PROJ / "nope.env") in info.value.problems[0].message
    assert info.value.path == "services.a.env_file[0]"
    assert info.value.location is not None and info.value.location.line == 4


def test_label_files_are_read_and_explicit_labels_win() -> None:
    plain, _, digests = _norm(
        """
        services:
          a:
            image: x
            label_file: ./labels.txt
            labels: {com.example.tier: front}
        """,
        project_dir=PROJ,
    )
    service = plain["services"]["a"]
    assert service["labels"] == {"com.example.team": "core", "com.example.tier": "front"}
    assert service["label_file"] == [str(PROJ / "labels.txt")]
    assert digests[str(PROJ / "labels.txt")] == _sha(PROJ / "labels.txt")


def test_missing_label_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="label file"):
        _norm("services:\n  a:\n    image: x\n    label_file: [nope]\n", project_dir=PROJ)


def test_config_and_secret_files_are_resolved_and_digested() -> None:
    plain, _, digests = _norm(
        """
        services: {}
        configs:
          conf: {file: ./config.txt}
          inline: {content: hello}
        secrets:
          token: {file: secret.txt}
          later: {file: not-yet.txt}
          ext: {external: true}
        """,
        project_dir=PROJ,
    )
    assert plain["configs"]["conf"]["file"] == str(PROJ / "config.txt")
    assert plain["secrets"]["token"]["file"] == str(PROJ / "secret.txt")
    assert digests == {
        str(PROJ / "config.txt"): _sha(PROJ / "config.txt"),
        str(PROJ / "not-yet.txt"): MISSING,
        str(PROJ / "secret.txt"): _sha(PROJ / "secret.txt"),
    }


def test_bind_volume_device_is_resolved() -> None:
    plain, _, _ = _norm(
        """
        services: {}
        volumes:
          data:
            driver: local
            driver_opts: {type: none, o: bind, device: ./data}
        """
    )
    assert plain["volumes"]["data"]["driver_opts"]["device"] == "/proj/data"
