# ruff: noqa: F811  (the registry fixtures are imported from registry_server)
"""``pull`` into a real ImageStore from docker-registry on 127.0.0.1.

Images are bb:latest pushed by docker and crafted ones pushed with the
Distribution API; ``Front`` corrupts, breaks off or gathers blob requests
to show what a pull does then. Every test has its own state root.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from composer.backends.base import ProgressUpdate
from composer.backends.native.images.manifests import host_platform
from composer.backends.native.images.pull import pull, short
from composer.backends.native.images.store import ImageStore
from composer.errors import BackendError, NotFound, Unavailable, Unsupported
from tests.backends.native.images.registry_content import (
    craft_image,
    push_blob,
    push_index,
    push_manifest,
)
from tests.backends.native.images.registry_fault import Front, FrontRules
from tests.backends.native.images.registry_server import (  # noqa: F401  (fixtures)
    USERS,
    Registry,
    basic_registry,
    plain_registry,
    pushed,
    registry_workdir,
    token_registry,
    upload,
)


def downloads(store: ImageStore) -> list[Path]:
    folder = store.root.tmp / "downloads"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_pull_of_a_docker_pushed_image(
    plain_registry: Registry, pushed: dict[str, str], store: ImageStore
) -> None:
    ref = f"{plain_registry.host}/x/bb:1"
    updates: list[ProgressUpdate] = []
    image_id = pull(ref, store, updates.append)
    assert image_id == pushed["image_id"]  # the same id docker gives the image
    assert store.resolve(ref) == image_id
    image = store.image(image_id)
    assert (image.layer_dirs[0] / "bin" / "busybox").is_file()
    assert list(image.diff_ids) == json.loads(pushed["layers"])  # docker's RootFS.Layers
    per_layer = [u for u in updates if u.id != str(ref)]
    statuses = [u.status for u in per_layer]
    assert statuses[0] == "Pulling fs layer" and statuses[-1] == "Pull complete"
    assert "Verifying Checksum" in statuses and "Extracting" in statuses
    downloading = [u for u in per_layer if u.status == "Downloading"]
    assert downloading[-1].current == downloading[-1].total and downloading[-1].total
    # one update per 1% (at least 256 KiB), not one per network read
    assert len(downloading) <= 2 + (downloading[-1].total or 0) // (256 * 1024)
    assert updates[-1].status == f"Status: Downloaded newer image for {ref}"
    assert downloads(store) == []


def test_second_pull_downloads_nothing(
    plain_registry: Registry, pushed: dict[str, str], store: ImageStore
) -> None:
    front = Front(plain_registry.url, FrontRules())
    try:
        ref = f"{front.host}/x/bb:1"
        first = pull(ref, store)
        front.requests.clear()
        updates: list[ProgressUpdate] = []
        assert pull(ref, store, updates.append) == first
        blob_gets = [p for p, _ in front.requests if "/blobs/" in p]
        assert blob_gets == [f"/v2/x/bb/blobs/{first}"]  # the config only: no layer again
        layer_updates = {u.status for u in updates if u.id != ref}
        assert layer_updates == {"Already exists"}
        assert updates[-1].status == f"Status: Image is up to date for {ref}"
    finally:
        front.close()


def test_two_pulls_of_one_image_at_once_share_the_downloads(
    plain_registry: Registry, upload: httpx.Client, store: ImageStore
) -> None:
    layers = [({f"data/{n}": os.urandom(256 * 1024)}, "gzip") for n in range(4)]
    crafted = craft_image(upload, plain_registry.url, "twice/at-once", "1", layers)
    front = Front(plain_registry.url, FrontRules())
    ref = f"{front.host}/twice/at-once:1"
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:  # each its own store object on the same root, as two processes would have
            results.append(pull(ref, ImageStore(store.root)))
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and results == [crafted.config_digest] * 2
        layer_gets = [p for p, _ in front.requests if p.rsplit("/", 1)[-1] in crafted.layer_digests]
        assert sorted(layer_gets) == sorted(
            f"/v2/twice/at-once/blobs/{d}" for d in crafted.layer_digests
        )
        assert downloads(store) == []
    finally:
        front.close()


def test_unknown_tag_is_not_found_and_nothing_is_tagged(
    plain_registry: Registry, pushed: dict[str, str], store: ImageStore
) -> None:
    ref = f"{plain_registry.host}/x/bb:missing"
    with pytest.raises(NotFound):
        pull(ref, store)
    assert store.resolve(ref) is None


def _docker_config(tmp_path: Path, host: str, user: str, password: str) -> dict[str, str]:
    folder = tmp_path / "docker-config"
    folder.mkdir()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(folder), "HOME": str(tmp_path)}


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_pull_with_credentials_from_docker_config(
    mode: str,
    basic_registry: Registry,
    token_registry: Registry,
    pushed: dict[str, str],
    store: ImageStore,
    tmp_path: Path,
) -> None:
    reg = basic_registry if mode == "htpasswd" else token_registry
    ref = f"{reg.host}/x/bb:1"
    with pytest.raises(BackendError):
        pull(ref, store, environ={"HOME": str(tmp_path)})
    env = _docker_config(tmp_path, reg.host, "alice", USERS["alice"])
    assert pull(ref, store, environ=env) == pushed["image_id"]
    assert store.resolve(ref) == pushed["image_id"]


def test_corrupted_layer_is_rejected_and_nothing_tagged(
    plain_registry: Registry, pushed: dict[str, str], store: ImageStore
) -> None:
    rules = FrontRules()
    front = Front(plain_registry.url, rules)
    try:
        ref = f"{front.host}/x/bb:1"
        manifest = httpx.get(
            f"{plain_registry.url}/v2/x/bb/manifests/1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        ).json()
        layer = manifest["layers"][0]["digest"]
        rules.corrupt.add(layer)
        with pytest.raises(BackendError, match="does not match its digest"):
            pull(ref, store)
        assert store.resolve(ref) is None
        assert not store.has_blob(layer)
        assert downloads(store) == []
    finally:
        front.close()


def test_interrupted_pull_resumes_on_the_next_pull(
    plain_registry: Registry, pushed: dict[str, str], store: ImageStore
) -> None:
    rules = FrontRules()
    front = Front(plain_registry.url, rules)
    try:
        ref = f"{front.host}/x/bb:1"
        manifest = httpx.get(
            f"{plain_registry.url}/v2/x/bb/manifests/1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        ).json()
        layer = manifest["layers"][0]
        rules.cut[layer["digest"]] = 1000  # every attempt of this pull breaks off half-way
        with pytest.raises(Unavailable, match="closed the connection"):
            pull(ref, store)
        assert store.resolve(ref) is None
        (partial,) = downloads(store)
        assert partial.name == layer["digest"][7:] + ".partial"
        kept = partial.stat().st_size
        # four attempts, each resuming where the last broke off and getting half of the rest
        expected, ranges = 0, []
        for _ in range(4):
            ranges.append(f"bytes={expected}-" if expected else None)
            expected += (layer["size"] - expected) // 2
        tried = [h.get("range") for p, h in front.requests if layer["digest"] in p]
        assert (tried, kept) == (ranges, expected)
        rules.cut.clear()
        front.requests.clear()
        assert pull(ref, store) == pushed["image_id"]
        blob_gets = [h for p, h in front.requests if layer["digest"] in p]
        assert [h.get("range") for h in blob_gets] == [f"bytes={kept}-"]
        assert downloads(store) == []
    finally:
        front.close()


def test_gzip_zstd_and_uncompressed_layers(
    plain_registry: Registry, upload: httpx.Client, store: ImageStore
) -> None:
    crafted = craft_image(
        upload,
        plain_registry.url,
        "kinds/pull",
        "1",
        [
            ({"etc/one": b"gzip layer\n"}, "gzip"),
            ({"etc/two": b"zstd layer\n"}, "zstd"),
            ({"etc/three": b"plain layer\n"}, "tar"),
            ({"etc/four": b"docker gzip layer\n"}, "docker"),
        ],
    )
    ref = f"{plain_registry.host}/kinds/pull:1"
    image = store.image(pull(ref, store))
    assert list(image.diff_ids) == crafted.diff_ids
    top_first = [sorted(p.name for p in (d / "etc").iterdir()) for d in image.layer_dirs]
    assert top_first == [["four"], ["three"], ["two"], ["one"]]
    assert (image.layer_dirs[2] / "etc" / "two").read_bytes() == b"zstd layer\n"


def test_layers_download_in_parallel_bounded(
    plain_registry: Registry, upload: httpx.Client, store: ImageStore
) -> None:
    layers = [({f"data/{n}": os.urandom(64 * 1024)}, "gzip") for n in range(6)]
    crafted = craft_image(upload, plain_registry.url, "many/layers", "1", layers)
    rules = FrontRules(gather=3, gathered=set(crafted.layer_digests))
    front = Front(plain_registry.url, rules)
    try:
        image = store.image(pull(f"{front.host}/many/layers:1", store, max_downloads=3))
        assert len(image.layer_dirs) == 6
        assert front.max_in_flight == 3  # three at once, never more
    finally:
        front.close()


def test_platform_is_picked_from_an_index_with_an_attestation(
    plain_registry: Registry, upload: httpx.Client, store: ImageStore
) -> None:
    base, repo = plain_registry.url, "multi/pull"
    host = host_platform()
    other = {"os": "linux", "architecture": "s390x"} if host.architecture != "s390x" else None
    other = other or {"os": "linux", "architecture": "amd64"}
    mine = {"os": host.os, "architecture": host.architecture}
    a = craft_image(upload, base, repo, None, [({"which": b"host\n"}, "gzip")], mine)
    b = craft_image(upload, base, repo, None, [({"which": b"other\n"}, "zstd")], other)
    push_index(upload, base, repo, "1", [b, a], attestation_for=a)
    ref = f"{plain_registry.host}/{repo}:1"
    default = store.image(pull(ref, store))
    assert default.config["architecture"] == host.architecture
    assert (default.layer_dirs[0] / "which").read_bytes() == b"host\n"
    wanted = f"{other['os']}/{other['architecture']}"
    picked = store.image(pull(ref, store, platform=wanted))
    assert picked.config["architecture"] == other["architecture"]
    assert store.resolve(ref) == picked.id  # the tag follows the last pull
    by_env = pull(ref, store, environ={"DOCKER_DEFAULT_PLATFORM": wanted})
    assert by_env == picked.id
    with pytest.raises(NotFound, match="no matching manifest for linux/riscv64"):
        pull(ref, store, platform="linux/riscv64")


def test_pull_by_digest(plain_registry: Registry, upload: httpx.Client, store: ImageStore) -> None:
    crafted = craft_image(upload, plain_registry.url, "digest/pull", "1", [({"f": b"x\n"}, "gzip")])
    ref = f"{plain_registry.host}/digest/pull@{crafted.manifest_digest}"
    image_id = pull(ref, store)
    assert image_id == crafted.config_digest
    assert store.resolve(ref) == image_id


def test_layer_ids_in_progress_are_short_digests() -> None:
    assert short("sha256:" + "ab" * 32) == "abababababab"


def test_importing_pull_does_not_import_httpx() -> None:
    code = "import sys, composer.backends.native.images.pull; sys.exit('httpx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- refusals before any layer is downloaded -----------------------------------------------------


def _variant(
    upload: httpx.Client, base: str, repo: str, change: Callable[[dict[str, Any]], None]
) -> str:
    """Push a copy of a crafted image's manifest after ``change``; its tag."""
    crafted = craft_image(upload, base, repo, "orig", [({"f": b"x\n"}, "gzip")])
    manifest = upload.get(
        f"{base}/v2/{repo}/manifests/{crafted.manifest_digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    change(manifest)
    push_manifest(upload, base, repo, "bad", manifest, manifest["mediaType"])
    return "bad"


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("nondistributable", Unsupported, "has media type"),
        ("artifact", Unsupported, "is not a container image"),
        ("diff-ids", BackendError, "lists 2 layers but its manifest has 1"),
    ],
)
def test_images_composer_cannot_use_are_refused_before_downloading(
    plain_registry: Registry,
    upload: httpx.Client,
    store: ImageStore,
    case: str,
    error: type[BackendError],
    message: str,
) -> None:
    base, repo = plain_registry.url, f"refuse/{case}"

    def change(manifest: dict[str, Any]) -> None:
        if case == "nondistributable":
            kind = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            manifest["layers"][0]["mediaType"] = kind
        elif case == "artifact":
            config = b'{"name":"chart","version":"1.0.0"}'
            manifest["config"] = {
                "mediaType": "application/vnd.cncf.helm.config.v1+json",
                "digest": push_blob(upload, base, repo, config),
                "size": len(config),
            }
        else:
            config = json.loads(
                upload.get(f"{base}/v2/{repo}/blobs/{manifest['config']['digest']}").content
            )
            config["rootfs"]["diff_ids"].append(config["rootfs"]["diff_ids"][0])
            raw = json.dumps(config).encode()
            manifest["config"]["digest"] = push_blob(upload, base, repo, raw)
            manifest["config"]["size"] = len(raw)

    tag = _variant(upload, base, repo, change)
    front = Front(base, FrontRules())
    try:
        with pytest.raises(error, match=message):
            pull(f"{front.host}/{repo}:{tag}", store)
        layer_gets = [p for p, _ in front.requests if "/blobs/" in p]
        assert len(layer_gets) <= 1  # at most the config, never a layer
        assert store.resolve(f"{front.host}/{repo}:{tag}") is None
    finally:
        front.close()
