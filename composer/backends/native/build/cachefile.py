"""The builder's cache files: written atomically but not flushed to disk.

The state root's ``write_json`` fsyncs every file, as records that
``observe`` trusts must survive a crash. A build-cache entry or a remembered
digest is different: after a crash it may come back empty or not at all,
and readers take anything they cannot parse for a miss, which only costs
running the step (or reading the file) again. Skipping the flush saves a
disk round trip per step on the build's critical path.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_cache_json(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON (temporary file + rename, no fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
