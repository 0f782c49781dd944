"""DockerBackend: the Backend protocol on a Docker Engine.

Each verb is a thin translation: a spec becomes one or a few Engine API
calls, run inside ``engine_errors`` so that only composer errors leave. The
docker SDK is imported when the backend is constructed, never at module
import, and the daemon is first contacted on the first verb (so building a
backend for ``--help`` or ``config`` costs nothing).

``post_start``/``pre_stop`` hooks have no place in the Engine's container
model; they are kept with the container in the ``composer.hooks`` label
(only when a service has hooks) so that a later process starting or
stopping the container runs them too.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

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
from composer.backends.docker import volumes as _volumes
from composer.backends.docker.client import Endpoint, connect, resolve_endpoint
from composer.backends.docker.errors import engine_errors
from composer.errors import BackendError, Conflict, NotFound, Unsupported

if TYPE_CHECKING:
    from docker import APIClient
    from docker.auth import AuthConfig

HOOKS_LABEL = "composer.hooks"


def _hooks_to_label(spec: ContainerSpec) -> str | None:
    if not spec.post_start and not spec.pre_stop:
        return None

    def one(h: HookSpec) -> dict[str, Any]:
        return {
            "command": list(h.command),
            "user": h.user,
            "privileged": h.privileged,
            "working_dir": h.working_dir,
            "environment": dict(h.environment),
        }

    return json.dumps(
        {
            "post_start": [one(h) for h in spec.post_start],
            "pre_stop": [one(h) for h in spec.pre_stop],
        },
        sort_keys=True,
    )


def _hooks_from_label(labels: Mapping[str, str]) -> dict[str, tuple[HookSpec, ...]]:
    raw = labels.get(HOOKS_LABEL)
    if not raw:
        return {"post_start": (), "pre_stop": ()}
    try:
        data = json.loads(raw)
        return {
            phase: tuple(
                HookSpec(
                    command=tuple(h["command"]),
                    user=h.get("user"),
                    privileged=bool(h.get("privileged")),
                    working_dir=h.get("working_dir"),
                    environment=dict(h.get("environment") or {}),
                )
                for h in data.get(phase, ())
            )
            for phase in ("post_start", "pre_stop")
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"unreadable {HOOKS_LABEL} label: {exc}") from exc


class DockerBackend:
    """The Backend protocol on a Docker Engine reached as the docker CLI would.

    ``environ`` is the only environment read (``DOCKER_HOST``,
    ``DOCKER_CONTEXT``, ``DOCKER_CONFIG``, ``HOME``, TLS variables); safe to
    share between threads.
    """

    def __init__(self, environ: Mapping[str, str], *, endpoint: Endpoint | None = None) -> None:
        import docker  # noqa: F401  (loaded here, with the backend, not at import)

        self._environ = dict(environ)
        self._endpoint = endpoint if endpoint is not None else resolve_endpoint(self._environ)
        self._lock = threading.Lock()
        self._api: APIClient | None = None
        self._auth: AuthConfig | None = None
        self._hooks: dict[str, dict[str, tuple[HookSpec, ...]]] = {}

    # --- plumbing -----------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def api(self) -> APIClient:
        """The connected SDK client (connects and negotiates on first use)."""
        with self._lock:
            if self._api is None:
                self._api = connect(self._endpoint, self._environ)
            return self._api

    @property
    def api_version(self) -> str:
        return str(self.api.api_version)

    def _credentials(self) -> AuthConfig:
        with self._lock:
            if self._auth is None:
                cfg_dir = self._endpoint.config_dir
                self._auth = _images.load_auth(
                    cfg_dir / "config.json" if cfg_dir else None, self._environ
                )
            return self._auth

    @contextmanager
    def _engine(self, what: str) -> Iterator[APIClient]:
        with engine_errors(what, self._endpoint):
            yield self.api

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

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
            image_list = api.images(filters={"reference": list(images)}) if images else []
        found = [_observe.container_from_summary(c) for c in container_list]
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
            images=_observe.images_from_summaries(image_list, images),
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
        hooks_label = _hooks_to_label(spec)
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

    def _put_file(self, container_id: str, name: str, copy: _mounts.FileCopy) -> None:
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
        hooks = _hooks_from_label(labels)
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
            api.stop(id, timeout=max(0, math.ceil(timeout)))

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
