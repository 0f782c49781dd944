"""Manifests, descriptors, digests and platforms: the OCI and Docker image formats.

What a registry (or an archive) says about an image, parsed and checked
without any I/O: the four manifest media types a pull accepts, content
descriptors, digest algorithms, and the choice of one image manifest out of
an OCI index or a Docker manifest list for a platform. BuildKit puts
attestation manifests (platform ``unknown/unknown``) into indexes next to
the images; they are never chosen.
"""

from __future__ import annotations

import hashlib
import platform as platform_module
from dataclasses import dataclass
from typing import Any

from composer.errors import BackendError, ConfigError, NotFound, Unsupported

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)

_HASHES = {"sha256": 64, "sha384": 96, "sha512": 128}
_ATTESTATION_TYPE = "vnd.docker.reference.type"

_MACHINE_ARCH = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


# --- digests ----------------------------------------------------------------------------------


def new_hasher(digest: str) -> Any:
    """A hashlib object for ``digest``'s algorithm; ``Unsupported`` for others or bad digests."""
    algorithm, _, hexpart = digest.partition(":")
    length = _HASHES.get(algorithm)
    if length is None:
        raise Unsupported(
            f"digest algorithm {algorithm!r} of {digest} is not supported",
            hint="registries use sha256",
        )
    if len(hexpart) != length or any(c not in "0123456789abcdef" for c in hexpart):
        raise BackendError(f"invalid digest {digest!r}", hint="the registry sent a bad digest")
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# --- platforms --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/architecture[/variant]`` as in an index entry's ``platform``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(
                f"invalid platform {text!r}", hint="write OS/ARCH[/VARIANT], e.g. linux/arm64/v8"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def matches(self, entry: dict[str, Any]) -> bool:
        """Does an index entry's ``platform`` object satisfy this platform?

        A missing variant on either side matches (``linux/arm64`` takes
        ``v8``); ``arm64`` with no variant is ``v8``, as containerd treats it.
        """
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        want = self.variant
        have = entry.get("variant") or None
        if self.architecture == "arm64":
            want, have = want or "v8", have or "v8"
        return want is None or have is None or want == have


def host_platform() -> Platform:
    """This machine's platform (Linux on its architecture), ``linux/amd64`` when unknown."""
    arch, variant = _MACHINE_ARCH.get(platform_module.machine().lower(), ("amd64", None))
    return Platform("linux", arch, variant)


# --- manifests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or another manifest."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise bad_manifest(where, "a descriptor is not an object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
            raise bad_manifest(where, "a descriptor lacks its digest or size")
        new_hasher(digest)  # validates the digest's form
        platform = data.get("platform")
        annotations = data.get("annotations")
        urls = data.get("urls")
        return cls(
            media_type if isinstance(media_type, str) else "",
            digest,
            size,
            platform if isinstance(platform, dict) else None,
            annotations if isinstance(annotations, dict) else None,
            tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )

    @property
    def is_attestation(self) -> bool:
        """BuildKit's attestation manifests: platform ``unknown/unknown`` or the annotation."""
        if self.annotations and self.annotations.get(_ATTESTATION_TYPE) == "attestation-manifest":
            return True
        p = self.platform or {}
        return p.get("os") == "unknown" and p.get("architecture") == "unknown"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A verified manifest: its bytes, digest, media type and parsed JSON."""

    media_type: str
    digest: str
    raw: bytes
    data: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def entries(self) -> list[Descriptor]:
        """An index's ``manifests``."""
        items = self.data.get("manifests")
        if not isinstance(items, list):
            raise bad_manifest(self.digest, "an index without a manifests list")
        return [Descriptor.parse(item, self.digest) for item in items]

    @property
    def config(self) -> Descriptor:
        return Descriptor.parse(self.data.get("config"), self.digest)

    @property
    def layers(self) -> list[Descriptor]:
        items = self.data.get("layers")
        if not isinstance(items, list):
            raise bad_manifest(self.digest, "an image manifest without a layers list")
        return [Descriptor.parse(item, self.digest) for item in items]


def bad_manifest(where: str, why: str) -> BackendError:
    return BackendError(f"invalid manifest {where}: {why}", hint="the registry sent a bad manifest")


def select_platform(index: Manifest, want: Platform) -> Descriptor:
    """The index entry for ``want``; attestation entries are never chosen.

    Among several matches the first with an exact variant wins, else the
    first match, as containerd orders them. ``NotFound`` names the platforms
    the index has.
    """
    candidates = [e for e in index.entries() if not e.is_attestation and e.platform is not None]
    matching = [e for e in candidates if want.matches(e.platform or {})]
    for entry in matching:
        if want.variant is None or (entry.platform or {}).get("variant") == want.variant:
            return entry
    if matching:
        return matching[0]
    have = sorted({_platform_text(e.platform or {}) for e in candidates})
    raise NotFound(
        f"no matching manifest for {want} in the manifest list entries",
        hint=f"the image is published for {', '.join(have) or 'no platform'}",
    )


def _platform_text(p: dict[str, Any]) -> str:
    parts = [str(p.get("os", "?")), str(p.get("architecture", "?"))]
    if p.get("variant"):
        parts.append(str(p["variant"]))
    return "/".join(parts)


def verify_blob(what: str, size: int, digest: str, desc: Descriptor) -> None:
    """Raise unless ``size`` and ``digest`` are what the descriptor promised."""
    if size != desc.size:
        raise BackendError(
            f"{what} has {size} bytes, not the {desc.size} its manifest says",
            hint="the registry or something between it and composer altered it",
        )
    if digest != desc.digest:
        raise BackendError(
            f"{what} does not match its digest (got {digest})",
            hint="the registry or something between it and composer altered it",
        )
