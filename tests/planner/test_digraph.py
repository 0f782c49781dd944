"""The planner's small DiGraph against networkx, which it replaces on the planning path."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.planner.digraph import (
    DiGraph,
    ancestors,
    descendants,
    find_cycle,
    lexicographic_order,
)

NAMES = [f"s{i}" for i in range(8)]
EDGES = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=20)


def both(edges: list[tuple[str, str]]) -> tuple[DiGraph, nx.DiGraph]:
    mine, theirs = DiGraph(), nx.DiGraph()
    mine.add_nodes_from(NAMES)
    theirs.add_nodes_from(NAMES)
    for u, v in edges:
        if u != v:
            mine.add_edge(u, v, dep=(u, v))
            theirs.add_edge(u, v)
    return mine, theirs


@settings(max_examples=200, deadline=None)
@given(EDGES)
def test_same_answers_as_networkx(edges: list[tuple[str, str]]) -> None:
    mine, theirs = both(edges)
    assert sorted(mine.edges) == sorted(theirs.edges)
    for n in NAMES:
        assert ancestors(mine, n) == nx.ancestors(theirs, n)
        assert descendants(mine, n) == nx.descendants(theirs, n)
        assert sorted(mine.predecessors(n)) == sorted(theirs.predecessors(n))
    acyclic = nx.is_directed_acyclic_graph(theirs)
    cycle = find_cycle(mine)
    assert (cycle is None) == acyclic
    if cycle is not None:  # consecutive nodes are edges, and it closes
        ring = [*cycle, cycle[0]]
        assert all(mine.has_edge(a, b) for a, b in itertools.pairwise(ring))
        assert len(set(cycle)) == len(cycle)
    order = lexicographic_order(mine)
    if acyclic:
        assert order == list(nx.lexicographical_topological_sort(theirs))
    else:
        assert order is None


def test_edge_data_subgraph_and_copy() -> None:
    g = DiGraph()
    g.add_edge("db", "web", dep="d1")
    g.add_edge("cache", "web", dep="d2")
    g.add_node("other")
    assert g.pred["web"]["db"] == {"dep": "d1"}
    assert g.succ["db"]["web"] is g.pred["web"]["db"]
    sub = g.subgraph(["db", "web", "other"])
    assert sub.nodes == ["db", "web", "other"]
    assert sub.edges == [("db", "web")]
    sub.add_edge("other", "db")
    assert not g.has_edge("other", "db")
    assert "web" in g and "nope" not in g and len(g.copy()) == 4
