"""DockerBackend: the Backend protocol on a Docker Engine.

Each verb is a thin translation: a spec becomes one or a few Engine API
calls, run inside ``engine_errors`` so that only composer errors leave. The
docker SDK is imported when the backend is constructed, never at module
import, and the daemon is first contacted on the first verb (so building a
backend for ``--help`` or ``config`` costs nothing).

``post_start``/``pre_stop`` hooks are kept in a container label
(``hooks.py``). The verbs that serve the CLI around a running project
(logs, exec, attach, events, listings, copies) are in ``runtime.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from composer.backends.base import (
    BuildSpec,
    ContainerSpec,
    ContainerStatus,
    HookSpec,
    ImageRef,
    NetworkSpec,
    ObservedState,
    Progress,
    VolumeSpec,
)
from composer.backends.docker import containers as _containers
from composer.backends.docker import images as _images
from composer.backends.docker import mounts as _mounts
from composer.backends.docker import networks as _networks
from composer.backends.docker import observe as _observe
from composer.backends.docker import runtime_calls as _runtime
from composer.backends.docker import volumes as _volumes
from composer.backends.docker.client import Endpoint
from composer.backends.docker.hooks import HOOKS_LABEL, hooks_from_label, hooks_to_label
from composer.backends.docker.runtime import RuntimeVerbs
from composer.backends.file_mounts import FileCopy
from composer.backends.optional import HealthResult
from composer.errors import BackendError, Conflict, NotFound, Unsupported


class DockerBackend(RuntimeVerbs):
    """The Backend protocol on a Docker Engine reached as the docker CLI would.

    ``environ`` is the only environment read (``DOCKER_HOST``,
    ``DOCKER_CONTEXT``, ``DOCKER_CONFIG``, ``HOME``, TLS variables); safe to
    share between threads.
    """

    def __init__(self, environ: Mapping[str, str], *, endpoint: Endpoint | None = None) -> None:
        super().__init__(environ, endpoint=endpoint)
        self._hooks: dict[str, dict[str, tuple[HookSpec, ...]]] = {}

    def _engine_socket(self) -> str | None:
        host = self._endpoint.host
        return host[len("unix://") :] if host.startswith("unix://") else None

    # --- observe ------------------------------------------------------------

    def observe(self, project: str, images: Sequence[ImageRef] = ()) -> ObservedState:
        """One list call per resource type.

        Containers are filtered by the project label on the engine; networks
        and volumes are listed whole, because ``external: true`` references
        name resources of no project (those come back flagged ``external``).
        """
        flt = _observe.project_filter(project)
        with self._engine(f"observe project {project}") as api:
            container_list = api.containers(all=True, filters=flt)
            network_list = api.networks()
            volume_list = (api.volumes() or {}).get("Volumes") or []
            if len(images) <= _INSPECT_AT_MOST:
                observed_images = _observe.images_from_inspections(_inspect_images(api, images))
            else:
                summaries = api.images(filters={"reference": list(images)})
                observed_images = _observe.images_from_summaries(summaries, images)
        found = [_observe.container_from_summary(c) for c in container_list]
        # The listing carries the labels: a start or stop of these needs no inspect for hooks.
        hooks = {c["Id"]: hooks_from_label(c.get("Labels") or {}) for c in container_list}
        with self._lock:
            self._hooks.update(hooks)
        found.sort(key=lambda c: (c.service, c.number or 0, c.name))
        return ObservedState(
            project=project,
            containers=tuple(found),
            networks={
                n["Name"]: _observe.network_from_summary(n, project)
                for n in sorted(network_list, key=lambda n: str(n["Name"]))
            },
            volumes={
                v["Name"]: _observe.volume_from_summary(v, project)
                for v in sorted(volume_list, key=lambda v: str(v["Name"]))
            },
            images=observed_images,
        )

    # --- networks and volumes -------------------------------------------------

    def create_network(self, spec: NetworkSpec) -> None:
        if spec.external:
            raise Unsupported(f"network {spec.name} is external: composer does not create it")
        with self._engine(f"create network {spec.name}") as api:
            api.create_network(**_networks.create_arguments(spec, self.api_version))

    def remove_network(self, name: str) -> None:
        with self._engine(f"remove network {name}") as api:
            api.remove_network(name)

    def create_volume(self, spec: VolumeSpec) -> None:
        from docker.errors import NotFound as NotFoundError

        if spec.external:
            raise Unsupported(f"volume {spec.name} is external: composer does not create it")
        with self._engine(f"create volume {spec.name}") as api:
            # The engine returns an existing volume as if created; composer's
            # engines agree that creating an existing resource is a conflict.
            try:
                api.inspect_volume(spec.name)
            except NotFoundError:
                api.create_volume(**_volumes.create_arguments(spec))
            else:
                raise Conflict(f"create volume {spec.name}: volume already exists")

    def remove_volume(self, name: str) -> None:
        with self._engine(f"remove volume {name}") as api:
            api.remove_volume(name)

    # --- images -------------------------------------------------------------

    def pull_image(self, ref: ImageRef, progress: Progress | None = None) -> str:
        with self._engine(f"pull {ref}") as api:
            return _images.pull(api, ref, self._credentials(), progress)

    def build_image(self, spec: BuildSpec, progress: Progress | None = None) -> str:
        _images.refuse_unsupported(spec)
        with self._engine(f"build {spec.tag}") as api:
            return _images.build(api, spec, progress)

    def remove_image(self, ref: ImageRef) -> None:
        with self._engine(f"remove image {ref}") as api:
            api.remove_image(ref)

    def image_id(self, ref: ImageRef) -> str | None:
        try:
            with self._engine(f"inspect image {ref}") as api:
                return str(api.inspect_image(ref)["Id"])  # type: ignore[no-untyped-call]
        except NotFound:
            return None

    # --- containers ---------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        request = _containers.create_request(spec, self.api_version, self._engine_socket())
        hooks_label = hooks_to_label(spec)
        if hooks_label is not None:
            request.body["Labels"][HOOKS_LABEL] = hooks_label
        with self._engine(f"create container {spec.name}") as api:
            created = api.create_container_from_config(  # type: ignore[no-untyped-call]
                request.body, name=spec.name, platform=spec.platform
            )
        container_id = str(created["Id"])
        try:
            for att in request.later_networks:
                self._connect(container_id, spec, att)
            for copy in request.files:
                self._put_file(container_id, spec.name, copy)
        except BackendError:
            # A half-made container would be mistaken for a good one by the next observe.
            with suppress(BackendError):
                self.remove_container(container_id, force=True, volumes=True)
            raise
        with self._lock:
            self._hooks[container_id] = {"post_start": spec.post_start, "pre_stop": spec.pre_stop}
        return container_id

    def _connect(self, container_id: str, spec: ContainerSpec, att: Any) -> None:
        endpoint = _containers.endpoint_config(spec, att, self.api_version, first=False)
        ipam = endpoint.get("IPAMConfig", {})
        with self._engine(f"connect {spec.name} to network {att.network}") as api:
            api.connect_container_to_network(
                container_id,
                att.network,
                ipv4_address=ipam.get("IPv4Address"),
                ipv6_address=ipam.get("IPv6Address"),
                aliases=endpoint.get("Aliases"),
                links=endpoint.get("Links"),
                link_local_ips=ipam.get("LinkLocalIPs"),
                driver_opt=endpoint.get("DriverOpts"),
                mac_address=endpoint.get("MacAddress"),
            )

    def _put_file(self, container_id: str, name: str, copy: FileCopy) -> None:
        """Copy a config/secret file in, creating missing parent directories."""
        base = PurePosixPath(copy.target).parent
        while True:
            try:
                with self._engine(f"copy {copy.target} into {name}") as api:
                    api.put_archive(container_id, str(base), _mounts.file_archive(copy, base))
                return
            except NotFound:
                if base == base.parent:
                    raise
                base = base.parent

    def _hooks_of(self, container_id: str) -> dict[str, tuple[HookSpec, ...]]:
        with self._lock:
            known = self._hooks.get(container_id)
        if known is not None:
            return known
        with self._engine(f"inspect container {container_id}") as api:
            labels = (api.inspect_container(container_id).get("Config") or {}).get("Labels") or {}
        hooks = hooks_from_label(labels)
        with self._lock:
            self._hooks[container_id] = hooks
        return hooks

    def _run_hook(self, container_id: str, phase: str, hook: HookSpec) -> tuple[int, str]:
        with self._engine(f"{phase} hook in {container_id}") as api:
            exec_id = api.exec_create(
                container_id,
                list(hook.command),
                user=hook.user or "",
                privileged=hook.privileged,
                environment=dict(hook.environment) or None,
                workdir=hook.working_dir,
            )["Id"]
            output = api.exec_start(exec_id)
            code = api.exec_inspect(exec_id).get("ExitCode")
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return int(code or 0), text

    def start_container(self, id: str) -> None:
        with self._engine(f"start container {id}") as api:
            api.start(id)
        for hook in self._hooks_of(id)["post_start"]:
            code, output = self._run_hook(id, "post_start", hook)
            if code != 0:
                tail = output.strip().splitlines()[-1:] or [""]
                raise BackendError(
                    f"post_start hook {' '.join(hook.command)!r} of container {id} "
                    f"exited with {code}" + (f": {tail[0]}" if tail[0] else "")
                )

    def stop_container(self, id: str, timeout: float) -> None:
        for hook in self._hooks_of(id)["pre_stop"]:
            try:
                self._run_hook(id, "pre_stop", hook)
            except Conflict:
                break  # not running: nothing to prepare, the stop below is a no-op
        with self._engine(f"stop container {id}") as api:
            if timeout > 0 and self._stop_signal_dropped(api, id):
                timeout = 0  # PID 1 has no handler: waiting cannot help (signal_reach.py)
            api.stop(id, timeout=max(0, math.ceil(timeout)))

    @staticmethod
    def _stop_signal_dropped(api: Any, id: str) -> bool:
        """Whether the engine's stop signal would be discarded by the container's PID 1.

        Only answerable when the engine runs on this host (the container's
        PID is ours to read, and its cgroup names the container).
        """
        from composer.backends.signal_reach import parse_signal, signal_reaches

        info = api.inspect_container(id)
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            return False
        try:
            with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as f:
                if info["Id"] not in f.read():
                    return False
        except OSError:
            return False
        try:
            signo = parse_signal((info.get("Config") or {}).get("StopSignal") or "SIGTERM")
        except BackendError:
            return False
        return signal_reaches(pid, signo) is False

    def kill_container(self, id: str, signal: str = "SIGKILL") -> None:
        with self._engine(f"kill container {id}") as api:
            api.kill(id, signal=signal)

    def remove_container(self, id: str, *, force: bool = False, volumes: bool = False) -> None:
        with self._engine(f"remove container {id}") as api:
            api.remove_container(id, v=volumes, force=force)
        with self._lock:
            self._hooks.pop(id, None)

    def rename_container(self, id: str, name: str) -> None:
        with self._engine(f"rename container {id} to {name}") as api:
            api.rename(id, name)

    def pause_container(self, id: str) -> None:
        with self._engine(f"pause container {id}") as api:
            api.pause(id)

    def unpause_container(self, id: str) -> None:
        with self._engine(f"unpause container {id}") as api:
            api.unpause(id)

    def inspect_container(self, id: str) -> ContainerStatus:
        with self._engine(f"inspect container {id}") as api:
            return _observe.status_from_inspect(api.inspect_container(id))

    def health_log(self, container_id: str) -> list[HealthResult]:
        """The optional ``HealthLog`` verb: the engine's last healthcheck results."""
        from composer.backends.docker.health import health_from_inspect

        with self._engine(f"inspect container {container_id}") as api:
            return health_from_inspect(api.inspect_container(container_id))

    def attach_run(
        self,
        container_id: str,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> int:
        """Attach first, then start (running hooks), stream until the end, wait.

        The framing follows the container's own TTY setting; ``tty`` is
        what the caller expects and is not needed here.
        """
        with self._engine(f"attach to container {container_id}") as api:
            info = api.inspect_container(container_id)
            has_tty = bool((info.get("Config") or {}).get("Tty"))
            running = bool((info.get("State") or {}).get("Running"))
            sock = _runtime.attach_socket(api, container_id, stdin is not None)
        try:
            if not running:
                self.start_container(container_id)
        except BaseException:
            _runtime.close_hijacked(sock)
            raise
        with self._engine(f"attach to container {container_id}"):
            _runtime.stream_hijacked(sock, has_tty, stdin, stdout, stderr)
        return self.wait_container(container_id)


_INSPECT_AT_MOST = 4
"""Up to this many image references are inspected one by one rather than listed:
an engine with hundreds of images takes longer to filter its list by
reference (0.1-0.3 s) than to answer a few inspections (about 25 ms each)."""


def _inspect_images(api: Any, refs: Sequence[ImageRef]) -> list[tuple[str, Mapping[str, Any]]]:
    from docker.errors import NotFound as NotFoundError

    found = []
    for ref in refs:
        try:
            found.append((ref, api.inspect_image(ref)))
        except NotFoundError:
            continue
    return found
