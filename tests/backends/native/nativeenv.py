"""What the native tests need from the machine, and the busybox rootfs they run.

Shared by the runtime and supervisor tests: why the runtime cannot run here
(``None`` when it can), and a rootfs made the way ``scripts/engines.sh``
makes ``bb:latest`` (Debian's busybox-static and its applet links), built by
``scripts/isolation_probes.py`` so that the probes and the tests use one.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]


def runtime_missing() -> str | None:
    """Why containers cannot be launched here, or ``None``."""
    if os.geteuid() != 0:
        return "the native runtime needs root"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "overlayfs is not available"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    return None


def load_probes() -> ModuleType:
    """``scripts/isolation_probes.py`` as a module (it is a script, not a package)."""
    path = REPO / "scripts" / "isolation_probes.py"
    spec = importlib.util.spec_from_file_location("isolation_probes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def busybox_rootfs(root: Path) -> Path:
    """A busybox rootfs at ``root`` (returned)."""
    made: Path = load_probes().make_busybox_rootfs(root)
    return made
