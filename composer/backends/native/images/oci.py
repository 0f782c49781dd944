"""OCI image layout names shared by loading and saving: media types, annotations, blob paths."""

from __future__ import annotations

import platform

from composer.backends.native.images.layers import digest_hex
from composer.errors import ComposerError, Unsupported

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


class ArchiveError(ComposerError):
    """An archive that is not an image archive, or is damaged."""


def blob_name(digest: str) -> str:
    """``blobs/sha256/<hex>``: where a layout keeps the blob ``digest``."""
    algo = digest.partition(":")[0]
    if algo != "sha256":
        raise Unsupported(f"digest algorithm {algo!r} is not supported", hint="use sha256")
    try:
        return f"blobs/sha256/{digest_hex(digest)}"
    except ValueError:
        raise ArchiveError(f"bad digest {digest!r} in the archive") from None


def host_platform() -> tuple[str, str]:
    """(os, architecture) of this machine in OCI's words (``linux``, ``amd64``)."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return "linux", arch
