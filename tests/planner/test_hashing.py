"""Config hashes: which model changes cause a recreate and which do not."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import PlanError
from composer.planner.hashing import (
    MISSING,
    canonical_json,
    content_digests,
    network_hash,
    service_hash,
    volume_hash,
)
from composer.schema.model import Network, Project, Volume

BASE_WEB: dict[str, Any] = {
    "image": "nginx:1.27",
    "configs": [{"source": "site", "target": "/etc/nginx/conf.d/site.conf"}],
    "secrets": [{"source": "token"}],
    "env_file": [{"path": "/p/web.env"}],
    "environment": {"A": "1"},
}
BASE_DB: dict[str, Any] = {"image": "postgres:16", "env_file": [{"path": "/p/db.env"}]}
DIGESTS = {
    "/p/site.conf": "d-site-1",
    "/p/token.txt": "d-token-1",
    "/p/web.env": "d-webenv-1",
    "/p/db.env": "d-dbenv-1",
}


def make_project(
    web: dict[str, Any] | None = None,
    db: dict[str, Any] | None = None,
    digests: dict[str, str] | None = None,
    **top: Any,
) -> Project:
    fields: dict[str, Any] = {
        "name": "p",
        "working_dir": "/p",
        "services": {"web": web or BASE_WEB, "db": db or BASE_DB},
        "configs": {"site": {"file": "/p/site.conf"}, "inline": {"content": "hello"}},
        "secrets": {"token": {"file": "/p/token.txt"}, "envtok": {"environment": "TOKEN"}},
        "environment": {"TOKEN": "s3cret"},
        "content_digests": digests or DIGESTS,
    }
    fields.update(top)
    return Project.model_validate(fields)


BASE = make_project()


def test_deploy_replicas_does_not_recreate() -> None:
    two = make_project(web={**BASE_WEB, "deploy": {"replicas": 2}})
    four = make_project(web={**BASE_WEB, "deploy": {"replicas": 4}})
    assert service_hash(two, "web") == service_hash(four, "web")
    assert service_hash(two, "web") == service_hash(BASE, "web")


@pytest.mark.parametrize(
    ("label", "web"),
    [
        ("scale", {**BASE_WEB, "scale": 3}),
        ("depends_on", {**BASE_WEB, "depends_on": {"db": {"condition": "service_healthy"}}}),
        ("profiles", {**BASE_WEB, "profiles": ["debug"]}),
        ("build", {**BASE_WEB, "build": {"context": "/p/web"}}),
        ("pull_policy", {**BASE_WEB, "pull_policy": "always"}),
        ("own labels", {**BASE_WEB, "labels": {"com.docker.compose.project": "x"}}),
    ],
)
def test_changes_that_do_not_recreate(label: str, web: dict[str, Any]) -> None:
    assert service_hash(make_project(web=web), "web") == service_hash(BASE, "web"), label


@pytest.mark.parametrize(
    ("label", "web"),
    [
        ("image", {**BASE_WEB, "image": "nginx:1.28"}),
        ("environment", {**BASE_WEB, "environment": {"A": "2"}}),
        ("command", {**BASE_WEB, "command": ["nginx", "-g", "daemon off;"]}),
        ("user label", {**BASE_WEB, "labels": {"tier": "front"}}),
        ("healthcheck", {**BASE_WEB, "healthcheck": {"test": ["CMD", "true"]}}),
        ("config target", {**BASE_WEB, "configs": [{"source": "site", "target": "/x"}]}),
        ("deploy resources", {**BASE_WEB, "deploy": {"resources": {"limits": {"cpus": 0.5}}}}),
    ],
)
def test_changes_that_recreate(label: str, web: dict[str, Any]) -> None:
    assert service_hash(make_project(web=web), "web") != service_hash(BASE, "web"), label


@pytest.mark.parametrize(
    ("path", "web_changes", "db_changes"),
    [
        ("/p/site.conf", True, False),
        ("/p/token.txt", True, False),
        ("/p/web.env", True, False),
        ("/p/db.env", False, True),
        ("/p/unrelated.txt", False, False),
    ],
)
def test_file_content_changes_only_affect_users(
    path: str, web_changes: bool, db_changes: bool
) -> None:
    edited = make_project(digests={**DIGESTS, path: "edited"})
    assert (service_hash(edited, "web") != service_hash(BASE, "web")) is web_changes
    assert (service_hash(edited, "db") != service_hash(BASE, "db")) is db_changes


def test_inline_content_and_environment_sources_are_hashed() -> None:
    web = {**BASE_WEB, "configs": [{"source": "inline"}], "secrets": [{"source": "envtok"}]}
    before = make_project(web=web)
    other_env = make_project(web=web, environment={"TOKEN": "rotated"})
    other_content = make_project(
        web=web,
        configs={"site": {"file": "/p/site.conf"}, "inline": {"content": "bye"}},
    )
    assert service_hash(other_env, "web") != service_hash(before, "web")
    assert service_hash(other_content, "web") != service_hash(before, "web")
    assert service_hash(other_env, "db") == service_hash(before, "db")


def test_missing_optional_file_is_recorded_as_missing() -> None:
    project = make_project(digests={**DIGESTS, "/p/web.env": MISSING})
    assert content_digests(project, "web")["env_files"] == {"/p/web.env": MISSING}
    assert service_hash(project, "web") != service_hash(BASE, "web")


def test_content_digests_shape() -> None:
    assert content_digests(BASE, "web") == {
        "configs": {"site": {"file": "/p/site.conf", "digest": "d-site-1"}},
        "secrets": {"token": {"file": "/p/token.txt", "digest": "d-token-1"}},
        "env_files": {"/p/web.env": "d-webenv-1"},
    }
    assert content_digests(make_project(db={"image": "x"}), "db") == {}


def test_hash_is_stable_and_hex() -> None:
    first = service_hash(BASE, "web")
    assert first == service_hash(make_project(), "web")
    assert len(first) == 64
    int(first, 16)
    # key order of the input does not matter
    reordered = dict(reversed(list(BASE_WEB.items())))
    assert service_hash(make_project(web=reordered), "web") == first


def test_service_refs_resolve_to_containers() -> None:
    web = {**BASE_WEB, "network_mode": "service:db", "volumes_from": ["db:ro"]}
    project = make_project(web=web)
    plain = service_hash(project, "web")
    first = service_hash(project, "web", containers={"db": "c1"})
    second = service_hash(project, "web", containers={"db": "c2"})
    assert len({plain, first, second}) == 3
    assert service_hash(project, "web", containers={"db": "c1"}) == first


def test_unknown_service_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="no such service: nope"):
        service_hash(BASE, "nope")


def test_network_and_volume_hashes() -> None:
    assert network_hash(Network(driver="bridge")) == network_hash(Network(driver="bridge"))
    assert network_hash(Network(driver="bridge")) != network_hash(
        Network(driver="bridge", internal=True)
    )
    assert network_hash(Network(labels={"com.docker.compose.network": "x"})) == network_hash(
        Network()
    )
    assert volume_hash(Volume(driver_opts={"type": "tmpfs"})) != volume_hash(Volume())
    assert volume_hash(Volume(labels={"a": "b"})) != volume_hash(Volume())


def test_canonical_json_is_compact_and_sorted() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
