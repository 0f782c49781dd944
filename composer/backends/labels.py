"""Resource names and ``com.docker.compose.*`` labels.

Both backends persist exactly the names and labels Docker Compose writes, so
that a stack started by composer is recognised by ``docker compose ps`` (and
by testcontainers), and the reverse; ``observe`` reads project membership,
service, replica number and config hash back from these labels. Everything
here is a pure function of its arguments.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from composer import __version__

LABEL_PREFIX = "com.docker.compose."
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_CONTAINER_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_SLUG = "com.docker.compose.slug"
LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_ENVIRONMENT_FILE = "com.docker.compose.project.environment_file"
LABEL_DEPENDS_ON = "com.docker.compose.depends_on"
LABEL_IMAGE = "com.docker.compose.image"
LABEL_VERSION = "com.docker.compose.version"
LABEL_REPLACE = "com.docker.compose.replace"
LABEL_NETWORK = "com.docker.compose.network"
LABEL_VOLUME = "com.docker.compose.volume"

ONEOFF_SUFFIX_LENGTH = 12
"""Hex digits of the slug that end a one-off container's name."""

VERSION = __version__
"""Written to ``com.docker.compose.version``."""


# --- names ------------------------------------------------------------------


def container_name(project: str, service: str, number: int) -> str:
    """``<project>-<service>-<n>``; ``container_name:`` overrides it upstream."""
    if number < 1:
        raise ValueError(f"container numbers start at 1, got {number}")
    return f"{project}-{service}-{number}"


def oneoff_name(project: str, service: str, suffix: str) -> str:
    """``<project>-<service>-run-<12 hex>`` for a ``run`` container.

    ``suffix`` is the slug (random hex chosen by the caller); only its first
    12 characters are used, as Docker Compose does.
    """
    if len(suffix) < ONEOFF_SUFFIX_LENGTH:
        raise ValueError(f"one-off suffix must have {ONEOFF_SUFFIX_LENGTH} characters")
    return f"{project}-{service}-run-{suffix[:ONEOFF_SUFFIX_LENGTH]}"


def scoped_name(project: str, key: str, name: str | None = None) -> str:
    """Engine name of a network, volume, config or secret.

    ``name:`` (or the name of an ``external`` resource) is used as written;
    otherwise ``<project>_<key>``.
    """
    return name if name else f"{project}_{key}"


def network_name(project: str, key: str, name: str | None = None) -> str:
    """``<project>_<key>`` unless ``name:`` is set (``<project>_default`` for the default)."""
    return scoped_name(project, key, name)


def volume_name(project: str, key: str, name: str | None = None) -> str:
    """``<project>_<key>`` unless ``name:`` is set."""
    return scoped_name(project, key, name)


def default_image_name(project: str, service: str) -> str:
    """The tag of an image built for a service that has no ``image:``."""
    return f"{project}-{service}"


# --- label values -----------------------------------------------------------


class Dependency(NamedTuple):
    """One entry of the ``depends_on`` label.

    A named tuple rather than a dataclass: one is built per dependency of
    every container a plan creates.
    """

    service: str
    condition: str = "service_started"
    restart: bool = False


_by_service = operator.itemgetter(0)


def format_depends_on(dependencies: Iterable[Dependency]) -> str:
    """``dep:condition:restart`` entries, comma-joined, sorted by service.

    ``restart`` is written ``true``/``false`` as Go's ``%t`` does; sorting
    makes the label (and so the container config) deterministic.
    """
    entries = sorted(dependencies, key=_by_service)
    return ",".join(
        [f"{d.service}:{d.condition}:{'true' if d.restart else 'false'}" for d in entries]
    )


def parse_depends_on(value: str) -> tuple[Dependency, ...]:
    """Read a ``depends_on`` label back, accepting the older shorter forms.

    ``dep`` alone means ``service_started``; a missing restart flag means
    ``true`` (as Docker Compose assumes for labels written before it existed).
    """
    out: list[Dependency] = []
    for entry in value.split(","):
        if not entry:
            continue
        parts = entry.split(":")
        condition = parts[1] if len(parts) > 1 and parts[1] else "service_started"
        restart = parts[2].lower() == "true" if len(parts) > 2 else True
        out.append(Dependency(parts[0], condition, restart))
    return tuple(out)


def format_bool(value: bool) -> str:
    """``"True"``/``"False"``, the spelling of the ``oneoff`` label."""
    return "True" if value else "False"


def is_compose_label(key: str) -> bool:
    """Whether a label key belongs to Compose (and so is written by composer)."""
    return key.startswith(LABEL_PREFIX)


def user_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that are not Compose's own."""
    return {k: v for k, v in labels.items() if not is_compose_label(k)}


# --- label sets -------------------------------------------------------------


def project_labels(project: str) -> dict[str, str]:
    """Labels every resource of a project carries."""
    return {LABEL_PROJECT: project}


def container_labels(
    *,
    project: str,
    service: str,
    number: int | None,
    config_hash: str,
    image_id: str,
    working_dir: str,
    config_files: Iterable[str] = (),
    environment_files: Iterable[str] = (),
    depends_on: Iterable[Dependency] = (),
    oneoff: bool = False,
    slug: str | None = None,
    replace: str | None = None,
    version: str = VERSION,
    user: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Compose labels of one container, sorted.

    ``number`` is omitted for one-offs, which carry ``slug`` instead;
    ``replace`` names the container this one replaces on recreate;
    ``environment_file`` is present only when env files were used. ``user``
    labels, when given, are merged in as ``merge_labels`` does (Compose's win).
    """
    labels = {
        LABEL_PROJECT: project,
        LABEL_SERVICE: service,
        LABEL_ONEOFF: format_bool(oneoff),
        LABEL_CONFIG_HASH: config_hash,
        LABEL_IMAGE: image_id,
        LABEL_WORKING_DIR: working_dir,
        LABEL_CONFIG_FILES: ",".join(config_files),
        LABEL_DEPENDS_ON: format_depends_on(depends_on),
        LABEL_VERSION: version,
    }
    env_files = ",".join(environment_files)
    if env_files:
        labels[LABEL_ENVIRONMENT_FILE] = env_files
    if number is not None and not oneoff:
        labels[LABEL_CONTAINER_NUMBER] = str(number)
    if oneoff and slug:
        labels[LABEL_SLUG] = slug
    if replace:
        labels[LABEL_REPLACE] = replace
    if user:
        labels = {**user, **labels}
    return _sorted(labels)


def _sorted(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` in key order (keys are unique, so sorting the keys is enough)."""
    return {key: labels[key] for key in sorted(labels)}


def network_labels(
    project: str, key: str, config_hash: str | None = None, *, version: str = VERSION
) -> dict[str, str]:
    """Labels of a network composer creates (``config-hash`` when known)."""
    labels = {LABEL_PROJECT: project, LABEL_NETWORK: key, LABEL_VERSION: version}
    if config_hash:
        labels[LABEL_CONFIG_HASH] = config_hash
    return dict(sorted(labels.items()))


def volume_labels(
    project: str, key: str, config_hash: str | None = None, *, version: str = VERSION
) -> dict[str, str]:
    """Labels of a volume composer creates (``config-hash`` when known)."""
    labels = {LABEL_PROJECT: project, LABEL_VOLUME: key, LABEL_VERSION: version}
    if config_hash:
        labels[LABEL_CONFIG_HASH] = config_hash
    return dict(sorted(labels.items()))


def merge_labels(user: Mapping[str, str], compose: Mapping[str, str]) -> dict[str, str]:
    """User labels plus Compose's; Compose's win, and the result is sorted."""
    return _sorted({**user, **compose})


# --- reading labels back ----------------------------------------------------


def parse_container_number(labels: Mapping[str, str]) -> int | None:
    """The replica number, or ``None`` for one-offs and foreign containers."""
    value = labels.get(LABEL_CONTAINER_NUMBER)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_oneoff(labels: Mapping[str, str]) -> bool:
    """Whether the container is a one-off (``run``) container."""
    return labels.get(LABEL_ONEOFF, "False").lower() == "true"
