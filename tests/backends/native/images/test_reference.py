"""Reference normalisation: Docker Hub's rules, registries with ports, digests, display names."""

from __future__ import annotations

import pytest

from composer.backends.native.images import reference as R
from composer.errors import ConfigError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
        ("registry-1.docker.io/me/app", "docker.io/me/app:latest"),
        ("me/app:v1", "docker.io/me/app:v1"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("registry.example/a/b/c:t_1.2-x", "registry.example/a/b/c:t_1.2-x"),
        ("[::1]:5000/app:1", "[::1]:5000/app:1"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox:1.36@{DIGEST}", f"docker.io/library/busybox:1.36@{DIGEST}"),
        ("my.reg-1.example/web__x", "my.reg-1.example/web__x:latest"),
        ("a-b--c/d", "docker.io/a-b--c/d:latest"),
    ],
)
def test_normalize(text: str, canonical: str) -> None:
    assert R.normalize(text) == canonical
    assert R.normalize(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    ("canonical", "familiar"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/me/app:v1", "me/app:v1"),
        ("docker.io/library/a/b:1", "library/a/b:1"),
        ("localhost:5000/app:1", "localhost:5000/app:1"),
        (f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    ],
)
def test_familiar_name(canonical: str, familiar: str) -> None:
    assert R.familiar_name(canonical) == familiar
    assert R.parse(canonical).familiar == familiar


def test_parts() -> None:
    ref = R.parse("localhost:5000/team/app:1.0")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "localhost:5000",
        "team/app",
        "1.0",
        None,
    )
    assert ref.repository == "localhost:5000/team/app"
    assert ref.familiar_repository == "localhost:5000/team/app"
    assert R.parse("busybox", default_tag=False).tag is None
    assert str(R.parse("busybox").with_tag("2")) == "docker.io/library/busybox:2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Busybox",
        "busybox:",
        "busybox:-bad",
        "busy box",
        "busybox@sha256:abc",
        "busybox@sha256:" + "AB" * 32,
        "a//b",
        "/busybox",
        "busybox/",
        "a..b",
        "ab" * 32,
        "me/" + "a" * 300,
        "bad_host_:5000/app",
        "my_app.v2/web",
    ],
)
def test_invalid_references(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid reference format"):
        R.parse(text)


def test_ids() -> None:
    assert R.is_image_id(DIGEST)
    assert R.is_image_id("ab" * 32)
    assert not R.is_image_id("sha256:abc")
    assert R.looks_like_id_prefix("3f57d9401f8d")
    assert R.looks_like_id_prefix("sha256:3f57")
    assert not R.looks_like_id_prefix("busybox")
