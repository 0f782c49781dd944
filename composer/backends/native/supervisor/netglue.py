"""The supervisor's side of networking: join on start, leave on exit, DNS and ports.

A container joins its networks from the runtime's ``before_exec`` (the
veth goes into ``/proc/<pid>/ns/net`` before the process runs) and leaves
them when it ends. The supervisor hosts, for its project, one DNS
responder per network that has a running container of the project, and
the user-space proxies of the published ports. A responder whose gateway
address is already served (a network shared with another project, whose
supervisor answers there) is skipped: the names come from the same
endpoint records either way.

``network/`` is imported on first use, so a project without networks
(``network_mode: none|host``) never loads the network code or dnslib.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from typing import TYPE_CHECKING, Any

from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import (
    BoundPort,
    ContainerRecord,
    from_json,
)

if TYPE_CHECKING:
    from composer.backends.specs import PortSpec

log = logging.getLogger(__name__)


class NetGlue:
    def __init__(self, root: StateRoot) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._manager: Any = None
        self._proxies: Any = None
        self._responders: dict[str, Any] = {}
        self._users: dict[str, set[str]] = {}  # network -> running container ids
        self._ips: dict[str, str] = {}  # container id -> address for its port proxies

    def _nm(self) -> Any:
        if self._manager is None:
            from composer.backends.native.network.manager import NetworkManager

            self._manager = NetworkManager(self.root)
        return self._manager

    def join(self, record: ContainerRecord, pid: int) -> None:
        """Plumb the container (PID ``pid``) into each of its networks; all or nothing."""
        joined: list[str] = []
        # The service's own dns: servers answer what the network does not know.
        from composer.backends.specs import NetworkAttachment

        dns = tuple(str(d) for d in record.spec.get("dns") or ())
        try:
            for join in record.networks:
                att = from_json(NetworkAttachment, {"network": join.network, **join.attachment})
                ep = self._nm().connect(
                    join.network, pid, record.id, att, names=join.names, dns=dns
                )
                joined.append(join.network)
                if ep.ip and record.id not in self._ips:
                    self._ips[record.id] = ep.ip
        except BaseException:
            for name in joined:
                with contextlib.suppress(Exception):
                    self._nm().disconnect(name, record.id)
            self._ips.pop(record.id, None)
            raise

    def started(self, record: ContainerRecord) -> tuple[BoundPort, ...]:
        """After a start: serve DNS on its networks and publish its ports; the ports bound."""
        for join in record.networks:
            with self._lock:
                users = self._users.setdefault(join.network, set())
                users.add(record.id)
                need = join.network not in self._responders
            if need:
                self._start_responder(join.network)
        return self._publish(record)

    def adopted(self, record: ContainerRecord) -> tuple[BoundPort, ...]:
        """A re-adopted container: its endpoints are in place, the proxies and DNS are not."""
        for join in record.networks:
            ep = self._nm().endpoint(join.network, record.id)
            if ep is not None and ep.ip and record.id not in self._ips:
                self._ips[record.id] = ep.ip
        return self.started(record)

    def stopped(self, record: ContainerRecord) -> None:
        """After an exit: unpublish, leave the networks, stop responders no one needs."""
        if self._proxies is not None:
            self._proxies.unpublish(record.id)
        self._ips.pop(record.id, None)
        for join in record.networks:
            with contextlib.suppress(Exception):
                self._nm().disconnect(join.network, record.id)
            with self._lock:
                users = self._users.get(join.network, set())
                users.discard(record.id)
                responder = self._responders.pop(join.network, None) if not users else None
            if responder is not None:
                responder.stop()

    def close(self) -> None:
        with self._lock:
            responders, self._responders = list(self._responders.values()), {}
        for r in responders:
            with contextlib.suppress(Exception):
                r.stop()
        if self._proxies is not None:
            self._proxies.stop()

    def _start_responder(self, network: str) -> None:
        try:
            responder = self._nm().dns_responder(network).start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                log.warning("DNS responder of network %s: %s", network, exc)
            return
        except Exception as exc:  # a missing network record must not stop the container
            log.warning("DNS responder of network %s: %s", network, exc)
            return
        with self._lock:
            if network in self._responders:
                responder.stop()
            else:
                self._responders[network] = responder

    def _publish(self, record: ContainerRecord) -> tuple[BoundPort, ...]:
        ports = published(record)
        if not ports:
            return ()
        target = self._ips.get(record.id, "127.0.0.1")
        if self._proxies is None:
            from composer.backends.native.network.ports import PortProxies

            self._proxies = PortProxies().start()
        bindings = self._proxies.publish(record.id, target, ports)
        return tuple(BoundPort(b.target, b.host_port or 0, b.host_ip, b.protocol) for b in bindings)


def published(record: ContainerRecord) -> list[PortSpec]:
    """The ports to publish: ``record.ports`` when given, else the spec's published ones."""
    from composer.backends.specs import PortSpec

    if record.ports:
        return [
            PortSpec(
                target=p.container_port,
                published=p.published or (str(p.host_port) if p.host_port else None),
                host_ip=p.host_ip or None,
                protocol=p.protocol,
            )
            for p in record.ports
        ]
    spec = record.container_spec()
    return [p for p in spec.ports if p.published is not None]
