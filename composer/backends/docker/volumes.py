"""VolumeSpec → arguments of the Engine's volume create call."""

from __future__ import annotations

from typing import Any

from composer.backends.base import VolumeSpec


def create_arguments(spec: VolumeSpec) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_volume``."""
    return {
        "name": spec.name,
        "driver": spec.driver or None,
        "driver_opts": dict(spec.driver_opts) or None,
        "labels": dict(spec.labels),
    }
