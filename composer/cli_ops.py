"""CLI verbs that inspect or operate on containers (ps, logs, exec ...).

Registered through ``COMMANDS`` in composer.cli_commands.
"""

from __future__ import annotations

from collections.abc import Callable

COMMANDS: dict[str, tuple[Callable[..., None], str]] = {}
