"""The service dependency graph: edges, selection, order and cycles."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import DependencyCycleError, PlanError
from composer.planner.graph import (
    edge,
    select,
    service_graph,
    subgraph,
    topological_order,
)
from composer.schema.model import Project, Service


def project(**services: dict[str, Any]) -> Project:
    return Project(
        name="demo",
        working_dir="/srv/demo",
        services={name: Service.model_validate(body) for name, body in services.items()},
    )


def test_edges_from_every_kind_of_reference() -> None:
    p = project(
        db={},
        cache={},
        vpn={},
        data={},
        web={
            "depends_on": {"db": {"condition": "service_healthy", "restart": True}},
            "links": ["cache:redis"],
            "network_mode": "service:vpn",
            "volumes_from": ["data:ro", "container:other"],
        },
    )
    g = service_graph(p)
    assert sorted(g.predecessors("web")) == ["cache", "data", "db", "vpn"]
    db = edge(g, "db", "web")
    assert (db.condition, db.required, db.restart) == ("service_healthy", True, True)
    assert edge(g, "cache", "web").kinds == {"links"}
    assert edge(g, "vpn", "web").shares_resources
    assert edge(g, "data", "web").shares_resources
    assert not db.shares_resources


def test_implicit_reference_keeps_explicit_condition() -> None:
    p = project(
        db={},
        web={"depends_on": {"db": {"condition": "service_healthy"}}, "links": ["db"]},
    )
    dep = edge(service_graph(p), "db", "web")
    assert dep.condition == "service_healthy"
    assert dep.kinds == {"depends_on", "links"}


@pytest.mark.parametrize(
    ("services", "order"),
    [
        ({"b": {}, "a": {}, "c": {}}, ["a", "b", "c"]),
        ({"a": {"depends_on": {"c": {}}}, "b": {}, "c": {}}, ["b", "c", "a"]),
        (
            {"z": {}, "y": {"depends_on": {"z": {}}}, "x": {"depends_on": {"y": {}}}},
            ["z", "y", "x"],
        ),
    ],
)
def test_topological_order_is_deterministic(
    services: dict[str, dict[str, Any]], order: list[str]
) -> None:
    assert topological_order(service_graph(project(**services))) == order


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ({"a": {"depends_on": {"b": {}}}, "b": {"depends_on": {"a": {}}}}, "a -> b -> a"),
        (
            {
                "c": {"depends_on": {"a": {}}},
                "a": {"depends_on": {"b": {}}},
                "b": {"links": ["c"]},
            },
            "a -> b -> c -> a",
        ),
        ({"a": {"network_mode": "service:a"}}, "a -> a"),
    ],
)
def test_cycles_are_errors(services: dict[str, dict[str, Any]], message: str) -> None:
    with pytest.raises(DependencyCycleError) as info:
        service_graph(project(**services))
    assert message in str(info.value)


def test_selection_with_and_without_dependencies() -> None:
    p = project(
        db={},
        cache={},
        api={"depends_on": {"db": {}}},
        web={"depends_on": {"api": {}}},
        other={},
    )
    g = service_graph(p)
    assert select(g, []) == {"db", "cache", "api", "web", "other"}
    assert select(g, ["web"]) == {"web", "api", "db"}
    assert select(g, ["web"], with_deps=False) == {"web"}
    assert sorted(subgraph(p, ["api"]).nodes) == ["api", "db"]
    with pytest.raises(PlanError, match="no such service: nope"):
        select(g, ["nope"])


def test_references_to_services_outside_the_model_are_ignored() -> None:
    p = project(web={"depends_on": {"gone": {"required": False}}})
    assert list(service_graph(p).edges) == []
