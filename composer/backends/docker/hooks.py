"""``post_start``/``pre_stop`` hooks kept in a container label.

The Engine's container model has no place for hooks, so they travel with
the container in the ``composer.hooks`` label (only when a service has
hooks): a later process starting or stopping the container runs them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from composer.backends.base import ContainerSpec, HookSpec
from composer.errors import BackendError

HOOKS_LABEL = "composer.hooks"


def hooks_to_label(spec: ContainerSpec) -> str | None:
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


def hooks_from_label(labels: Mapping[str, str]) -> dict[str, tuple[HookSpec, ...]]:
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
