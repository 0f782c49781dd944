"""The backend interface: the verbs every engine implements, and its records.

The planner talks to every engine (Docker, native, the in-memory fake)
through this one module. Backends receive *specs* (``specs.py``: plain
frozen records that already hold resolved names, labels and values) and
never the ``Project``, so that each backend is a thin translation and
cannot make decisions of its own. ``observe`` returns one snapshot
(``observed.py``: ``ObservedState``) that is the planner's only read of the
engine. The verbs that serve the CLI around a running project (logs, exec,
events, listings, copies) use the records of ``runtime.py``.

Every record is re-exported here, so ``composer.backends.base`` stays the
one import path. Backends raise only ``composer.errors.BackendError``
subclasses (``NotFound``, ``Conflict``, ``Unavailable``, ``Unsupported``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO, Protocol

from composer.backends.observed import (
    ContainerState,
    ContainerStatus,
    Health,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
    PortBinding,
    Progress,
    ProgressUpdate,
)
from composer.backends.runtime import (
    EngineEvent,
    EventType,
    ImageInfo,
    LogLine,
    LogStream,
    PathStat,
    ProjectSummary,
)
from composer.backends.specs import (
    DEFAULT_STOP_TIMEOUT,
    BlkioSpec,
    BuildSpec,
    ContainerSpec,
    DeviceRequestSpec,
    DeviceSpec,
    HealthcheckSpec,
    HookSpec,
    ImageRef,
    IpamPoolSpec,
    IpamSpec,
    LoggingSpec,
    MountSpec,
    MountType,
    NetworkAttachment,
    NetworkSpec,
    PortSpec,
    ResourcesSpec,
    UlimitSpec,
    VolumeSpec,
)

__all__ = [
    "DEFAULT_STOP_TIMEOUT",
    "Backend",
    "BlkioSpec",
    "BuildSpec",
    "ContainerSpec",
    "ContainerState",
    "ContainerStatus",
    "DeviceRequestSpec",
    "DeviceSpec",
    "EngineEvent",
    "EventType",
    "Health",
    "HealthcheckSpec",
    "HookSpec",
    "ImageInfo",
    "ImageRef",
    "IpamPoolSpec",
    "IpamSpec",
    "LogLine",
    "LogStream",
    "LoggingSpec",
    "MountSpec",
    "MountType",
    "NetworkAttachment",
    "NetworkSpec",
    "ObservedContainer",
    "ObservedImage",
    "ObservedNetwork",
    "ObservedState",
    "ObservedVolume",
    "PathStat",
    "PortBinding",
    "PortSpec",
    "Progress",
    "ProgressUpdate",
    "ProjectSummary",
    "ResourcesSpec",
    "UlimitSpec",
    "VolumeSpec",
]

# --- the verbs --------------------------------------------------------------


class Backend(Protocol):
    """The narrow set of verbs every engine implements.

    Each verb does one thing and raises ``NotFound``/``Conflict``/
    ``Unavailable``/``Unsupported`` on failure; none of them decides whether
    it should be called. Implementations must be safe to call from several
    threads at once (the executor runs independent steps concurrently).
    """

    def observe(self, project: str, images: Sequence[ImageRef] = ()) -> ObservedState:
        """Snapshot the project's containers, networks, volumes and the given images."""
        ...

    def create_network(self, spec: NetworkSpec) -> None: ...

    def remove_network(self, name: str) -> None: ...

    def create_volume(self, spec: VolumeSpec) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def pull_image(self, ref: ImageRef, progress: Progress | None = None) -> str:
        """Pull ``ref``; return its image id."""
        ...

    def build_image(self, spec: BuildSpec, progress: Progress | None = None) -> str:
        """Build and tag ``spec.tag`` (and ``spec.tags``); return the image id."""
        ...

    def remove_image(self, ref: ImageRef) -> None: ...

    def image_id(self, ref: ImageRef) -> str | None:
        """The local image id of ``ref``, or ``None`` when it is not present."""
        ...

    def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) the container; return its id."""
        ...

    def start_container(self, id: str) -> None: ...

    def stop_container(self, id: str, timeout: float) -> None: ...

    def kill_container(self, id: str, signal: str = "SIGKILL") -> None: ...

    def remove_container(self, id: str, *, force: bool = False, volumes: bool = False) -> None: ...

    def rename_container(self, id: str, name: str) -> None: ...

    def pause_container(self, id: str) -> None: ...

    def unpause_container(self, id: str) -> None: ...

    def inspect_container(self, id: str) -> ContainerStatus: ...

    # --- around a running project (the CLI's verbs) -----------------------------

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
        """The container's output, split into lines and by stream.

        ``since``/``until`` are epoch seconds; ``tail`` keeps the last N lines
        (``None``: all); ``timestamps`` fills ``LogLine.time``. With
        ``follow`` the iterator blocks for new lines and ends when the
        container stops; closing the iterator releases the connection.
        """
        ...

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
        """Run ``command`` in the running container; return its exit code (0 when detached).

        Output is written to ``stdout``/``stderr`` as it comes (discarded
        when ``None``; with ``tty`` everything goes to ``stdout``); ``stdin``
        is forwarded until its end. ``Conflict`` when the container is not
        running.
        """
        ...

    def attach_run(
        self,
        container_id: str,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> int:
        """Attach to the container's stdio, start it unless it runs, and wait for its exit.

        Attaching comes before starting so that no output is lost. Returns
        the exit code. Output as for ``exec_run``. ``stdin`` reaches a
        container created with ``stdin_open``; its end reaches the process
        as end-of-file for a one-off container (``docker run -i``).
        """
        ...

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        """Block until the container is not running; return its exit code.

        Returns at once for a container that has already exited;
        ``Unavailable`` when ``timeout`` seconds pass first.
        """
        ...

    def top(
        self, container_id: str, ps_args: str | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """The processes of a running container: ``(titles, rows)`` as ``ps`` prints them."""
        ...

    def stat_path(self, container_id: str, path: str) -> PathStat:
        """What ``path`` is in the container (``NotFound`` when it does not exist)."""
        ...

    def copy_to(self, container_id: str, dest_path: str, tar_stream: bytes) -> None:
        """Extract the tar archive ``tar_stream`` into the directory ``dest_path``."""
        ...

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar archive of ``path`` (file or directory), in chunks."""
        ...

    def events(
        self, project: str, *, since: float | None = None, until: float | None = None
    ) -> Iterator[EngineEvent]:
        """The project's events as they happen (blocking; ends at ``until`` when given)."""
        ...

    def list_projects(self) -> list[ProjectSummary]:
        """Every project with containers on the engine (one list call), sorted by name."""
        ...

    def list_images(self, refs: Sequence[str]) -> list[ImageInfo]:
        """The local images among ``refs`` (references or ids), in order; missing ones skipped."""
        ...

    def push_image(self, ref: ImageRef, progress: Progress | None = None) -> None: ...

    def container_ports(self, container_id: str) -> list[PortBinding]:
        """The container's actual host bindings (published ports only)."""
        ...
