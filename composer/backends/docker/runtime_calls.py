"""The CLI's verbs around a running project, as Engine API calls.

Each function takes the connected ``APIClient`` and is called by
``DockerBackend`` inside ``engine_errors``; the generators (``logs``,
``events``, ``copy_from``) open their own ``engine_errors`` scope because
they run after the verb has returned. Output of ``exec`` and ``attach`` is
copied to the caller's binary streams as it arrives.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from composer.backends.base import (
    EngineEvent,
    EventType,
    ImageInfo,
    PathStat,
    PortBinding,
    ProjectSummary,
)
from composer.backends.docker import streams
from composer.backends.labels import LABEL_CONFIG_FILES, LABEL_PROJECT, LABEL_SERVICE
from composer.errors import BackendError, NotFound

if TYPE_CHECKING:
    from docker import APIClient

EVENT_TYPES: frozenset[str] = frozenset({"container", "network", "volume", "image"})
EXEC_EXIT_POLLS = 50
"""Checks (10 ms apart) for an exec's exit code after its output has ended."""


# --- logs -------------------------------------------------------------------


def logs_request(
    api: APIClient,
    container_id: str,
    *,
    follow: bool,
    since: float | None,
    until: float | None,
    tail: int | None,
    timestamps: bool,
) -> tuple[Any, bool]:
    """Open the log stream: ``(response, tty)``; the caller reads and closes it."""
    info = api.inspect_container(container_id)
    tty = bool((info.get("Config") or {}).get("Tty"))
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "follow": 1 if follow else 0,
        "timestamps": 1 if timestamps else 0,
        "tail": "all" if tail is None else str(max(tail, 0)),
    }
    if since is not None:
        params["since"] = streams.api_time(since)
    if until is not None:
        params["until"] = streams.api_time(until)
    raw: Any = api  # the SDK has no public streaming call that keeps stdout and stderr apart
    url = raw._url("/containers/{0}/logs", container_id)
    # A followed log may be silent for long: no read timeout then.
    response = raw._get(url, params=params, stream=True, timeout=None if follow else api.timeout)
    raw._raise_for_status(response)
    return response, tty


def response_reader(response: Any, tty: bool) -> Any:
    """``read(n)``: exact reads for frames, whatever has arrived for raw TTY output."""
    raw = response.raw
    if tty and hasattr(raw, "read1"):
        return raw.read1
    return raw.read


# --- exec and attach ----------------------------------------------------------


def close_hijacked(sock: Any) -> None:
    """Close a hijacked connection and the HTTP response that owns it."""
    response = getattr(sock, "_response", None)
    for closer in (getattr(sock, "close", None), getattr(response, "close", None)):
        if closer is not None:
            try:
                closer()
            except (OSError, ValueError):
                continue  # already closed by the other owner


def stream_hijacked(
    sock: Any,
    tty: bool,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
) -> None:
    """Forward ``stdin`` and copy output until the engine ends the connection."""
    from docker.utils.socket import frames_iter

    try:
        streams.raw_socket(sock).settimeout(None)
        if stdin is not None:
            streams.pump_stdin(stdin, sock)
        streams.copy_frames(frames_iter(sock, tty), stdout, stderr)  # type: ignore[no-untyped-call]
    finally:
        close_hijacked(sock)


def exec_run(
    api: APIClient,
    container_id: str,
    command: Sequence[str],
    *,
    user: str | None,
    workdir: str | None,
    env: Mapping[str, str] | None,
    tty: bool,
    stdin: BinaryIO | None,
    privileged: bool,
    detach: bool,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
) -> int:
    """Create and start an exec; stream it unless ``detach``; return its exit code."""
    created = api.exec_create(
        container_id,
        list(command),
        stdout=True,
        stderr=True,
        stdin=stdin is not None and not detach,
        tty=tty,
        privileged=privileged,
        user=user or "",
        environment=dict(env) if env else None,
        workdir=workdir or None,
    )
    exec_id = str(created["Id"])
    if detach:
        api.exec_start(exec_id, detach=True, tty=tty)
        return 0
    sock = api.exec_start(exec_id, tty=tty, socket=True)
    stream_hijacked(sock, tty, stdin, stdout, stderr)
    return exec_exit_code(api, exec_id)


def exec_exit_code(api: APIClient, exec_id: str) -> int:
    """The exit code, once the engine has recorded it (just after the output ends)."""
    for _ in range(EXEC_EXIT_POLLS):
        info = api.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        time.sleep(0.01)
    raise BackendError(f"exec {exec_id[:12]}: no exit code after its output ended")


def attach_socket(api: APIClient, container_id: str, with_stdin: bool) -> Any:
    params = {"stdin": 1 if with_stdin else 0, "stdout": 1, "stderr": 1, "stream": 1}
    return api.attach_socket(container_id, params=params)


def wait(api: APIClient, container_id: str, timeout: float | None) -> int:
    raw: Any = api  # the SDK types the timeout as whole seconds; requests takes any
    result: Mapping[str, Any] = raw.wait(container_id, timeout=timeout)
    error = (result.get("Error") or {}).get("Message")
    if error:
        raise BackendError(f"wait for container {container_id}: {error}")
    return int(result.get("StatusCode", 0))


# --- processes and files ----------------------------------------------------------


def top(
    api: APIClient, container_id: str, ps_args: str | None
) -> tuple[list[str], list[list[str]]]:
    result = api.top(container_id, ps_args=ps_args or None)
    titles = [str(t) for t in result.get("Titles") or ()]
    rows = [[str(cell) for cell in row] for row in result.get("Processes") or ()]
    return titles, rows


def stat_path(api: APIClient, container_id: str, path: str) -> PathStat:
    """The engine's stat of ``path`` (the archive endpoint's HEAD, no content sent)."""
    raw: Any = api  # the SDK's get_archive would send the content too
    response = raw.head(
        raw._url("/containers/{0}/archive", container_id),
        params={"path": path},
        timeout=api.timeout,
    )
    raw._raise_for_status(response)
    header = response.headers.get("X-Docker-Container-Path-Stat")
    if not header:
        raise NotFound(f"stat {path} in container {container_id}: no such path")
    data = json.loads(base64.b64decode(header))
    return PathStat(
        name=str(data.get("name", "")),
        size=int(data.get("size") or 0),
        mode=int(data.get("mode") or 0),
        mtime=str(data.get("mtime") or ""),
        link_target=str(data.get("linkTarget") or ""),
    )


# --- events and listings ----------------------------------------------------------


def event_from_message(message: Mapping[str, Any]) -> EngineEvent | None:
    """An engine event message as a record (``None`` for types composer ignores)."""
    kind = str(message.get("Type") or "")
    if kind not in EVENT_TYPES:
        return None
    actor = message.get("Actor") or {}
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    nanos = message.get("timeNano")
    when = int(nanos) / 1e9 if nanos else float(message.get("time") or 0)
    return EngineEvent(
        time=when,
        type=cast(EventType, kind),
        action=str(message.get("Action") or message.get("status") or ""),
        id=str(actor.get("ID") or message.get("id") or ""),
        name=attributes.get("name", ""),
        service=attributes.get(LABEL_SERVICE) if kind == "container" else None,
        attributes=attributes,
    )


def events_stream(api: APIClient, project: str, since: float | None, until: float | None) -> Any:
    """The engine's event stream for the project's label (blocking, decoded)."""
    raw: Any = api  # the SDK types since/until as whole seconds; the engine takes nanoseconds
    return raw.events(
        since=None if since is None else streams.api_time(since),
        until=None if until is None else streams.api_time(until),
        filters={"label": [f"{LABEL_PROJECT}={project}"]},
        decode=True,
    )


def projects_from_summaries(summaries: Sequence[Mapping[str, Any]]) -> list[ProjectSummary]:
    """Group container summaries by project: states counted, config files collected."""
    counts: dict[str, dict[str, int]] = {}
    files: dict[str, list[str]] = {}
    for summary in summaries:
        labels = summary.get("Labels") or {}
        name = labels.get(LABEL_PROJECT)
        if not name:
            continue
        state = str(summary.get("State") or "unknown").lower()
        per_state = counts.setdefault(name, {})
        per_state[state] = per_state.get(state, 0) + 1
        seen = files.setdefault(name, [])
        for path in str(labels.get(LABEL_CONFIG_FILES) or "").split(","):
            if path and path not in seen:
                seen.append(path)
    return [
        ProjectSummary(
            name=name, status_counts=dict(counts[name]), config_files=",".join(files[name])
        )
        for name in sorted(counts)
    ]


def image_info(ref: str, data: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        ref=ref,
        id=str(data.get("Id") or ""),
        size=int(data.get("Size") or 0),
        created=streams.parse_time(str(data.get("Created") or "")) or 0.0,
        repo_tags=tuple(str(t) for t in data.get("RepoTags") or ()),
    )


def port_bindings(data: Mapping[str, Any]) -> list[PortBinding]:
    """Published host bindings from ``NetworkSettings.Ports`` of an inspect."""
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    out: list[PortBinding] = []
    for key, bindings in ports.items():
        target, _, protocol = str(key).partition("/")
        for binding in bindings or ():
            host_port = str(binding.get("HostPort") or "")
            if not host_port.isdigit():
                continue
            out.append(
                PortBinding(
                    target=int(target),
                    protocol=protocol or "tcp",
                    host_ip=str(binding.get("HostIp") or ""),
                    host_port=int(host_port),
                )
            )
    out.sort(key=lambda p: (p.target, p.protocol, p.host_ip, p.host_port or 0))
    return out
