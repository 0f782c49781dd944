"""Profiles: enabled and disabled services, command-line services, references."""

from __future__ import annotations

import pytest

from composer.errors import ConfigError
from composer.schema.profiles import apply_profiles, service_references
from composer.schema.tree import to_plain
from tests.schema.ytree import ytree

BASE = """
services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: alpine
    profiles: [debug, ops]
  seed:
    image: alpine
    profiles: [seed]
"""


@pytest.mark.parametrize(
    ("active", "named", "enabled"),
    [
        ([], [], ["web"]),
        (["debug"], [], ["web", "debug", "tools"]),
        (["ops"], [], ["web", "tools"]),
        (["*"], [], ["web", "debug", "tools", "seed"]),
        (["nope"], [], ["web"]),
        ([], ["seed"], ["web", "seed"]),
        # naming a service activates its profiles, so the profile's other services come too
        ([], ["debug"], ["web", "debug", "tools"]),
        (["seed"], ["web"], ["web", "seed"]),
        ([""], [], ["web"]),
    ],
)
def test_enabled_services(active: list[str], named: list[str], enabled: list[str]) -> None:
    tree, disabled = apply_profiles(ytree(BASE), active, named)
    assert list(tree["services"]) == enabled
    everything = ["web", "debug", "tools", "seed"]
    assert list(disabled) == [s for s in everything if s not in enabled]


def test_positions_and_other_sections_survive() -> None:
    text = BASE + "networks:\n  n: {}\n"
    tree, disabled = apply_profiles(ytree(text), [], [])
    assert to_plain(tree["networks"]) == {"n": {}}
    assert tree["services"].key_locs["web"].line == 3
    assert disabled.key_locs["seed"].line == 11


def test_unknown_service_on_the_command_line() -> None:
    with pytest.raises(ConfigError) as info:
        apply_profiles(ytree(BASE), [], ["debgu"])
    assert info.value.message == "no such service: debgu"
    assert info.value.hint == "did you mean 'debug'?"


REFS = """
services:
  app:
    image: app
    depends_on:
      db: {condition: service_started, required: true}
      cache: {condition: service_started, required: false}
    links: ["logger:log"]
    volumes_from: [store, "container:other"]
    network_mode: "service:vpn"
  db: {image: pg, profiles: [db]}
  cache: {image: redis, profiles: [cache]}
  logger: {image: log, profiles: [log]}
  store: {image: s, profiles: [store]}
  vpn: {image: v, profiles: [vpn]}
"""


def test_references_to_disabled_services_are_errors_in_file_order() -> None:
    with pytest.raises(ConfigError) as info:
        apply_profiles(ytree(REFS), [], [])
    rendered = [p.render() for p in info.value.problems]
    assert [r.split(": ")[1] for r in rendered] == [
        "services.app.depends_on.db",
        "services.app.links[0]",
        "services.app.volumes_from[0]",
        "services.app.network_mode",
    ]
    assert rendered[0].startswith("compose.yaml:6:11: ")
    assert "'app' refers to service 'db', which is disabled by its profiles (db)" in rendered[0]
    assert info.value.problems[0].hint is not None
    assert "--profile db" in info.value.problems[0].hint


def test_references_are_fine_once_the_profiles_are_active() -> None:
    tree, disabled = apply_profiles(ytree(REFS), ["db", "log", "store", "vpn"], [])
    assert list(disabled) == ["cache"]  # required: false may stay disabled
    assert "app" in tree["services"]


def test_extends_of_a_disabled_base_is_allowed() -> None:
    text = """
    services:
      base: {image: x, profiles: [never]}
      web:
        image: x
        extends: {service: base}
    """
    tree, disabled = apply_profiles(ytree(text), [], [])
    assert list(tree["services"]) == ["web"] and list(disabled) == ["base"]


def test_disabled_to_disabled_references_are_not_checked() -> None:
    text = """
    services:
      a: {image: x, profiles: [p], depends_on: {b: {condition: service_started}}}
      b: {image: x, profiles: [q]}
    """
    tree, disabled = apply_profiles(ytree(text), [], [])
    assert list(disabled) == ["a", "b"] and list(tree["services"]) == []


def test_service_references_lists_every_kind() -> None:
    service = ytree(REFS)["services"]["app"]
    assert list(service_references(service)) == [
        ("db", ("depends_on", "db"), True),
        ("cache", ("depends_on", "cache"), False),
        ("logger", ("links", 0), True),
        ("store", ("volumes_from", 0), True),
        ("vpn", ("network_mode",), True),
    ]
