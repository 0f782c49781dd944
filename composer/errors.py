"""The error hierarchy.

Every failure a user can meet is one of these classes, so that the CLI can
print one readable message (plus a hint) and pick the exit code without
knowing where the error came from. Library errors are translated into this
hierarchy at one boundary per backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a file a problem is: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ComposerError(Exception):
    """Base of every error composer reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a configuration file."""

    message: str
    location: Location | None = None
    path: str = ""
    hint: str | None = None

    def render(self) -> str:
        """Format as ``file:line:col: key.path: message``."""
        parts: list[str] = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(ComposerError):
    """A problem in the user's configuration; exit code 2.

    A ConfigError carries one or more ``Problem``s so that all the problems of
    a file can be listed at once, in file order.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        location: Location | None = None,
        path: str = "",
        problems: Sequence[Problem] | None = None,
    ) -> None:
        if problems:
            self.problems: tuple[Problem, ...] = tuple(problems)
        else:
            self.problems = (Problem(message, location, path, hint),)
        first = self.problems[0]
        super().__init__(first.render() if len(self.problems) == 1 else message, hint or first.hint)
        self.location = first.location
        self.path = first.path

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class InterpolationError(ConfigError):
    """A ``${VAR:?msg}`` failed or the interpolation syntax is invalid."""


class MergeError(ConfigError):
    """Two compose files cannot be merged."""


class ExtendsError(ConfigError):
    """An ``extends`` reference is broken or cyclic."""


class IncludeError(ConfigError):
    """An ``include`` entry is broken, cyclic or clashes."""


class SchemaError(ConfigError):
    """The file does not match the Compose model."""


class DependencyCycleError(ConfigError):
    """Services depend on each other in a cycle (``a -> b -> a``)."""


class PlanError(ComposerError):
    """The request cannot be planned: conflicting options, unknown service."""


class BackendError(ComposerError):
    """An engine refused or failed an operation."""


class NotFound(BackendError):
    """The resource does not exist on the engine."""


class Conflict(BackendError):
    """The resource exists already or is in a state that forbids the operation."""


class Unavailable(BackendError):
    """The engine cannot be reached."""


class Unsupported(BackendError):
    """The engine cannot do what was asked."""


class ExecutionError(ComposerError):
    """A plan step failed; says which and what was left running."""
