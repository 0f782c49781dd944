# ruff: noqa: F811  (the registry fixtures are imported from registry_server)
"""The registry client against a real docker-registry on 127.0.0.1.

The registries (anonymous, htpasswd, token) are Debian's docker-registry
started by ``registry_server``; bb:latest is pushed to them by docker, other
images are crafted and pushed with the Distribution API. ``Front`` and
``BlobHost`` stand in for a misbehaving network: a redirect to another host,
a corrupted blob, a connection that breaks off.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest

from composer.backends.native.images.auth import CredentialLookup, Credentials, lookup
from composer.backends.native.images.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    Descriptor,
    Platform,
)
from composer.backends.native.images.registry import RegistryClient
from composer.errors import BackendError, NotFound, Unavailable
from tests.backends.native.images.registry_content import craft_image, push_index
from tests.backends.native.images.registry_fault import BlobHost, Front, FrontRules
from tests.backends.native.images.registry_server import (  # noqa: F401  (fixtures)
    USERS,
    Registry,
    basic_registry,
    docker_env,
    free_port,
    plain_registry,
    pushed,
    registry_workdir,
    token_registry,
    upload,
)

ALICE = Credentials("alice", USERS["alice"])


def client_for(reg: Registry | str, creds: Credentials | None = None) -> RegistryClient:
    host = reg if isinstance(reg, str) else reg.host
    return RegistryClient(host, credentials=CredentialLookup(host, creds))


def bb_layer(client: RegistryClient, repo: str = "x/bb") -> Descriptor:
    manifest = client.get_manifest(repo, "1")
    return manifest.layers[0]


# --- against the registry: anonymous, basic, token --------------------------------------------


def test_anonymous_pull_of_a_docker_pushed_image(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    with client_for(plain_registry) as client:
        assert client.ping() is None
        manifest = client.get_manifest("x/bb", "1")
        assert manifest.media_type == DOCKER_MANIFEST
        config = client.get_blob("x/bb", manifest.config)
        # docker's image id is the digest of the config it pushed
        assert "sha256:" + hashlib.sha256(config).hexdigest() == pushed["image_id"]
        layer = manifest.layers[0]
        seen: list[int] = []
        path = client.download_blob("x/bb", layer, tmp_path / "layer", seen.append)
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest
        assert seen[-1] == layer.size
        again = client.get_manifest("x/bb", manifest.digest)  # by digest, verified
        assert again.raw == manifest.raw


def test_unknown_tag_and_repository_are_not_found(
    plain_registry: Registry, pushed: dict[str, str]
) -> None:
    with client_for(plain_registry) as client:
        with pytest.raises(NotFound, match="manifest for x/bb:nope not found"):
            client.get_manifest("x/bb", "nope")
        with pytest.raises(NotFound):
            client.get_manifest("no/such-repo", "1")


def test_unreachable_registry_is_unavailable_with_a_hint() -> None:
    host = f"127.0.0.1:{free_port()}"
    with client_for(host) as client, pytest.raises(Unavailable) as err:
        client.get_manifest("x/bb", "1")
    assert f"cannot connect to registry {host}" in err.value.message
    assert host in (err.value.hint or "")


def test_basic_auth(basic_registry: Registry, pushed: dict[str, str]) -> None:
    with client_for(basic_registry) as client:
        challenge = client.ping()
        assert challenge is not None and challenge.scheme == "basic"
        with pytest.raises(BackendError, match="requires authentication") as err:
            client.get_manifest("x/bb", "1")
        assert f"docker login {basic_registry.host}" in (err.value.hint or "")
    wrong = client_for(basic_registry, Credentials("alice", "wrong"))
    with wrong, pytest.raises(BackendError, match="denied"):
        wrong.get_manifest("x/bb", "1")
    with client_for(basic_registry, ALICE) as client:
        assert client.get_manifest("x/bb", "1").media_type == DOCKER_MANIFEST


def test_basic_auth_with_the_credentials_docker_login_wrote(
    basic_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    env = docker_env(tmp_path / "docker-config")
    login = subprocess.run(
        ["docker", "login", "-u", "alice", "--password-stdin", basic_registry.host],
        input=USERS["alice"],
        text=True,
        capture_output=True,
        env=env,
    )
    assert login.returncode == 0, login.stderr
    found = lookup(basic_registry.host, env)
    assert found.credentials == ALICE
    with RegistryClient(basic_registry.host, credentials=found) as client:
        assert client.get_manifest("x/bb", "1").media_type == DOCKER_MANIFEST


def test_token_auth_anonymous(token_registry: Registry, pushed: dict[str, str]) -> None:
    assert token_registry.token_server is not None
    with client_for(token_registry) as client:
        challenge = client.ping()
        assert challenge is not None and challenge.scheme == "bearer"
        assert client.get_manifest("public/bb", "1").media_type == DOCKER_MANIFEST
        request = token_registry.token_server.requests[-1]
        assert request["user"] is None
        assert request["query"]["scope"] == ["repository:public/bb:pull"]
        with pytest.raises(BackendError, match="denied") as err:
            client.get_manifest("x/bb", "1")  # anonymous tokens carry no access to x/
        assert "docker login" in (err.value.hint or "")


def test_token_auth_with_credentials(
    token_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    assert token_registry.token_server is not None
    before = len(token_registry.token_server.requests)
    with client_for(token_registry, ALICE) as client:
        manifest = client.get_manifest("x/bb", "1")
        client.download_blob("x/bb", manifest.layers[0], tmp_path / "layer")
    new = token_registry.token_server.requests[before:]
    assert [(r["user"], r["query"]["scope"]) for r in new] == [("alice", ["repository:x/bb:pull"])]
    wrong = client_for(token_registry, Credentials("alice", "nope"))
    with wrong, pytest.raises(BackendError, match="refused the credentials of 'alice'"):
        wrong.get_manifest("x/bb", "1")


def test_token_is_fetched_once_per_scope(token_registry: Registry, pushed: dict[str, str]) -> None:
    server = token_registry.token_server
    assert server is not None
    with client_for(token_registry, ALICE) as client:
        before = len(server.requests)
        manifest = client.get_manifest("x/bb", "1")
        client.get_blob("x/bb", manifest.config)
        client.get_manifest("x/bb", manifest.digest)
        assert len(server.requests) == before + 1


def test_an_expired_token_is_renewed_once(token_registry: Registry, pushed: dict[str, str]) -> None:
    server = token_registry.token_server
    assert server is not None
    before = len(server.requests)
    server.expire_next = 1
    with client_for(token_registry, ALICE) as client:
        assert client.get_manifest("x/bb", "1").media_type == DOCKER_MANIFEST
    assert len(server.requests) == before + 2  # the expired token, then a fresh one
    server.expire_next = 2
    with client_for(token_registry, ALICE) as client, pytest.raises(BackendError, match="denied"):
        client.get_manifest("x/bb", "1")  # renewed once only, not in a loop
    server.expire_next = 0


# --- redirects, corruption, resume ----------------------------------------------------------------


def test_redirect_to_another_host_does_not_carry_authorization(
    basic_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    blob_host = BlobHost(basic_registry.storage, "127.0.0.2")
    rules = FrontRules()
    front = Front(basic_registry.url, rules, blob_host)
    try:
        with client_for(front.host, ALICE) as client:
            layer = bb_layer(client)
            rules.redirect.add(layer.digest)
            client.download_blob("x/bb", layer, tmp_path / "layer")
        assert len(blob_host.requests) == 1
        assert "authorization" not in blob_host.requests[0]
        blob_requests = [h for p, h in front.requests if layer.digest in p]
        assert blob_requests and all(h.get("authorization") for h in blob_requests)
        assert hashlib.sha256((tmp_path / "layer").read_bytes()).hexdigest() == layer.digest[7:]
    finally:
        front.close()
        blob_host.close()


def test_redirect_on_the_same_origin_keeps_authorization(
    basic_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    rules = FrontRules()
    front = Front(basic_registry.url, rules)
    try:
        with client_for(front.host, ALICE) as client:
            layer = bb_layer(client)
            rules.same_origin_redirect.add(layer.digest)
            client.download_blob("x/bb", layer, tmp_path / "layer")
        moved = [h for p, h in front.requests if "moved=1" in p]
        assert len(moved) == 1 and moved[0]["authorization"].startswith("Basic ")
    finally:
        front.close()


def test_corrupted_blob_is_rejected_and_not_kept(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    rules = FrontRules()
    front = Front(plain_registry.url, rules)
    try:
        with client_for(front.host) as client:
            manifest = client.get_manifest("x/bb", "1")
            rules.corrupt.update({manifest.layers[0].digest, manifest.config.digest})
            with pytest.raises(BackendError, match="does not match its digest"):
                client.download_blob("x/bb", manifest.layers[0], tmp_path / "layer")
            assert not (tmp_path / "layer").exists()
            with pytest.raises(BackendError, match="does not match its digest"):
                client.get_blob("x/bb", manifest.config)
    finally:
        front.close()


def test_blob_longer_than_its_descriptor_is_rejected(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    with client_for(plain_registry) as client:
        layer = bb_layer(client)
        short = Descriptor(layer.media_type, layer.digest, layer.size - 10)
        with pytest.raises(BackendError, match="longer than"):
            client.download_blob("x/bb", short, tmp_path / "layer")
        assert not (tmp_path / "layer").exists()


def test_interrupted_download_resumes_with_range(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    rules = FrontRules()
    front = Front(plain_registry.url, rules)
    try:
        with client_for(front.host) as client:
            layer = bb_layer(client)
            rules.cut[layer.digest] = 1
            client.download_blob("x/bb", layer, tmp_path / "layer")
        ranges = [h.get("range") for p, h in front.requests if layer.digest in p]
        assert ranges == [None, f"bytes={layer.size // 2}-"]
        assert hashlib.sha256((tmp_path / "layer").read_bytes()).hexdigest() == layer.digest[7:]
    finally:
        front.close()


def test_failed_download_leaves_a_partial_file_a_later_call_resumes(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    rules = FrontRules()
    front = Front(plain_registry.url, rules)
    partial = tmp_path / "layer"
    try:
        with client_for(front.host) as client:
            layer = bb_layer(client)
            rules.cut[layer.digest] = 100
            with pytest.raises(Unavailable, match="closed the connection"):
                client.download_blob("x/bb", layer, partial, attempts=1)
            assert partial.stat().st_size == layer.size // 2
            rules.cut.clear()
            front.requests.clear()
            client.download_blob("x/bb", layer, partial)
        (only,) = [h for p, h in front.requests if layer.digest in p]
        assert only["range"] == f"bytes={layer.size // 2}-"
        assert hashlib.sha256(partial.read_bytes()).hexdigest() == layer.digest[7:]
    finally:
        front.close()


def test_a_stale_partial_file_with_wrong_bytes_is_fetched_again_from_the_start(
    plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    partial = tmp_path / "layer"
    partial.write_bytes(b"garbage that is not the blob's beginning")
    front = Front(plain_registry.url, FrontRules())
    try:
        with client_for(front.host) as client:
            layer = bb_layer(client)
            client.download_blob("x/bb", layer, partial)
        ranges = [h.get("range") for p, h in front.requests if layer.digest in p]
        assert ranges == ["bytes=40-", None]  # resumed, found wrong, fetched whole
        assert hashlib.sha256(partial.read_bytes()).hexdigest() == layer.digest[7:]
    finally:
        front.close()


# --- indexes and manifest lists -------------------------------------------------------------------


@pytest.mark.parametrize("docker_list", [False, True], ids=["oci-index", "docker-list"])
def test_index_with_platforms_and_an_attestation(
    plain_registry: Registry, upload: httpx.Client, docker_list: bool
) -> None:
    base = plain_registry.url
    repo = "multi/oci" if not docker_list else "multi/docker"
    amd = craft_image(upload, base, repo, None, [({"arch": b"amd64\n"}, "gzip")], None, docker_list)
    arm = craft_image(
        upload,
        base,
        repo,
        None,
        [({"arch": b"arm64\n"}, "gzip")],
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        docker_list,
    )
    digest = push_index(
        upload, base, repo, "1", [arm, amd], attestation_for=amd, docker_list=docker_list
    )
    with client_for(plain_registry) as client:
        image, index = client.image_manifest(repo, "1", Platform.parse("linux/amd64"))
        assert index is not None and index.digest == digest
        assert index.media_type == (DOCKER_LIST if docker_list else OCI_INDEX)
        assert image.digest == amd.manifest_digest
        image, _ = client.image_manifest(repo, "1", Platform.parse("linux/arm64"))
        assert image.digest == arm.manifest_digest
        with pytest.raises(NotFound, match="no matching manifest for linux/ppc64le"):
            client.image_manifest(repo, "1", Platform.parse("linux/ppc64le"))
        with pytest.raises(NotFound):
            client.image_manifest(repo, "1", Platform.parse("unknown/unknown"))
        single, none = client.image_manifest(repo, amd.manifest_digest)
        assert none is None and single.digest == amd.manifest_digest


def test_layers_in_each_compression_come_back_byte_exact(
    plain_registry: Registry, upload: httpx.Client, tmp_path: Path
) -> None:
    files = {"etc/greeting": b"hello\n"}
    image = craft_image(
        upload,
        plain_registry.url,
        "kinds/all",
        "1",
        [(files, "gzip"), (files, "zstd"), (files, "tar")],
    )
    with client_for(plain_registry) as client:
        manifest = client.get_manifest("kinds/all", "1")
        kinds = [layer.media_type.rsplit(".", 1)[-1] for layer in manifest.layers]
        assert kinds == ["tar+gzip", "tar+zstd", "tar"]
        for n, layer in enumerate(manifest.layers):
            path = client.download_blob("kinds/all", layer, tmp_path / f"l{n}")
            assert (
                "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == image.layer_digests[n]
            )
