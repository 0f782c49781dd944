"""NetworkSpec → arguments of the Engine's network create call."""

from __future__ import annotations

from typing import Any

from composer.backends.base import IpamSpec, NetworkSpec
from composer.backends.docker.client import at_least
from composer.errors import Unsupported


def ipam_config(ipam: IpamSpec | None) -> dict[str, Any] | None:
    """The ``IPAM`` object, or ``None`` to let the engine allocate."""
    if ipam is None:
        return None
    pools = []
    for pool in ipam.config:
        entry = {
            "Subnet": pool.subnet,
            "IPRange": pool.ip_range,
            "Gateway": pool.gateway,
            "AuxiliaryAddresses": dict(pool.aux_addresses) or None,
        }
        pools.append({k: v for k, v in entry.items() if v is not None})
    return {
        "Driver": ipam.driver or "default",
        "Config": pools,
        "Options": dict(ipam.options),
    }


def create_arguments(spec: NetworkSpec, api_version: str) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_network``.

    Duplicate names are refused by the engine (``check_duplicate``), so a
    second create of the same network is a ``Conflict`` as on other engines.
    """
    if spec.enable_ipv4 is False:
        raise Unsupported(
            f"network {spec.name}: enable_ipv4: false needs Engine API 1.47 "
            f"(this backend speaks {api_version})"
            if not at_least(api_version, "1.47")
            else f"network {spec.name}: enable_ipv4: false is not supported by the Docker backend"
        )
    return {
        "name": spec.name,
        "driver": spec.driver or None,
        "options": dict(spec.driver_opts) or None,
        "ipam": ipam_config(spec.ipam),
        "check_duplicate": True,
        "internal": spec.internal,
        "labels": dict(spec.labels),
        "enable_ipv6": bool(spec.enable_ipv6),
        "attachable": spec.attachable or None,
    }
