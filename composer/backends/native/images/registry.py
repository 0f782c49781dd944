"""The OCI Distribution pull client: manifests and blobs from a registry, over httpx.

One ``RegistryClient`` talks to one registry. The sequence is Docker's:
``GET /v2/`` answers 401 with a ``WWW-Authenticate`` challenge; a Bearer
challenge sends the client to a token server (anonymously, or with the basic
credentials of ``auth.py``) for a token scoped to ``repository:NAME:pull``;
a Basic challenge takes the credentials directly. Every request that gets a
401 is answered once more after a fresh authorisation, which also renews an
expired token in the middle of a long pull.

Manifests are asked for with an ``Accept`` header listing the OCI index, OCI
manifest, Docker manifest list and Docker v2 manifest types; an index is
resolved to one image manifest for a platform (attestation entries, platform
``unknown/unknown``, are never chosen). Every byte is verified: a manifest
against the digest it was asked for or announced with, a blob by size and
digest while it streams to disk. A blob download that breaks off keeps its
partial file and continues from its end with an HTTP ``Range`` request, in
the same call or in a later pull.

Redirects (registries send blob downloads to storage servers) are followed
by hand, so that the registry's ``Authorization`` header is sent to the
registry's own origin only, never to the host a redirect names.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from composer.backends.native.images.auth import CredentialLookup, Credentials
from composer.backends.native.images.challenge import Challenge, parse_www_authenticate
from composer.backends.native.images.manifests import (
    ACCEPT,
    CONFIG_TYPES,
    DOCKER_SCHEMA1,
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    bad_manifest,
    digest_of,
    host_platform,
    new_hasher,
    select_platform,
    verify_blob,
)
from composer.backends.native.images.registry_errors import (
    registry_message,
    status_error,
    transport_error,
)
from composer.errors import BackendError, Unsupported

HUB_DOMAIN = "docker.io"
HUB_REGISTRY = "registry-1.docker.io"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's own limit for a manifest PUT
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 10
DOWNLOAD_ATTEMPTS = 4  # one download plus three resumes
CHUNK = 256 * 1024
DEFAULT_TIMEOUT = 60.0

# --- names ------------------------------------------------------------------------------------


def registry_host(domain: str) -> str:
    """The host to connect to for a reference's domain: Docker Hub is ``registry-1.docker.io``."""
    return HUB_REGISTRY if domain in (HUB_DOMAIN, "index.docker.io") else domain


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 / ::1 (with or without a port)."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(domain: str) -> str:
    """``https://HOST``, or ``http://HOST`` for a loopback registry (insecure, as Docker allows)."""
    host = registry_host(domain)
    return f"{'http' if is_loopback(host) else 'https'}://{host}"


# --- the client -------------------------------------------------------------------------------

ProgressFn = Callable[[int], None]


class RegistryClient:
    """A pull client for one registry (``domain`` as in a reference: ``docker.io``, ``host:port``).

    Thread-safe: layers are downloaded in parallel through one client, which
    shares its connection pool and its tokens (guarded by a lock).
    """

    def __init__(
        self,
        domain: str,
        *,
        credentials: CredentialLookup | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        base: str | None = None,
    ) -> None:
        self.domain = domain
        self.base = (base or base_url(domain)).rstrip("/")
        self.origin = _origin(self.base)
        self.lookup = credentials or CredentialLookup(domain)
        self._asked_helper = False
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            follow_redirects=False,
            headers={"User-Agent": "composer"},
            trust_env=not is_loopback(registry_host(domain)),  # no HTTP proxy for this machine
        )
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # scope -> Authorization header value
        self._challenge: Challenge | None = None
        self._pinged = False

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- requests ------------------------------------------------------------------------------

    def ping(self) -> Challenge | None:
        """``GET /v2/``: check the API is there and learn the authentication challenge."""
        with self._lock:
            if self._pinged:
                return self._challenge
        with self._wrap():
            response = self._client.get(f"{self.base}/v2/")
            response.read()
        challenge: Challenge | None = None
        if response.status_code == 401:
            challenge = self._pick_challenge(response)
        elif response.status_code != 200:
            raise status_error(
                response.status_code, response.content, registry=self.domain, what="/v2/"
            )
        with self._lock:
            self._challenge, self._pinged = challenge, True
        return challenge

    @contextmanager
    def _wrap(self) -> Iterator[None]:
        try:
            yield
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.domain) from exc

    @contextmanager
    def stream(
        self, path: str, repository: str, headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed GET of ``path`` with authentication and hand-followed redirects.

        Transport errors propagate as httpx errors (so downloads can resume);
        the caller reads, checks the status and maps errors (``error_for``).
        """
        challenge = self.ping()
        scope = f"repository:{repository}:pull"
        url = f"{self.base}{path}"
        retried_auth = False
        for _ in range(MAX_REDIRECTS + 1):
            request_headers = dict(headers or {})
            same_origin = _origin(url) == self.origin
            if same_origin and challenge is not None:
                auth = self._authorization(challenge, scope, refresh=False)
                if auth:
                    request_headers["Authorization"] = auth
            request = self._client.build_request("GET", url, headers=request_headers)
            response = self._client.send(request, stream=True)
            if response.status_code == 401 and same_origin and not retried_auth:
                response.read()
                new = self._pick_challenge(response)
                if new is not None:
                    response.close()
                    challenge = new
                    with self._lock:
                        self._challenge = new
                    self._authorization(challenge, scope, refresh=True)
                    retried_auth = True
                    continue
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                response.close()
                if not location:
                    raise BackendError(
                        f"registry {self.domain} sent a redirect without a location",
                        hint="the registry is misconfigured",
                    )
                url = urljoin(url, location)
                continue
            try:
                yield response
            finally:
                response.close()
            return
        raise BackendError(
            f"registry {self.domain} redirected more than {MAX_REDIRECTS} times for {path}",
            hint="the registry is misconfigured",
        )

    def _pick_challenge(self, response: httpx.Response) -> Challenge | None:
        challenges: list[Challenge] = []
        for value in response.headers.get_list("www-authenticate"):
            challenges.extend(parse_www_authenticate(value))
        for scheme in ("bearer", "basic"):
            for challenge in challenges:
                if challenge.scheme == scheme:
                    return challenge
        if challenges:
            raise Unsupported(
                f"registry {self.domain} asks for {challenges[0].scheme} authentication",
                hint="composer speaks the Bearer token and Basic schemes",
            )
        return None

    # -- authentication ------------------------------------------------------------------------

    def _authorization(self, challenge: Challenge, scope: str, *, refresh: bool) -> str | None:
        """The Authorization header for ``scope`` under ``challenge`` (token cached per scope)."""
        creds = self._credentials()
        if challenge.scheme == "basic":
            if creds is None:
                raise self._auth_missing()
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        with self._lock:
            if not refresh and scope in self._tokens:
                return self._tokens[scope]
        token = self._fetch_token(challenge, scope)
        value = f"Bearer {token}"
        with self._lock:
            self._tokens[scope] = value
        return value

    def _fetch_token(self, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm")
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise BackendError(
                f"registry {self.domain} sent a Bearer challenge without a usable realm",
                hint="the registry's token authentication is misconfigured",
            )
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params.append(("scope", scope))
        creds = self._credentials()
        auth = (creds.username, creds.password) if creds is not None else None
        if creds is not None:
            params.append(("account", creds.username))
        with self._wrap():
            response = self._client.get(realm, params=params, auth=auth)
        if response.status_code in (401, 403):
            if creds is None:
                raise self._auth_missing()
            raise BackendError(
                f"the token server of {self.domain} refused the credentials of "
                f"{creds.username!r}: {registry_message(response.content) or 'unauthorized'}",
                hint=f"check the login for {self.domain} in "
                f"{self.lookup.config_path or 'the Docker configuration'} (`docker login`)",
            )
        if response.status_code != 200:
            raise status_error(
                response.status_code, response.content, registry=self.domain, what="a token"
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BackendError(
                f"the token server of {self.domain} answered without a token",
                hint="the registry's token authentication is misconfigured",
            )
        return token

    def _credentials(self) -> Credentials | None:
        """The configured credentials, asking a credential helper the first time."""
        with self._lock:
            if not self._asked_helper:
                self.lookup = self.lookup.resolved()
                self._asked_helper = True
            return self.lookup.credentials

    def _auth_missing(self) -> BackendError:
        explained = self.lookup.missing_error()
        if explained is not None:
            return explained
        return BackendError(
            f"registry {self.domain} requires authentication and no credentials are configured",
            hint=f"log in with `docker login {self.domain}`: composer reads the credentials "
            "from ~/.docker/config.json (or $DOCKER_CONFIG/config.json)",
        )

    # -- manifests -----------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest ``repository:reference`` (a tag or a digest), verified."""
        what = f"manifest for {repository}{_sep(reference)}{reference}"
        want_digest = reference if ":" in reference else None
        hasher = new_hasher(want_digest) if want_digest else hashlib.sha256()
        with (
            self._wrap(),
            self.stream(
                f"/v2/{repository}/manifests/{reference}", repository, {"Accept": ACCEPT}
            ) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise self.error_for(response, what)
            body = _read_limited(response, MAX_MANIFEST_BYTES, what)
            announced = response.headers.get("docker-content-digest")
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
        hasher.update(body)
        digest = f"{hasher.name}:{hasher.hexdigest()}"
        if want_digest and digest != want_digest:
            raise BackendError(
                f"{what}: content has digest {digest}, not the one asked for",
                hint="the registry or something between it and composer altered the manifest",
            )
        if announced and announced.startswith("sha256:") and digest_of(body) != announced:
            raise BackendError(
                f"{what}: content does not match the digest {announced} the registry announced",
                hint="the registry or something between it and composer altered the manifest",
            )
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise bad_manifest(what, "not JSON") from exc
        if not isinstance(data, dict):
            raise bad_manifest(what, "not a JSON object")
        media_type = data.get("mediaType") if isinstance(data.get("mediaType"), str) else ""
        media_type = media_type or content_type
        if not media_type and data.get("schemaVersion") == 2:
            media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
        if media_type in DOCKER_SCHEMA1 or data.get("schemaVersion") == 1:
            raise Unsupported(
                f"{what} is a Docker schema 1 manifest, which is deprecated",
                hint="push the image again with a current Docker or buildx",
            )
        if media_type not in INDEX_TYPES and media_type not in IMAGE_TYPES:
            raise Unsupported(
                f"{what} has media type {media_type or 'unknown'}, which is not an image",
                hint="composer pulls OCI and Docker v2 images",
            )
        return Manifest(media_type, digest, body, data)

    def image_manifest(
        self, repository: str, reference: str, platform: Platform | None = None
    ) -> tuple[Manifest, Manifest | None]:
        """The image manifest for ``platform`` (host's by default) and the index it came from."""
        top = self.get_manifest(repository, reference)
        if not top.is_index:
            return top, None
        entry = select_platform(top, platform or host_platform())
        image = self.get_manifest(repository, entry.digest)
        if len(image.raw) != entry.size:
            raise BackendError(
                f"manifest {entry.digest} has {len(image.raw)} bytes, not the {entry.size} "
                f"its index {top.digest} says",
                hint="the index is malformed; push the image again",
            )
        if image.is_index:
            raise Unsupported(
                f"the entry for {platform or host_platform()} in {top.digest} is itself an index",
                hint="nested indexes are not supported",
            )
        return image, top

    def image_config(self, repository: str, manifest: Manifest) -> bytes:
        """The image config of ``manifest``, verified; artifacts that are not images refused."""
        config = manifest.config
        if config.media_type and config.media_type not in CONFIG_TYPES:
            raise Unsupported(
                f"{repository}@{manifest.digest} is not a container image "
                f"(its config has media type {config.media_type})",
                hint="only OCI and Docker container images can be pulled",
            )
        return self.get_blob(repository, config)

    def error_for(self, response: httpx.Response, what: str) -> BackendError:
        """The composer error for a response that is not the success ``what`` needed."""
        if response.status_code in (401, 403) and self.lookup.credentials is None:
            explained = self.lookup.missing_error()
            if explained is not None:
                return explained
        return status_error(response.status_code, response.content, registry=self.domain, what=what)

    # -- blobs ---------------------------------------------------------------------------------

    def get_blob(
        self, repository: str, desc: Descriptor, *, limit: int = MAX_CONFIG_BYTES
    ) -> bytes:
        """A small blob (an image config) in memory, size and digest verified."""
        what = f"blob {desc.digest}"
        if desc.size > limit:
            raise BackendError(f"{what} is {desc.size} bytes, over the {limit} bytes allowed")
        path = f"/v2/{repository}/blobs/{desc.digest}"
        with self._wrap(), self.stream(path, repository, {"Accept-Encoding": "identity"}) as resp:
            if resp.status_code != 200:
                resp.read()
                raise self.error_for(resp, what)
            body = _read_limited(resp, desc.size, what)
        hasher = new_hasher(desc.digest)
        hasher.update(body)
        verify_blob(what, len(body), f"{hasher.name}:{hasher.hexdigest()}", desc)
        return body

    def download_blob(
        self,
        repository: str,
        desc: Descriptor,
        partial: Path,
        progress: ProgressFn | None = None,
        *,
        attempts: int = DOWNLOAD_ATTEMPTS,
    ) -> Path:
        """Stream a blob into ``partial`` (resuming), verified; see ``blob_download``."""
        from composer.backends.native.images.blob_download import download

        return download(self, repository, desc, partial, progress, attempts=attempts)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, f"{(parts.hostname or '').lower()}:{port}"


def _sep(reference: str) -> str:
    return "@" if ":" in reference else ":"


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes(CHUNK):
        data += chunk
        if len(data) > limit:
            raise BackendError(
                f"{what} is larger than {limit} bytes",
                hint="the registry sent more than the manifest announced",
            )
    return bytes(data)
