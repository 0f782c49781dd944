"""Image references: parse, normalise to Docker Hub's canonical form, and shorten for display.

Tags are stored under the fully qualified name (``busybox`` is kept as
``docker.io/library/busybox:latest``) so that every way of writing the same
image finds the same entry; ``familiar`` gives back the short form Docker
shows. The grammar is the one of distribution/reference: an optional
registry host (it has a ``.`` or a ``:`` or is ``localhost``), lower-case
path components, an optional ``:tag`` and an optional ``@algo:hex`` digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import ConfigError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised image reference (``domain/path[:tag][@digest]``)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """The short form Docker prints (``busybox:latest``, ``me/app:1``)."""
        return familiar_name(str(self))

    @property
    def familiar_repository(self) -> str:
        return familiar_name(self.repository)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def _invalid(ref: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid reference format {ref!r}: {why}",
        hint="write NAME[:TAG][@DIGEST], e.g. busybox:1.36 or registry.example:5000/team/app:v1",
    )


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``ref``; ``ConfigError`` when it is not a reference.

    ``default_tag`` adds ``:latest`` when neither a tag nor a digest is
    given, as ``docker pull`` does. A bare 64-hex string is refused (Docker
    reserves it for image ids).
    """
    text = ref.strip()
    if not text:
        raise _invalid(ref, "empty")
    name, at, digest = text.partition("@")
    if at:
        if not _DIGEST.match(digest):
            raise _invalid(ref, "bad digest")
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise _invalid(ref, "a sha256 digest has 64 lower-case hex digits")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise _invalid(ref, f"bad tag {tag!r}")
    if not name:
        raise _invalid(ref, "no repository name")
    if _HEX64.match(name):
        raise _invalid(ref, "a 64-character hex string is an image id, not a name")
    domain, path = _split_domain(name)
    if not _DOMAIN.match(domain):
        raise _invalid(ref, f"bad registry host {domain!r}")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            if component.lower() != component:
                raise _invalid(ref, "repository name must be lowercase")
            raise _invalid(ref, f"bad path component {component!r}")
    if len(path) > MAX_NAME:
        raise _invalid(ref, "repository name too long")
    if tag is None and not at and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest if at else None)


def normalize(ref: str) -> str:
    """The canonical string (``busybox`` -> ``docker.io/library/busybox:latest``)."""
    return str(parse(ref))


def familiar_name(canonical: str) -> str:
    """Drop ``docker.io/`` and ``library/`` again, as Docker does when it prints names."""
    if canonical.startswith(DEFAULT_DOMAIN + "/"):
        rest = canonical[len(DEFAULT_DOMAIN) + 1 :]
        if (
            rest.startswith(OFFICIAL_PREFIX)
            and "/" not in rest[len(OFFICIAL_PREFIX) :].split(":")[0].split("@")[0]
        ):
            rest = rest[len(OFFICIAL_PREFIX) :]
        return rest
    return canonical


def is_image_id(text: str) -> bool:
    """``sha256:<64 hex>`` or a bare 64-hex id."""
    return bool(_SHA256.match(text) or _HEX64.match(text))


def looks_like_id_prefix(text: str) -> bool:
    """A short id as users type it (``3f57d9401f8d``, ``sha256:3f57``): hex only."""
    body = text[7:] if text.startswith("sha256:") else text
    return 1 <= len(body) <= 64 and all(c in "0123456789abcdef" for c in body)
