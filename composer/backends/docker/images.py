"""Pulling and building images through the Engine API.

Pulls report per-layer progress from the engine's JSON message stream and
send the registry credentials found in the docker CLI config
(``auths`` entries with a base64 ``auth`` or user/password, identity tokens,
credential helpers). Builds use the Engine's build endpoint with a context
tar made here, so that ``.dockerignore`` is honoured and an inline
Dockerfile can be added to it; the build output is streamed to the progress
callback and a failing step is named in the error.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.base import BuildSpec, Progress, ProgressUpdate
from composer.errors import BackendError, NotFound, Unsupported

if TYPE_CHECKING:
    from docker import APIClient
    from docker.auth import AuthConfig

_STEP = re.compile(r"^(Step \d+/\d+) : (.*)$")
INLINE_DOCKERFILE = ".composer.inline.Dockerfile"


def split_ref(ref: str) -> tuple[str, str | None]:
    """``repo[:tag|@digest]`` → ``(repo, tag or digest)``; no tag means ``latest``."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    head, sep, tail = ref.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return ref, "latest"


def registry_of(ref: str) -> str:
    """The registry host of a reference (``docker.io`` for Docker Hub names)."""
    repo, _ = split_ref(ref)
    first, sep, _ = repo.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def load_auth(config_json: Path | None, environ: Mapping[str, str]) -> AuthConfig:
    """Registry credentials from a docker CLI ``config.json`` (empty when absent)."""
    from docker.auth import AuthConfig

    if config_json is None or not config_json.is_file():
        return AuthConfig({"auths": {}}, credstore_env=dict(environ))
    return AuthConfig.load_config(str(config_json), None, credstore_env=dict(environ))


def credentials_for(auth: AuthConfig, ref: str) -> dict[str, str]:
    """The credentials to send when pulling ``ref``; empty for anonymous pulls.

    The SDK's lookup handles the config's spellings (``https://host/v1/``,
    ``host``), base64 ``auth`` entries and credential helpers.
    """
    from docker.errors import DockerException

    from composer.backends.docker.errors import translate

    registry = registry_of(ref)
    try:
        found = auth.resolve_authconfig(None if registry == "docker.io" else registry)
    except DockerException as exc:
        raise translate(exc, f"credentials for {registry}") from exc
    if not found:
        return {}
    out: dict[str, str] = {}
    for source, target in (
        ("Username", "username"),
        ("Password", "password"),
        ("IdentityToken", "identitytoken"),
        ("ServerAddress", "serveraddress"),
        ("Email", "email"),
    ):
        value = found.get(source) or found.get(target)
        if value:
            out[target] = str(value)
    out.setdefault("serveraddress", registry)
    return out


def _stream_error(message: Mapping[str, Any]) -> str | None:
    if "error" in message or "errorDetail" in message:
        detail = message.get("errorDetail") or {}
        return str(detail.get("message") or message.get("error") or "unknown error").strip()
    return None


def pull(
    api: APIClient,
    ref: str,
    auth: AuthConfig,
    progress: Progress | None,
    platform: str | None = None,
) -> str:
    """Pull ``ref`` and return its image id; per-layer progress goes to ``progress``."""
    repo, tag = split_ref(ref)
    stream: Iterable[dict[str, Any]] = api.pull(
        repo,
        tag=tag,
        stream=True,
        decode=True,
        auth_config=credentials_for(auth, ref),
        platform=platform,
    )
    for message in stream:
        error = _stream_error(message)
        if error is not None:
            lowered = error.lower()
            if (
                "not found" in lowered
                or "does not exist" in lowered
                or "manifest unknown" in lowered
            ):
                raise NotFound(f"pull {ref}: {error}")
            if "unauthorized" in lowered or "denied" in lowered:
                raise BackendError(
                    f"pull {ref}: {error}", hint=f"log in with `docker login {registry_of(ref)}`"
                )
            raise BackendError(f"pull {ref}: {error}")
        if progress is not None:
            detail = message.get("progressDetail") or {}
            progress(
                ProgressUpdate(
                    id=str(message.get("id") or ref),
                    status=str(message.get("status") or ""),
                    current=detail.get("current"),
                    total=detail.get("total"),
                )
            )
    return str(api.inspect_image(ref)["Id"])  # type: ignore[no-untyped-call]


def push(api: APIClient, ref: str, auth: AuthConfig, progress: Progress | None) -> None:
    """Push ``ref`` to its registry; per-layer progress goes to ``progress``.

    The engine reports failures inside the message stream (an HTTP 200
    carrying ``errorDetail``), so the stream is read to its end.
    """
    repo, tag = split_ref(ref)
    stream: Iterable[dict[str, Any]] = api.push(
        repo,
        tag=tag,
        stream=True,
        decode=True,
        auth_config=credentials_for(auth, ref),
    )
    for message in stream:
        error = _stream_error(message)
        if error is not None:
            lowered = error.lower()
            if "does not exist" in lowered or "no such image" in lowered:
                raise NotFound(f"push {ref}: {error}")
            if "unauthorized" in lowered or "denied" in lowered:
                raise BackendError(
                    f"push {ref}: {error}", hint=f"log in with `docker login {registry_of(ref)}`"
                )
            raise BackendError(f"push {ref}: {error}")
        if progress is not None and message.get("status"):
            detail = message.get("progressDetail") or {}
            progress(
                ProgressUpdate(
                    id=str(message.get("id") or ref),
                    status=str(message.get("status") or ""),
                    current=detail.get("current"),
                    total=detail.get("total"),
                )
            )


# --- build ------------------------------------------------------------------


def _read_dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from exc
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        body = line[1:].strip() if negate else line
        body = body.lstrip("/") or "."
        patterns.append(("!" if negate else "") + body)
    return patterns


@dataclass(frozen=True, slots=True)
class BuildContext:
    """The tar sent to the engine and the Dockerfile path inside it."""

    data: bytes
    dockerfile: str


def _dockerfile_in_context(spec: BuildSpec, context: Path) -> tuple[str, bytes | None]:
    """``(path inside the context, extra content to add)`` for the Dockerfile."""
    if spec.dockerfile_inline is not None:
        return INLINE_DOCKERFILE, spec.dockerfile_inline.encode("utf-8")
    name = spec.dockerfile or "Dockerfile"
    path = Path(name) if os.path.isabs(name) else context / name
    try:
        rel = path.resolve().relative_to(context.resolve())
    except ValueError:
        # A Dockerfile outside the context travels inside the tar under a private name.
        try:
            return INLINE_DOCKERFILE, path.read_bytes()
        except OSError as exc:
            raise BackendError(f"cannot read Dockerfile {path}: {exc.strerror or exc}") from exc
    return rel.as_posix(), None


def context_tar(spec: BuildSpec) -> BuildContext:
    """Tar the build context, leaving out what ``.dockerignore`` excludes."""
    from docker.utils.build import exclude_paths

    context = Path(spec.context)
    if not context.is_dir():
        raise BackendError(f"build context {context} is not a directory")
    dockerfile, extra = _dockerfile_in_context(spec, context)
    patterns = _read_dockerignore(context)
    try:
        included = sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile))
    except OSError as exc:
        raise BackendError(f"cannot read build context {context}: {exc}") from exc
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in included:
            full = context / rel
            try:
                info = tar.gettarinfo(str(full), arcname=rel)
                # Ownership on the build host means nothing in the image.
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with open(full, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
            except OSError as exc:
                raise BackendError(f"cannot read build context file {full}: {exc}") from exc
        if extra is not None:
            info = tarfile.TarInfo(dockerfile)
            info.size = len(extra)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(extra))
    return BuildContext(buf.getvalue(), dockerfile)


def refuse_unsupported(spec: BuildSpec) -> None:
    """Raise ``Unsupported`` for build options the Engine's (non-BuildKit) build API lacks."""
    checks = {
        "additional_contexts": bool(spec.additional_contexts),
        "platforms (more than one)": len(spec.platforms) > 1,
        "cache_to": bool(spec.cache_to),
        "ssh": bool(spec.ssh),
        "secrets": bool(spec.secrets),
        "ulimits": bool(spec.ulimits),
        "privileged": spec.privileged,
        "entitlements": bool(spec.entitlements),
    }
    unsupported = [name for name, used in checks.items() if used]
    if unsupported:
        raise Unsupported(
            f"build of {spec.tag}: the Engine build API does not support " + ", ".join(unsupported),
            hint="build the image with `docker buildx build` and refer to it with `image:`",
        )


def build(
    api: APIClient,
    spec: BuildSpec,
    progress: Progress | None,
) -> str:
    """Build ``spec.tag`` (plus ``spec.tags``) with the Engine's build API; return the id."""
    refuse_unsupported(spec)
    remote = "://" in spec.context or spec.context.startswith("git@")
    common: dict[str, Any] = {
        "tag": spec.tag,
        "nocache": spec.no_cache,
        "pull": spec.pull,
        "rm": True,
        "forcerm": True,
        "decode": True,
        "buildargs": dict(spec.args) or None,
        "target": spec.target,
        "labels": dict(spec.labels) or None,
        "network_mode": spec.network,
        "extra_hosts": dict(spec.extra_hosts) or None,
        "shmsize": spec.shm_size,
        "cache_from": list(spec.cache_from) or None,
        "platform": spec.platforms[0] if spec.platforms else None,
        "isolation": spec.isolation,
    }
    if remote:
        stream = api.build(path=spec.context, dockerfile=spec.dockerfile, **common)
    else:
        ctx = context_tar(spec)
        stream = api.build(
            fileobj=io.BytesIO(ctx.data),
            custom_context=True,
            encoding="gzip",
            dockerfile=ctx.dockerfile,
            **common,
        )
    image_id = _follow_build(stream, spec.tag, progress)
    if image_id is None:
        image_id = str(api.inspect_image(spec.tag)["Id"])  # type: ignore[no-untyped-call]
    for extra in spec.tags:
        repo, tag = split_ref(extra)
        api.tag(image_id, repo, tag)
    return image_id


def _follow_build(
    stream: Iterable[dict[str, Any]], tag: str, progress: Progress | None
) -> str | None:
    step = "context"
    step_text = ""
    image_id: str | None = None
    for message in stream:
        error = _stream_error(message)
        if error is not None:
            where = f"{step} `{step_text}`" if step_text else step
            raise BackendError(f"build of {tag} failed at {where}: {error}")
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        text = message.get("stream")
        if text is None and message.get("status"):
            text = str(message["status"])
        if not text:
            continue
        for line in str(text).splitlines():
            match = _STEP.match(line.strip())
            if match:
                step, step_text = match.group(1), match.group(2)
            if progress is not None and line.strip():
                progress(ProgressUpdate(id=step, status=line.rstrip()))
    return image_id
