"""What a container is started with, decided at create: its ``LaunchSpec`` and files.

``translate`` (Docker's rules as a pure function) gives the ``LaunchSpec``
for everything but the mounts, which ``mounts.py`` resolved; this module
supplies what ``translate`` needs from the host (rlimits, device numbers,
the namespaces of ``container:`` modes) and writes the container's
``/etc/hostname``, ``/etc/resolv.conf`` and ``/etc/hosts``, completing the
hosts file with the container's own addresses once its networks are joined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from composer.backends.base import ContainerSpec
from composer.backends.native.containers import ContainerDirs
from composer.backends.native.runtime.spec import LaunchSpec, MountEntry, RootfsSpec
from composer.backends.native.session import NativeSession
from composer.backends.native.supervisor.records import ContainerRecord
from composer.errors import ComposerError, Conflict

if TYPE_CHECKING:
    from composer.backends.native.images.store import StoredImage


JOIN_PREFIX = "container:"
JOINS_FILE = "joins.json"
"""``{namespace kind: container id}`` of the namespaces a container joins (its dir)."""


def _host_rlimits(names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """This process's ``(soft, hard)`` limits for the ``ulimits`` asked for."""
    import resource

    out: dict[str, tuple[int, int]] = {}
    for name in names:
        number = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if isinstance(number, int):
            out[name] = resource.getrlimit(number)
    return out


class LaunchSetup(NativeSession):
    """The launch spec and the ``/etc`` files of the containers this backend creates."""

    def _launch(
        self,
        spec: ContainerSpec,
        image: StoredImage,
        dirs: ContainerDirs,
        mounts: Sequence[MountEntry],
    ) -> LaunchSpec:
        """``translate`` for everything but the mounts, which ``mounts.py`` resolved (with
        volumes made, files written and ``volumes_from`` followed); the container's
        ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` are written here."""
        from composer.backends.native import translate as _translate

        files = self._etc_files(spec, dirs)
        joined = self._joined_namespaces(spec)
        if joined:
            from composer.backends.native.state import write_json

            targets = {k: v[len(JOIN_PREFIX) :] for k, v in joined.items()}
            write_json(dirs.base / JOINS_FILE, targets)
        bare = dataclasses.replace(spec, mounts=(), tmpfs={})
        translation = _translate.translate(
            bare,
            image.config,
            RootfsSpec(
                str(dirs.rootfs),
                tuple(str(d) for d in image.layer_dirs),
                str(dirs.upper),
                str(dirs.work),
            ),
            files,
            container_id=dirs.base.name,
            joined_namespaces=joined,
            host_rlimits=_host_rlimits(spec.ulimits),
            devices=_translate.probe_devices(d.source for d in spec.devices),
        )
        launch = translation.launch
        ordered = sorted(
            [*launch.mounts, *mounts], key=lambda m: len([p for p in m.target.split("/") if p])
        )
        return dataclasses.replace(launch, mounts=tuple(ordered))

    def _etc_files(self, spec: ContainerSpec, dirs: ContainerDirs) -> Any:
        from composer.backends.native.containers import ordered_networks
        from composer.backends.native.network.etc_files import hosts_file, resolv_conf
        from composer.backends.native.state import atomic_write
        from composer.backends.native.translate import ContainerFiles

        hostname = spec.hostname or dirs.base.name[:12]
        hostname_text = f"{hostname}\n"
        networks = [a.network for a in ordered_networks(spec)]
        nameserver = self.networks.nameserver(networks) if networks else None
        paths = {n: dirs.base / n for n in ("hosts", "hostname", "resolv.conf")}
        atomic_write(paths["hostname"], hostname_text.encode())
        atomic_write(
            paths["resolv.conf"],
            resolv_conf(
                nameserver, dns=spec.dns, dns_search=spec.dns_search, dns_opt=spec.dns_opt
            ).encode(),
        )
        atomic_write(
            paths["hosts"],
            hosts_file([], extra_hosts=spec.extra_hosts, host_gateway=nameserver).encode(),
        )
        if spec.network_mode == "host":
            return ContainerFiles()
        return ContainerFiles(
            hosts=str(paths["hosts"]),
            hostname=str(paths["hostname"]),
            resolv_conf=str(paths["resolv.conf"]),
        )

    def _joined_namespaces(self, spec: ContainerSpec) -> dict[str, str]:
        """``container:<id>`` for each namespace a ``container:``/``service:`` mode joins.

        The container named must exist; its PID (and so the real
        ``/proc/<pid>/ns/<kind>`` path) is only known when this one starts, which
        ``resolve_joins`` does each time it is started.
        """
        out: dict[str, str] = {}
        for kind, mode in (
            ("net", spec.network_mode),
            ("ipc", spec.ipc),
            ("pid", spec.pid),
            ("uts", spec.uts),
        ):
            if not mode or not mode.startswith(("container:", "service:")):
                continue
            other = self._find(mode.split(":", 1)[1])
            out[kind] = f"{JOIN_PREFIX}{other.id}"
        return out

    def resolve_joins(self, record: ContainerRecord) -> None:
        """Point the namespaces this container joins at the current PIDs of the
        containers that own them, before it starts (``Conflict`` when one is not running).

        The record is rewritten only when a path changed, and the supervisor is then
        told to forget its copy so that it starts from the new one.
        """
        current = self._join_targets(record)
        if not current:
            return
        namespaces = []
        changed = False
        for ns in record.launch.get("namespaces") or ():
            target = current.get(str(ns.get("type")))
            if target is not None:
                other = self._snapshot(target)
                if not other.running or other.state.pid <= 0:
                    raise Conflict(
                        f"cannot start {record.name}: it joins the {ns.get('type')} namespace "
                        f"of {other.record.name}, which is not running",
                        hint=f"start {other.record.name} first",
                    )
                path = f"/proc/{other.state.pid}/ns/{ns.get('type')}"
                changed = changed or ns.get("path") != path
                ns = {**ns, "path": path}
            namespaces.append(ns)
        if not changed:
            return
        from composer.backends.native.supervisor.records import write_record

        launch = {**record.launch, "namespaces": namespaces}
        write_record(self.root, dataclasses.replace(record, launch=launch))
        with contextlib.suppress(ComposerError, OSError):
            self._client(record.project).forget(record.id)

    def _join_targets(self, record: ContainerRecord) -> dict[str, str]:
        """Namespace kind → id of the container whose namespace is joined."""
        path = self.root.container(record.id) / JOINS_FILE
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _write_own_hosts(self, record: ContainerRecord) -> None:
        """Add the container's own addresses to its ``/etc/hosts`` once its networks are
        joined (as Docker lists ``<ip> <hostname>``). Written in place: the file is
        bind-mounted, so a new inode would not be seen inside."""
        from composer.backends.native.network.etc_files import hosts_file

        if not record.networks:
            return
        # two fields of the spec, read without decoding all of it (every start does this)
        hostname = str(record.spec.get("hostname") or record.id[:12])
        extra_hosts = tuple((str(h), str(a)) for h, a in record.spec.get("extra_hosts") or ())
        own: list[tuple[str, Sequence[str]]] = []
        gateway = None
        for join in record.networks:
            with contextlib.suppress(ComposerError, OSError, ValueError):
                endpoint = self.networks.endpoint(join.network, record.id)
                if endpoint is not None and endpoint.ip:
                    names = [hostname] if not own else []
                    own.append((endpoint.ip, names + [n for n in join.names if n != hostname]))
                    gateway = gateway or endpoint.gateway
        if not own:
            return
        text = hosts_file(own, extra_hosts=extra_hosts, host_gateway=gateway).encode()
        path = self.root.container(record.id) / "hosts"
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, text, 0)
            finally:
                os.close(fd)
