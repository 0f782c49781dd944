"""What the registry client decides on its own: names, challenges, platforms, the error table.

No registry is needed here; the one request-level test runs on an httpx
mock transport, so a Docker Hub name is checked without leaving the machine.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from composer.backends.native.images import registry_errors
from composer.backends.native.images.challenge import parse_www_authenticate
from composer.backends.native.images.manifests import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Platform,
    host_platform,
    select_platform,
)
from composer.backends.native.images.registry import base_url, registry_host
from composer.errors import BackendError, ConfigError, NotFound, Unavailable

# --- names, challenges, platforms ---------------------------------------------------------------


def test_docker_hub_names_map_to_registry_1() -> None:
    assert registry_host("docker.io") == "registry-1.docker.io"
    assert registry_host("index.docker.io") == "registry-1.docker.io"
    assert base_url("docker.io") == "https://registry-1.docker.io"
    assert base_url("ghcr.io") == "https://ghcr.io"
    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("localhost:5000") == "http://localhost:5000"
    assert base_url("[::1]:5000") == "http://[::1]:5000"


def test_accept_header_lists_the_four_manifest_types() -> None:
    assert ACCEPT.split(", ") == [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]


def test_www_authenticate_bearer_with_commas_in_scope() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    (challenge,) = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push repository:c:pull",
    }


def test_www_authenticate_several_challenges_and_escapes() -> None:
    header = 'Basic realm="say \\"hi\\"", Bearer realm=https://t.example/token , error=x'
    basic, bearer = parse_www_authenticate(header)
    assert (basic.scheme, basic.params) == ("basic", {"realm": 'say "hi"'})
    assert (bearer.scheme, bearer.params) == (
        "bearer",
        {"realm": "https://t.example/token", "error": "x"},
    )
    assert [c.scheme for c in parse_www_authenticate("Negotiate abc==, Basic realm=r")] == [
        "negotiate",
        "basic",
    ]


def _index(entries: list[dict[str, Any]]) -> Manifest:
    data = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return Manifest(OCI_INDEX, "sha256:" + "0" * 64, json.dumps(data).encode(), data)


def _entry(n: int, **platform: str) -> dict[str, Any]:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + str(n) * 64,
        "size": 100,
        "platform": platform,
    }


def test_platform_selection_skips_attestations_and_matches_variants() -> None:
    index = _index(
        [
            _entry(1, os="unknown", architecture="unknown"),
            _entry(2, os="linux", architecture="arm", variant="v6"),
            _entry(3, os="linux", architecture="arm", variant="v7"),
            _entry(4, os="linux", architecture="arm64"),
            _entry(5, os="linux", architecture="amd64"),
        ]
    )
    pick = lambda text: select_platform(index, Platform.parse(text)).digest[7]  # noqa: E731
    assert pick("linux/amd64") == "5"
    assert pick("linux/arm/v7") == "3"
    assert pick("linux/arm/v6") == "2"
    assert pick("linux/arm64/v8") == "4"  # no variant on arm64 means v8
    assert pick("linux/arm64") == "4"
    with pytest.raises(NotFound) as err:
        select_platform(index, Platform.parse("linux/s390x"))
    assert "no matching manifest for linux/s390x" in err.value.message
    assert "linux/amd64" in (err.value.hint or "") and "unknown" not in (err.value.hint or "")
    only_attestation = _index([_entry(1, os="unknown", architecture="unknown")])
    with pytest.raises(NotFound):
        select_platform(only_attestation, Platform.parse("unknown/unknown"))


def test_host_platform_is_linux_on_this_machine() -> None:
    p = host_platform()
    assert p.os == "linux" and p.architecture in (
        "amd64",
        "arm64",
        "arm",
        "386",
        "ppc64le",
        "s390x",
        "riscv64",
    )
    with pytest.raises(ConfigError, match="invalid platform"):
        Platform.parse("linux")


# --- the error table ------------------------------------------------------------------------------


def _all_httpx_errors() -> list[type[BaseException]]:
    found = [
        obj
        for _, obj in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(obj, httpx.HTTPError)
    ]
    return sorted(found, key=lambda c: c.__name__)


def test_error_table_names_real_httpx_classes_most_specific_first() -> None:
    classes = [cls for cls, _ in registry_errors.TRANSPORT_ERRORS]
    for cls in classes:
        assert getattr(httpx, cls.__name__) is cls, f"httpx.{cls.__name__} moved or was renamed"
    for i, cls in enumerate(classes):  # no entry is shadowed by a more general one before it
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls
    assert classes[-1] is httpx.HTTPError


@pytest.mark.parametrize("cls", _all_httpx_errors(), ids=lambda c: c.__name__)
def test_every_httpx_error_maps_to_a_composer_error(cls: type[httpx.HTTPError]) -> None:
    if cls is httpx.HTTPStatusError:
        request = httpx.Request("GET", "http://127.0.0.1:9/v2/")
        exc: httpx.HTTPError = cls("boom", request=request, response=httpx.Response(500))
    else:
        exc = cls("boom")
    error = registry_errors.transport_error(exc, "reg.example:5000")
    assert isinstance(error, BackendError)
    assert "reg.example:5000" in error.message and "boom" in error.message
    assert error.hint
    explicit = {c for c, _ in registry_errors.TRANSPORT_ERRORS}
    if not cls.__subclasses__() and cls is not httpx.HTTPStatusError:  # raise_for_status unused
        assert cls in explicit, f"{cls.__name__} has no entry of its own"


def test_connection_errors_are_unavailable_and_broken_transfers_retryable() -> None:
    assert isinstance(registry_errors.transport_error(httpx.ConnectError("x"), "r"), Unavailable)
    assert isinstance(registry_errors.transport_error(httpx.ConnectTimeout("x"), "r"), Unavailable)
    assert registry_errors.is_retryable(httpx.RemoteProtocolError("peer closed"))
    assert registry_errors.is_retryable(httpx.ReadError("reset"))
    assert registry_errors.is_retryable(httpx.ReadTimeout("slow"))
    assert not registry_errors.is_retryable(httpx.ConnectError("refused"))


def test_status_table() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
    nf = registry_errors.status_error(404, body.encode(), registry="r:1", what="manifest for a:b")
    assert isinstance(nf, NotFound)
    assert nf.message == "manifest for a:b not found: manifest unknown"
    denied = registry_errors.status_error(401, b"", registry="r:1", what="manifest for a:b")
    assert type(denied) is BackendError and "docker login r:1" in (denied.hint or "")
    assert isinstance(registry_errors.status_error(503, b"", registry="r", what="w"), Unavailable)
    assert isinstance(registry_errors.status_error(429, b"", registry="r", what="w"), Unavailable)
    assert "HTTP 418" in registry_errors.status_error(418, b"x", registry="r", what="w").message


def test_registry_modules_keep_httpx_out_of_cli_start_up() -> None:
    code = (
        "import sys, composer.backends.native.images.auth, composer.cli; "
        "sys.exit('httpx' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_docker_hub_references_go_to_registry_1(tmp_path: Path) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        return httpx.Response(404, json=body)

    from composer.backends.native.images.pull import pull
    from composer.backends.native.images.store import ImageStore
    from composer.backends.native.state import StateRoot

    store = ImageStore(StateRoot(tmp_path / "state").ensure())
    with pytest.raises(NotFound, match="manifest for library/busybox:latest not found"):
        pull("busybox", store, transport=httpx.MockTransport(answer))
    assert seen == [
        "https://registry-1.docker.io/v2/",
        "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
    ]
