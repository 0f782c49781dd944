"""Content for the test registries: blobs, manifests and indexes pushed over the Distribution API.

``craft_image`` builds layers from a dict of files in any compression the
pull client accepts (uncompressed, gzip, zstd, Docker's gzip type), a
config with matching DiffIDs and an OCI or Docker v2 manifest; ``push_index``
puts several of them (plus a BuildKit-style attestation) under one OCI index
or Docker manifest list. ``docker_push`` pushes with the real docker CLI.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

# --- the Distribution API ------------------------------------------


def push_blob(client: httpx.Client, base: str, repo: str, data: bytes) -> str:
    """Upload ``data`` as a blob (monolithic POST then PUT); its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if client.head(f"{base}/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    start = client.post(f"{base}/v2/{repo}/blobs/uploads/")
    start.raise_for_status()
    location = urllib.parse.urljoin(base + "/", start.headers["location"])
    sep = "&" if "?" in location else "?"
    done = client.put(
        f"{location}{sep}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    done.raise_for_status()
    return digest


def push_manifest(
    client: httpx.Client, base: str, repo: str, ref: str, manifest: dict[str, Any], media_type: str
) -> tuple[str, int]:
    """PUT a manifest under ``ref`` (tag or digest); its digest and size."""
    body = json.dumps(manifest, separators=(",", ":")).encode()
    response = client.put(
        f"{base}/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type}
    )
    if response.status_code >= 400:
        raise RuntimeError(f"manifest PUT {response.status_code}: {response.text}")
    return "sha256:" + hashlib.sha256(body).hexdigest(), len(body)


def docker_push(image: str, registry_host: str, repo_tag: str, env: dict[str, str]) -> None:
    """``docker tag`` + ``docker push`` to the local registry, then drop the extra tag."""
    target = f"{registry_host}/{repo_tag}"
    subprocess.run(["docker", "tag", image, target], check=True, env=env, capture_output=True)
    try:
        subprocess.run(["docker", "push", target], check=True, env=env, capture_output=True)
    finally:
        subprocess.run(["docker", "rmi", target], env=env, capture_output=True)


def docker_available() -> bool:
    return shutil.which("docker") is not None and (
        subprocess.run(["docker", "version"], capture_output=True).returncode == 0
    )


# --- crafted images -------------------------------------------------------------------------------

LAYER_TYPES = {
    "tar": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "docker": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer holding ``files`` (parent directories included)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
                    tf.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 1_600_000_000
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def compress(tar: bytes, kind: str) -> bytes:
    if kind in ("gzip", "docker"):
        return gzip.compress(tar, mtime=0)
    if kind == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor().compress(tar))
    return tar


@dataclass
class Crafted:
    """An image pushed with the Distribution API: what a test needs to check a pull."""

    repo: str
    tag: str
    manifest_digest: str
    manifest_size: int
    config_digest: str
    layer_digests: list[str]
    diff_ids: list[str]
    platform: dict[str, str]


def craft_image(
    client: httpx.Client,
    base: str,
    repo: str,
    tag: str | None,
    layers: list[tuple[dict[str, bytes], str]],
    platform: dict[str, str] | None = None,
    docker_types: bool = False,
) -> Crafted:
    """Push layers (files + compression kind), a config and a manifest; tag it if ``tag``."""
    platform = platform or {"os": "linux", "architecture": "amd64"}
    layer_descs, diff_ids, digests = [], [], []
    for files, kind in layers:
        tar = layer_tar(files)
        blob = compress(tar, kind)
        digest = push_blob(client, base, repo, blob)
        digests.append(digest)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        layer_descs.append({"mediaType": LAYER_TYPES[kind], "digest": digest, "size": len(blob)})
    config = {
        **platform,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"platform": str(platform)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = json.dumps(config).encode()
    config_digest = push_blob(client, base, repo, config_bytes)
    media_type = (
        "application/vnd.docker.distribution.manifest.v2+json"
        if docker_types
        else "application/vnd.oci.image.manifest.v1+json"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json"
            if docker_types
            else "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": layer_descs,
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    ref = tag or "sha256:" + hashlib.sha256(body).hexdigest()
    digest, size = push_manifest(client, base, repo, ref, manifest, media_type)
    return Crafted(repo, tag or "", digest, size, config_digest, digests, diff_ids, platform)


def craft_attestation(client: httpx.Client, base: str, repo: str, subject: str) -> Crafted:
    """An attestation manifest as BuildKit pushes one (an in-toto layer), by digest only."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": subject})
    blob = statement.encode()
    digest = push_blob(client, base, repo, blob)
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    config_bytes = json.dumps(config).encode()
    config_digest = push_blob(client, base, repo, config_bytes)
    media_type = "application/vnd.oci.image.manifest.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": "application/vnd.in-toto+json", "digest": digest, "size": len(blob)}
        ],
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    ref = "sha256:" + hashlib.sha256(body).hexdigest()
    mdigest, size = push_manifest(client, base, repo, ref, manifest, media_type)
    unknown = {"os": "unknown", "architecture": "unknown"}
    return Crafted(repo, "", mdigest, size, config_digest, [digest], [], unknown)


def push_index(
    client: httpx.Client,
    base: str,
    repo: str,
    tag: str,
    images: list[Crafted],
    *,
    attestation_for: Crafted | None = None,
    docker_list: bool = False,
) -> str:
    """An OCI index (or Docker manifest list) over ``images``; an attestation entry goes first."""
    entries: list[dict[str, Any]] = []
    if attestation_for is not None:
        att = craft_attestation(client, base, repo, attestation_for.manifest_digest)
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": att.manifest_digest,
                "size": att.manifest_size,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": attestation_for.manifest_digest,
                },
            }
        )
    for image in images:
        entries.append(
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json"
                if docker_list
                else "application/vnd.oci.image.manifest.v1+json",
                "digest": image.manifest_digest,
                "size": image.manifest_size,
                "platform": image.platform,
            }
        )
    media_type = (
        "application/vnd.docker.distribution.manifest.list.v2+json"
        if docker_list
        else "application/vnd.oci.image.index.v1+json"
    )
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    digest, _ = push_manifest(client, base, repo, tag, index, media_type)
    return digest
