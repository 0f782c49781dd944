# ruff: noqa: F811  (the registry fixtures are imported from registry_server)
"""``build.pull: true`` on the native backend: the base image is pulled again though present."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from composer.backends.native.backend import NativeBackend
from composer.backends.specs import BuildSpec
from tests.backends.native.images.registry_content import craft_image
from tests.backends.native.images.registry_server import (  # noqa: F401  (fixtures)
    Registry,
    plain_registry,
    registry_workdir,
    upload,
)


def test_build_pull_fetches_a_newer_base_that_a_plain_build_does_not(
    plain_registry: Registry, upload: httpx.Client, tmp_path: Path
) -> None:
    repo = f"buildpull/{uuid.uuid4().hex[:8]}"
    base = f"{plain_registry.host}/{repo}:1"
    first = craft_image(upload, plain_registry.url, repo, "1", [({"v": b"one\n"}, "gzip")])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY app.txt /app.txt\n")
    (ctx / "app.txt").write_text("app\n")
    backend = NativeBackend({"COMPOSER_ROOT": str(tmp_path / "state")})

    def base_diff_id(**spec: bool) -> str:
        image_id = backend.build_image(BuildSpec(tag="pulled:test", context=str(ctx), **spec))
        return backend.images.image(image_id).diff_ids[0]

    assert base_diff_id() == first.diff_ids[0]  # missing: pulled
    second = craft_image(upload, plain_registry.url, repo, "1", [({"v": b"two\n"}, "gzip")])
    assert second.diff_ids != first.diff_ids
    assert base_diff_id() == first.diff_ids[0]  # present: used as it is
    assert base_diff_id(pull=True) == second.diff_ids[0]  # build.pull: asked the registry
    assert backend.images.resolve(base) == backend.images.resolve(second.config_digest)
