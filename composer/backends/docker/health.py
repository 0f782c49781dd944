"""A container's healthcheck history as the Docker Engine keeps it (``State.Health.Log``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from composer.backends.optional import HealthResult


def _epoch(text: str) -> float:
    """RFC 3339 with nanoseconds (Docker's form) to epoch seconds."""
    head, dot, rest = text.partition(".")
    zone = rest.lstrip("0123456789") if dot else ""
    frac = rest[: len(rest) - len(zone)][:6] if dot else ""
    try:
        base = datetime.fromisoformat(head + (f".{frac}" if frac else "") + (zone or ""))
    except ValueError:
        return 0.0
    return base.timestamp()


def health_from_inspect(data: Mapping[str, Any]) -> list[HealthResult]:
    """The ``State.Health.Log`` entries of an inspect answer, oldest first."""
    entries = ((data.get("State") or {}).get("Health") or {}).get("Log") or []
    return [
        HealthResult(
            started=_epoch(str(e.get("Start", ""))),
            exit_code=int(e.get("ExitCode", -1)),
            output=str(e.get("Output", "")),
        )
        for e in entries
    ]
