"""The Docker backend's verbs around a running project (the CLI's verbs).

Logs, exec, wait, top, file copies, events and listings: each verb opens
its Engine calls in the session's error scope and leaves the translation of
API payloads to ``runtime_calls``. Iterators (logs, events, copies) keep an
error scope of their own, since they are read after the verb returned, and
close their connection when the caller stops reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from composer.backends.base import (
    EngineEvent,
    ImageInfo,
    ImageRef,
    LogLine,
    PathStat,
    PortBinding,
    Progress,
    ProjectSummary,
)
from composer.backends.docker import images as _images
from composer.backends.docker import runtime_calls as _runtime
from composer.backends.docker import streams as _streams
from composer.backends.docker.errors import engine_errors
from composer.backends.docker.session import EngineSession
from composer.backends.labels import LABEL_PROJECT
from composer.errors import NotFound


class RuntimeVerbs(EngineSession):
    """Logs, exec, wait, top, copies, events and listings on the session's engine."""

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        since: float | None = None,
        until: float | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        what = f"logs of container {container_id}"
        with self._engine(what) as api:
            response, tty = _runtime.logs_request(
                api,
                container_id,
                follow=follow,
                since=since,
                until=until,
                tail=tail,
                timestamps=timestamps,
            )
        return self._log_lines(what, response, tty, timestamps)

    def _log_lines(
        self, what: str, response: Any, tty: bool, timestamps: bool
    ) -> Iterator[LogLine]:
        try:
            with engine_errors(what, self._endpoint):
                frames = _streams.response_frames(_runtime.response_reader(response, tty), tty)
                yield from _streams.log_lines(frames, timestamps)
        finally:
            response.close()

    def exec_run(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        stdin: BinaryIO | None = None,
        privileged: bool = False,
        detach: bool = False,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> int:
        with self._engine(f"exec {' '.join(command)} in container {container_id}") as api:
            return _runtime.exec_run(
                api,
                container_id,
                command,
                user=user,
                workdir=workdir,
                env=env,
                tty=tty,
                stdin=stdin,
                privileged=privileged,
                detach=detach,
                stdout=stdout,
                stderr=stderr,
            )

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        with self._engine(f"wait for container {container_id}") as api:
            return _runtime.wait(api, container_id, timeout)

    def top(
        self, container_id: str, ps_args: str | None = None
    ) -> tuple[list[str], list[list[str]]]:
        with self._engine(f"top of container {container_id}") as api:
            return _runtime.top(api, container_id, ps_args)

    def stat_path(self, container_id: str, path: str) -> PathStat:
        with self._engine(f"stat {path} in container {container_id}") as api:
            return _runtime.stat_path(api, container_id, path)

    def copy_to(self, container_id: str, dest_path: str, tar_stream: bytes) -> None:
        with self._engine(f"copy into {dest_path} of container {container_id}") as api:
            api.put_archive(container_id, dest_path, tar_stream)

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        what = f"copy {path} from container {container_id}"
        with self._engine(what) as api:
            chunks, _stat = api.get_archive(container_id, path, chunk_size=_streams.CHUNK)
        return self._chunks(what, chunks)

    def _chunks(self, what: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        with engine_errors(what, self._endpoint):
            yield from chunks

    def events(
        self, project: str, *, since: float | None = None, until: float | None = None
    ) -> Iterator[EngineEvent]:
        what = f"events of project {project}"
        with self._engine(what) as api:
            stream = _runtime.events_stream(api, project, since, until)
        return self._events(what, stream)

    def _events(self, what: str, stream: Any) -> Iterator[EngineEvent]:
        try:
            with engine_errors(what, self._endpoint):
                for message in stream:
                    event = _runtime.event_from_message(message)
                    if event is not None:
                        yield event
        finally:
            stream.close()

    def list_projects(self) -> list[ProjectSummary]:
        with self._engine("list projects") as api:
            found = api.containers(all=True, filters={"label": [LABEL_PROJECT]})
        return _runtime.projects_from_summaries(found)

    def list_images(self, refs: Sequence[str]) -> list[ImageInfo]:
        out: list[ImageInfo] = []
        for ref in refs:
            try:
                with self._engine(f"inspect image {ref}") as api:
                    data = api.inspect_image(ref)  # type: ignore[no-untyped-call]
            except NotFound:
                continue
            out.append(_runtime.image_info(ref, data))
        return out

    def push_image(self, ref: ImageRef, progress: Progress | None = None) -> None:
        with self._engine(f"push {ref}") as api:
            _images.push(api, ref, self._credentials(), progress)

    def container_ports(self, container_id: str) -> list[PortBinding]:
        with self._engine(f"inspect container {container_id}") as api:
            return _runtime.port_bindings(api.inspect_container(container_id))
