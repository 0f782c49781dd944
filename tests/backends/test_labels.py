"""Names and labels exactly as Docker Compose writes them."""

from __future__ import annotations

import pytest

from composer.backends import labels as L


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: L.container_name("shop", "web", 1), "shop-web-1"),
        (lambda: L.container_name("shop", "db_main", 12), "shop-db_main-12"),
        (lambda: L.oneoff_name("shop", "web", "0123456789abcdef"), "shop-web-run-0123456789ab"),
        (lambda: L.network_name("shop", "default"), "shop_default"),
        (lambda: L.network_name("shop", "back", "custom-net"), "custom-net"),
        (lambda: L.volume_name("shop", "data"), "shop_data"),
        (lambda: L.volume_name("shop", "data", "pgdata"), "pgdata"),
        (lambda: L.scoped_name("shop", "token", None), "shop_token"),
        (lambda: L.default_image_name("shop", "web"), "shop-web"),
    ],
)
def test_names(call: object, expected: str) -> None:
    assert callable(call)
    assert call() == expected


def test_invalid_names_are_rejected() -> None:
    with pytest.raises(ValueError):
        L.container_name("shop", "web", 0)
    with pytest.raises(ValueError):
        L.oneoff_name("shop", "web", "abc")


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ((), ""),
        ((L.Dependency("db"),), "db:service_started:false"),
        (
            (
                L.Dependency("redis", "service_healthy", True),
                L.Dependency("db", "service_completed_successfully", False),
            ),
            "db:service_completed_successfully:false,redis:service_healthy:true",
        ),
    ],
)
def test_depends_on_label_format(deps: tuple[L.Dependency, ...], expected: str) -> None:
    assert L.format_depends_on(deps) == expected
    assert L.parse_depends_on(expected) == tuple(sorted(deps, key=lambda d: d.service))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("db", (L.Dependency("db", "service_started", True),)),
        ("db:service_healthy", (L.Dependency("db", "service_healthy", True),)),
        ("db:service_healthy:false,", (L.Dependency("db", "service_healthy", False),)),
    ],
)
def test_depends_on_label_old_forms(value: str, expected: tuple[L.Dependency, ...]) -> None:
    assert L.parse_depends_on(value) == expected


def test_container_labels_service_container() -> None:
    labels = L.container_labels(
        project="shop",
        service="web",
        number=2,
        config_hash="abc",
        image_id="sha256:1234",
        working_dir="/srv/shop",
        config_files=["/srv/shop/compose.yaml", "/srv/shop/compose.override.yaml"],
        environment_files=["/srv/shop/.env"],
        depends_on=[L.Dependency("db", "service_healthy", True)],
        replace="shop-web-2",
        version="9.9.9",
    )
    assert labels == {
        "com.docker.compose.config-hash": "abc",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.depends_on": "db:service_healthy:true",
        "com.docker.compose.image": "sha256:1234",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project": "shop",
        "com.docker.compose.project.config_files": (
            "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml"
        ),
        "com.docker.compose.project.environment_file": "/srv/shop/.env",
        "com.docker.compose.project.working_dir": "/srv/shop",
        "com.docker.compose.replace": "shop-web-2",
        "com.docker.compose.service": "web",
        "com.docker.compose.version": "9.9.9",
    }
    assert list(labels) == sorted(labels)


def test_container_labels_oneoff_has_no_number_and_no_env_label_when_unused() -> None:
    labels = L.container_labels(
        project="shop",
        service="web",
        number=None,
        config_hash="h",
        image_id="sha256:1",
        working_dir="/srv/shop",
        oneoff=True,
        slug="0123456789abcdef",
    )
    assert labels[L.LABEL_ONEOFF] == "True"
    assert labels[L.LABEL_SLUG] == "0123456789abcdef"
    assert L.LABEL_CONTAINER_NUMBER not in labels
    assert L.LABEL_ENVIRONMENT_FILE not in labels
    assert L.LABEL_REPLACE not in labels
    assert labels[L.LABEL_DEPENDS_ON] == ""
    assert labels[L.LABEL_VERSION] == L.VERSION
    assert L.parse_oneoff(labels) is True
    assert L.parse_container_number(labels) is None


def test_network_and_volume_labels() -> None:
    assert L.network_labels("shop", "back", "h1", version="1") == {
        "com.docker.compose.config-hash": "h1",
        "com.docker.compose.network": "back",
        "com.docker.compose.project": "shop",
        "com.docker.compose.version": "1",
    }
    assert L.volume_labels("shop", "data", version="1") == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.version": "1",
        "com.docker.compose.volume": "data",
    }


def test_merge_labels_compose_wins_and_user_labels_filter() -> None:
    merged = L.merge_labels({"app": "x", L.LABEL_PROJECT: "evil"}, {L.LABEL_PROJECT: "shop"})
    assert merged == {"app": "x", L.LABEL_PROJECT: "shop"}
    assert L.user_labels(merged) == {"app": "x"}


@pytest.mark.parametrize(
    ("labels", "number", "oneoff"),
    [
        ({}, None, False),
        ({L.LABEL_CONTAINER_NUMBER: "3", L.LABEL_ONEOFF: "False"}, 3, False),
        ({L.LABEL_CONTAINER_NUMBER: "x"}, None, False),
        ({L.LABEL_ONEOFF: "true"}, None, True),
    ],
)
def test_reading_labels_back(labels: dict[str, str], number: int | None, oneoff: bool) -> None:
    assert L.parse_container_number(labels) == number
    assert L.parse_oneoff(labels) is oneoff
