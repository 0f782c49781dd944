"""``x-composer.ready``: host-side readiness probes, as plain data.

A healthcheck runs *inside* the container and needs a shell or a client
binary in the image; distroless and scratch images have neither
(testcontainers-java#3835). A readiness probe runs on the host instead:

```yaml
services:
  db:
    image: postgres
    ports: ["5432"]
    x-composer:
      ready:
        tcp: 5432                  # a TCP connect to the published port
        # http: {port: 8080, path: /health, status: 200}
        # log: "ready to accept connections"   (a regular expression)
        timeout: 60s               # give up after this long (default 60s)
        interval: 500ms            # between two attempts (default 250ms)
```

Exactly one of ``tcp``, ``http`` and ``log`` is given. The probe counts for
``up --wait``, for ``depends_on: {condition: service_healthy}`` when the
service has no healthcheck of its own, and for the pytest plugin's
``wait_ready``. This module only parses; ``composer.ready_probes`` runs the
probes (I/O belongs to the executor side, not to the planner).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from composer.errors import ConfigError

if TYPE_CHECKING:
    from composer.schema.model import Service

EXTENSION = "x-composer"
DEFAULT_TIMEOUT = 60.0
DEFAULT_INTERVAL = 0.25

ProbeKind = Literal["tcp", "http", "log"]


@dataclass(frozen=True, slots=True)
class ReadyProbe:
    """One service's readiness probe.

    ``port`` is the container port (``tcp``/``http``), reached through its
    published host binding; ``pattern`` is the regular expression of a
    ``log`` probe; ``status`` the HTTP status expected (any 2xx when None).
    """

    kind: ProbeKind
    port: int | None = None
    path: str = "/"
    status: int | None = None
    pattern: str = ""
    timeout: float = DEFAULT_TIMEOUT
    interval: float = DEFAULT_INTERVAL

    def __str__(self) -> str:
        if self.kind == "tcp":
            return f"tcp:{self.port}"
        if self.kind == "http":
            return f"http:{self.port}{self.path}"
        return f"log:/{self.pattern}/"


def _bad(service: str, text: str) -> ConfigError:
    return ConfigError(
        f"services.{service}.{EXTENSION}.ready: {text}",
        hint="expected one of tcp: PORT, http: {port, path, status} or log: REGEX",
    )


def _port(service: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _bad(service, f"invalid port {value!r}")
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad(service, f"invalid port {value!r}")
    return int(text)


def _duration(service: str, key: str, value: object, default: float) -> float:
    from composer.schema.units import parse_duration

    if value is None:
        return default
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise _bad(service, f"{key}: {exc}") from None
    if seconds <= 0:
        raise _bad(service, f"{key} must be positive")
    return seconds


def parse_probe(service: str, raw: object) -> ReadyProbe:
    """The probe written as ``raw`` (the value of ``x-composer.ready``)."""
    if not isinstance(raw, dict):
        raise _bad(service, "must be a mapping")
    kinds = [k for k in ("tcp", "http", "log") if k in raw]
    unknown = set(raw) - {"tcp", "http", "log", "timeout", "interval"}
    if unknown:
        raise _bad(service, f"unknown key {sorted(unknown)[0]!r}")
    if len(kinds) != 1:
        raise _bad(service, "give exactly one of tcp, http and log")
    timeout = _duration(service, "timeout", raw.get("timeout"), DEFAULT_TIMEOUT)
    interval = _duration(service, "interval", raw.get("interval"), DEFAULT_INTERVAL)
    kind = kinds[0]
    value: Any = raw[kind]
    if kind == "tcp":
        return ReadyProbe("tcp", port=_port(service, value), timeout=timeout, interval=interval)
    if kind == "http":
        if not isinstance(value, dict):
            value = {"port": value}
        extra = set(value) - {"port", "path", "status"}
        if extra:
            raise _bad(service, f"http: unknown key {sorted(extra)[0]!r}")
        path = str(value.get("path") or "/")
        status = value.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise _bad(service, f"http.status must be an integer, not {status!r}")
        return ReadyProbe(
            "http",
            port=_port(service, value.get("port")),
            path=path if path.startswith("/") else "/" + path,
            status=status,
            timeout=timeout,
            interval=interval,
        )
    if not isinstance(value, str) or not value:
        raise _bad(service, "log must be a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise _bad(service, f"log: invalid regular expression: {exc}") from None
    return ReadyProbe("log", pattern=value, timeout=timeout, interval=interval)


def service_probe(name: str, service: Service) -> ReadyProbe | None:
    """The service's ``x-composer.ready`` probe, if it declares one."""
    ext = service.extensions.get(EXTENSION)
    if not isinstance(ext, dict) or "ready" not in ext:
        return None
    return parse_probe(name, ext["ready"])
