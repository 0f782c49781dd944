"""From the loaded model to backend specs: every attribute lands where backends look."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from composer.backends import labels as L
from composer.backends.base import (
    DeviceRequestSpec,
    DeviceSpec,
    HealthcheckSpec,
    HookSpec,
    LoggingSpec,
    MountSpec,
    NetworkAttachment,
    PortSpec,
    UlimitSpec,
)
from composer.errors import PlanError
from composer.planner.hashing import network_hash, service_hash, volume_hash
from composer.planner.specs import (
    build_spec,
    container_name,
    container_spec,
    image_ref,
    network_spec,
    volume_spec,
)
from composer.schema.loader import LoadOptions, load_project
from composer.schema.model import Project


def load(tmp_path: Path, yaml: str, files: dict[str, str] | None = None, **env: str) -> Project:
    root = tmp_path / "shop"
    root.mkdir(exist_ok=True)
    (root / "compose.yaml").write_text(dedent(yaml))
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    warnings: list[str] = []
    return load_project(LoadOptions(working_dir=root, environ=env), warnings.append)


FULL = """\
services:
  web:
    image: nginx:1.27
    command: nginx -g "daemon off;"
    entrypoint: ["/docker-entrypoint.sh"]
    environment:
      B: "2"
      UNSET:
    env_file: web.env
    user: "101:101"
    working_dir: /app
    hostname: web
    domainname: example.org
    ports: ["127.0.0.1:8080:80/tcp", "443"]
    expose: ["9000"]
    volumes:
      - data:/data
      - ./src:/src:ro
      - /cache
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 1m}
    configs:
      - source: site
        target: /etc/nginx/conf.d/site.conf
        mode: 0440
        uid: "101"
        gid: "102"
      - inline
    secrets:
      - token
      - source: envtok
        target: api_key
    networks:
      front: {aliases: [www], priority: 10, ipv4_address: 10.5.0.9}
      back: {}
    depends_on:
      db: {condition: service_healthy, restart: true}
    healthcheck:
      test: curl -f http://localhost
      interval: 5s
      timeout: 2s
      retries: 4
      start_period: 1m
    stop_grace_period: 1m30s
    stop_signal: SIGQUIT
    restart: unless-stopped
    init: true
    mem_limit: 512m
    deploy:
      resources:
        limits: {cpus: "0.5", pids: 100}
        reservations:
          memory: 64m
          devices: [{capabilities: [gpu], count: 1}]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 65535
    extra_hosts: ["host.docker.internal:host-gateway"]
    tmpfs: ["/run:size=64k"]
    labels: {tier: front}
    dns: [1.1.1.1]
    dns_search: [example.org]
    dns_opt: [use-vc]
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    privileged: true
    security_opt: [no-new-privileges:true]
    read_only: true
    shm_size: 64m
    sysctls: {net.core.somaxconn: "1024"}
    devices: ["/dev/fuse"]
    group_add: [audio]
    tty: true
    stdin_open: true
    platform: linux/amd64
    logging: {driver: json-file, options: {max-size: 10m}}
    post_start: [{command: ["touch", "/ready"], user: root}]
    links: ["db:database"]
  db:
    image: postgres:16
    volumes_from: ["cache:ro"]
    ipc: service:cache
  cache:
    build:
      context: ./cache
      args: {V: "1"}
      target: prod
      tags: ["registry/cache:1"]
      no_cache: true
    network_mode: service:db2
    container_name: the-cache
  db2:
    image: redis
    healthcheck: {disable: true}
networks:
  front: {}
  back: {name: backnet, driver: bridge, internal: true, labels: {team: core}}
  ext: {external: true, name: shared}
volumes:
  data: {driver_opts: {type: tmpfs}}
  legacy: {external: true}
configs:
  site: {file: ./site.conf}
  inline: {content: "hello"}
secrets:
  token: {file: ./token.txt}
  envtok: {environment: API_KEY}
"""
FILES = {"site.conf": "site\n", "token.txt": "tok\n", "web.env": "A=1\n"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load(tmp_path, FULL, FILES, API_KEY="k3y")


def test_identity_image_and_labels(project: Project) -> None:
    spec = container_spec(project, "web", 2, image_id="sha256:abc", replace="shop-web-2")
    root = project.working_dir
    assert (spec.name, spec.service, spec.number, spec.oneoff) == ("shop-web-2", "web", 2, False)
    assert spec.image == "nginx:1.27"
    assert spec.labels == {
        "com.docker.compose.config-hash": service_hash(project, "web"),
        "com.docker.compose.container-number": "2",
        "com.docker.compose.depends_on": "db:service_healthy:true",
        "com.docker.compose.image": "sha256:abc",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project": "shop",
        "com.docker.compose.project.config_files": f"{root}/compose.yaml",
        "com.docker.compose.project.working_dir": root,
        "com.docker.compose.replace": "shop-web-2",
        "com.docker.compose.service": "web",
        "com.docker.compose.version": L.VERSION,
        "tier": "front",
    }


def test_process_and_environment(project: Project) -> None:
    spec = container_spec(project, "web", 1, image_id="i")
    assert spec.command == ("nginx", "-g", "daemon off;")
    assert spec.entrypoint == ("/docker-entrypoint.sh",)
    assert spec.environment == {"A": "1", "B": "2"}
    assert (spec.user, spec.working_dir, spec.hostname, spec.domainname) == (
        "101:101",
        "/app",
        "web",
        "example.org",
    )
    assert (spec.restart, spec.init, spec.stop_signal, spec.stop_timeout) == (
        "unless-stopped",
        True,
        "SIGQUIT",
        90.0,
    )
    assert (spec.tty, spec.stdin_open, spec.platform) == (True, True, "linux/amd64")
    assert spec.post_start == (HookSpec(("touch", "/ready"), user="root"),)


def test_ports_and_networks(project: Project) -> None:
    spec = container_spec(project, "web", 1, image_id="i")
    assert spec.ports == (
        PortSpec(target=80, published="8080", host_ip="127.0.0.1"),
        PortSpec(target=443),
    )
    assert spec.expose == ("9000",)
    assert spec.network_mode is None
    assert spec.networks == (
        NetworkAttachment(
            "shop_front", "front", ("web", "www"), ipv4_address="10.5.0.9", priority=10
        ),
        NetworkAttachment("backnet", "back", ("web",)),
    )
    assert spec.links == ("shop-db-1:database",)
    assert spec.dns == ("1.1.1.1",)
    assert spec.dns_search == ("example.org",)
    assert spec.dns_opt == ("use-vc",)
    assert spec.extra_hosts == (("host.docker.internal", "host-gateway"),)


def test_mounts_configs_and_secrets(project: Project) -> None:
    spec = container_spec(project, "web", 1, image_id="i")
    root = project.working_dir
    assert spec.mounts == (
        MountSpec("volume", "/data", "shop_data", volume_labels={}),
        MountSpec("bind", "/src", f"{root}/src", read_only=True),
        MountSpec("volume", "/cache"),
        MountSpec("tmpfs", "/tmp", tmpfs_size=1 << 20),
        MountSpec(
            "config",
            "/etc/nginx/conf.d/site.conf",
            f"{root}/site.conf",
            read_only=True,
            uid="101",
            gid="102",
            mode=0o440,
        ),
        MountSpec("config", "/inline", read_only=True, content="hello", mode=0o444),
        MountSpec("secret", "/run/secrets/token", f"{root}/token.txt", read_only=True, mode=0o444),
        MountSpec("secret", "/run/secrets/api_key", read_only=True, content="k3y", mode=0o444),
    )
    assert spec.tmpfs == {"/run": "size=64k"}


def test_limits_security_and_health(project: Project) -> None:
    spec = container_spec(project, "web", 1, image_id="i")
    r = spec.resources
    assert (r.mem_limit, r.mem_reservation, r.cpus, r.pids_limit) == (512 << 20, 64 << 20, 0.5, 100)
    assert r.device_requests == (DeviceRequestSpec(count=1, capabilities=("gpu",)),)
    assert spec.ulimits == {"nofile": UlimitSpec(1024, 2048), "nproc": UlimitSpec(65535, 65535)}
    assert spec.healthcheck == HealthcheckSpec(
        ("CMD-SHELL", "curl -f http://localhost"), 5.0, 2.0, 4, 60.0, None
    )
    assert spec.logging == LoggingSpec("json-file", {"max-size": "10m"})
    assert (spec.cap_add, spec.cap_drop, spec.privileged) == (("NET_ADMIN",), ("ALL",), True)
    assert spec.security_opt == ("no-new-privileges:true",)
    assert (spec.read_only, spec.shm_size) == (True, 64 << 20)
    assert spec.sysctls == {"net.core.somaxconn": "1024"}
    assert spec.devices == (DeviceSpec("/dev/fuse", "/dev/fuse", "rwm"),)
    assert spec.group_add == ("audio",)


def test_service_references_resolve_to_container_names(project: Project) -> None:
    db = container_spec(project, "db", 1, image_id="i")
    assert db.volumes_from == ("the-cache:ro",)
    assert db.ipc == "container:the-cache"
    cache = container_spec(project, "cache", 1, image_id="i")
    assert cache.name == "the-cache"
    assert cache.network_mode == "container:shop-db2-1"
    assert cache.networks == ()
    pinned = container_spec(project, "db", 1, image_id="i", containers={"cache": "abc123"})
    assert pinned.ipc == "container:abc123" and pinned.volumes_from == ("abc123:ro",)
    assert container_spec(project, "db2", 1, image_id="i").healthcheck == HealthcheckSpec(("NONE",))


def test_oneoff_containers(project: Project) -> None:
    spec = container_spec(project, "web", None, image_id="i", oneoff=True, slug="f" * 64)
    assert spec.name == "shop-web-run-ffffffffffff"
    assert spec.oneoff and spec.number is None
    assert spec.labels[L.LABEL_ONEOFF] == "True"
    assert spec.labels[L.LABEL_SLUG] == "f" * 64
    assert L.LABEL_CONTAINER_NUMBER not in spec.labels
    assert all(a.aliases == () for a in spec.networks)
    with pytest.raises(PlanError, match="slug"):
        container_spec(project, "web", None, image_id="i", oneoff=True)


def test_specs_are_deterministic(tmp_path: Path) -> None:
    first = load(tmp_path, FULL, FILES, API_KEY="k3y")
    second = load(tmp_path, FULL, FILES, API_KEY="k3y")
    assert container_spec(first, "web", 1, image_id="i") == container_spec(
        second, "web", 1, image_id="i"
    )
    changed = load(tmp_path, FULL.replace('B: "2"', 'B: "3"'), FILES, API_KEY="k3y")
    spec = container_spec(changed, "web", 1, image_id="i")
    assert spec.environment["B"] == "3"
    assert spec.labels[L.LABEL_CONFIG_HASH] != service_hash(first, "web")


def test_network_and_volume_specs(project: Project) -> None:
    back = network_spec(project, "back")
    assert (back.name, back.key, back.driver, back.internal, back.external) == (
        "backnet",
        "back",
        "bridge",
        True,
        False,
    )
    assert back.labels == {
        "com.docker.compose.config-hash": network_hash(project.networks["back"]),
        "com.docker.compose.network": "back",
        "com.docker.compose.project": "shop",
        "com.docker.compose.version": L.VERSION,
        "team": "core",
    }
    assert network_spec(project, "default").name == "shop_default"
    ext = network_spec(project, "ext")
    assert (ext.name, ext.external) == ("shared", True)
    data = volume_spec(project, "data")
    assert (data.name, data.driver_opts) == ("shop_data", {"type": "tmpfs"})
    assert data.labels[L.LABEL_VOLUME] == "data"
    assert data.labels[L.LABEL_CONFIG_HASH] == volume_hash(project.volumes["data"])
    legacy = volume_spec(project, "legacy")
    assert (legacy.name, legacy.external) == ("legacy", True)
    with pytest.raises(PlanError, match="undefined network nope"):
        network_spec(project, "nope")


def test_images_and_builds(project: Project) -> None:
    assert image_ref(project, "web") == "nginx:1.27"
    assert image_ref(project, "cache") == "shop-cache"
    build = build_spec(project, "cache")
    assert build.tag == "shop-cache"
    assert build.context == f"{project.working_dir}/cache"
    assert (build.args, build.target, build.tags, build.no_cache) == (
        {"V": "1"},
        "prod",
        ("registry/cache:1",),
        True,
    )
    with pytest.raises(PlanError, match="no build section"):
        build_spec(project, "web")
    assert container_name(project, "cache") == "the-cache"
    assert container_name(project, "web", 3) == "shop-web-3"


def test_unknown_service(project: Project) -> None:
    with pytest.raises(PlanError, match="no such service: nope"):
        container_spec(project, "nope", 1, image_id="i")
