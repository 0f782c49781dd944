"""How the Docker backend observes a project's images: inspected one by one for
a few references, listed with a filter for many; both give the same records."""

from __future__ import annotations

from typing import Any

from composer.backends.docker import backend as docker_backend_module
from composer.backends.docker.observe import engine_time

from .conftest import TEST_IMAGE


def test_few_and_many_references_are_observed_alike(docker_backend: Any) -> None:
    missing = [f"composer-test-absent-{n}:none" for n in range(6)]
    few = [TEST_IMAGE, missing[0]]
    many = [TEST_IMAGE, *missing]
    assert len(few) <= docker_backend_module._INSPECT_AT_MOST < len(many)
    inspected = docker_backend.observe("ct-images-none", few).images
    listed = docker_backend.observe("ct-images-none", many).images
    assert set(inspected) == set(listed) == {TEST_IMAGE}
    one, other = inspected[TEST_IMAGE], listed[TEST_IMAGE]
    assert (one.ref, one.id) == (other.ref, other.id)
    assert one.created_at is not None and other.created_at is not None
    assert abs(one.created_at - other.created_at) < 1  # the list rounds to seconds
    assert inspected[TEST_IMAGE].id == docker_backend.image_id(TEST_IMAGE)


def test_engine_times_with_nanoseconds_and_zones() -> None:
    assert engine_time("2026-11-28T06:50:00.123456789Z") == 1795848600.123456
    assert engine_time("2026-11-28T07:50:00+01:00") == 1795848600.0
    assert engine_time("") is None
    assert engine_time("yesterday") is None
    assert engine_time(None) is None
