# ruff: noqa: F811  (the registry fixtures are imported from registry_server)
"""The registry client against a real docker-registry on 127.0.0.1, and its parsing and errors.

The registries (anonymous, htpasswd, token) are Debian's docker-registry
started by ``registry_server``; bb:latest is pushed to them by docker, other
images are crafted and pushed with the Distribution API. ``Front`` and
``BlobHost`` stand in for a misbehaving network: a redirect to another host,
a corrupted blob, a connection that breaks off.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from composer.backends.native.images import registry_errors
from composer.backends.native.images.auth import CredentialLookup, Credentials, lookup
from composer.backends.native.images.challenge import parse_www_authenticate
from composer.backends.native.images.manifests import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    host_platform,
    select_platform,
)
from composer.backends.native.images.registry import RegistryClient, base_url, registry_host
from composer.errors import BackendError, ConfigError, NotFound, Unavailable, Unsupported
from tests.backends.native.images.registry_server import (  # noqa: F401  (fixtures)
    USERS,
    BlobHost,
    Front,
    FrontRules,
    Registry,
    basic_registry,
    craft_image,
    docker_env,
    free_port,
    plain_registry,
    push_index,
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
    with pytest.raises(BackendError):
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


# --- credentials ----------------------------------------------------------------------------------


def _write_config(directory: Path, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_auth_and_username_password(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write_config(
        home / ".docker",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _b64("hubuser:hub:pw")},
                "http://127.0.0.1:5000/v2/": {"auth": _b64("local:pw")},
                "reg.example": {"username": "u", "password": "p"},
                "empty.example": {},
            }
        },
    )
    env = {"HOME": str(home)}
    assert lookup("docker.io", env).credentials == Credentials("hubuser", "hub:pw")
    assert lookup("registry-1.docker.io", env).credentials == Credentials("hubuser", "hub:pw")
    assert lookup("127.0.0.1:5000", env).credentials == Credentials("local", "pw")
    assert lookup("reg.example", env).credentials == Credentials("u", "p")
    assert lookup("empty.example", env).credentials is None
    assert lookup("other.example", env).credentials is None
    assert "pw" not in repr(lookup("127.0.0.1:5000", env))


def test_docker_config_env_wins_over_home(tmp_path: Path) -> None:
    _write_config(tmp_path / "home/.docker", {"auths": {"r.example": {"auth": _b64("home:x")}}})
    _write_config(tmp_path / "dc", {"auths": {"r.example": {"auth": _b64("dc:y")}}})
    env = {"HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(tmp_path / "dc")}
    found = lookup("r.example", env)
    assert found.credentials == Credentials("dc", "y")
    assert found.config_path == tmp_path / "dc/config.json"
    assert lookup("r.example", {}).credentials is None


def test_credential_helpers_and_identity_tokens_are_recorded(tmp_path: Path) -> None:
    _write_config(
        tmp_path,
        {
            "auths": {"r.example": {}, "i.example": {"identitytoken": "tok"}},
            "credsStore": "desktop",
            "credHelpers": {"gcr.example": "gcloud"},
        },
    )
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path / "empty-bin")}
    store = lookup("r.example", env)
    assert store.credentials is None and store.helper == "desktop"
    assert store.missing_error() is None  # the helper is not asked until a registry wants it
    asked = store.resolved()
    assert asked.credentials is None
    error = asked.missing_error()
    assert error is not None and "docker-credential-desktop is not installed" in error.message
    assert "docker login r.example" in (error.hint or "")
    assert lookup("gcr.example", env).helper == "gcloud"
    token = lookup("i.example", env)
    assert token.identity_token and isinstance(token.missing_error(), Unsupported)


HELPER = """#!/bin/sh
read -r server
echo "$server" >> "$0.log"
if [ "$server" = "{host}" ]; then
    printf '{{"ServerURL":"%s","Username":"alice","Secret":"{password}"}}' "$server"
else
    echo "credentials not found in native keychain"; exit 1
fi
"""


def _helper(tmp_path: Path, host: str) -> dict[str, str]:
    """A docker-credential-composertest that knows alice's password for ``host`` only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-composertest"
    program.write_text(HELPER.format(host=host, password=USERS["alice"]))
    program.chmod(0o755)
    _write_config(tmp_path / "dc", {"auths": {}, "credsStore": "composertest"})
    return {"DOCKER_CONFIG": str(tmp_path / "dc"), "PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_a_credential_helper_is_asked_when_the_registry_challenges(
    basic_registry: Registry, plain_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    env = _helper(tmp_path, basic_registry.host)
    log = tmp_path / "bin" / "docker-credential-composertest.log"
    with RegistryClient(plain_registry.host, credentials=lookup(plain_registry.host, env)) as c:
        c.get_manifest("x/bb", "1")
    assert not log.exists()  # no challenge, no helper
    with RegistryClient(basic_registry.host, credentials=lookup(basic_registry.host, env)) as c:
        assert c.get_manifest("x/bb", "1").media_type == DOCKER_MANIFEST
        c.get_manifest("x/bb", "1")
    assert log.read_text().split() == [basic_registry.host]  # asked once


def test_a_credential_helper_without_credentials_explains_the_refusal(
    basic_registry: Registry, pushed: dict[str, str], tmp_path: Path
) -> None:
    env = _helper(tmp_path, "elsewhere.example")
    found = lookup(basic_registry.host, env)
    client = RegistryClient(basic_registry.host, credentials=found)
    with client, pytest.raises(BackendError, match="has no credentials for") as err:
        client.get_manifest("x/bb", "1")
    assert "docker-credential-composertest" in err.value.message


def test_bad_docker_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})
    _write_config(tmp_path, {"auths": {"r.example": {"auth": "***"}}})
    with pytest.raises(ConfigError, match="not base64"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})
    _write_config(tmp_path, {"auths": {"r.example": {"auth": _b64("nocolon")}}})
    with pytest.raises(ConfigError, match="user:password"):
        lookup("r.example", {"DOCKER_CONFIG": str(tmp_path)})


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
