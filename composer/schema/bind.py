"""Binding: the normalised tree becomes a frozen ``Project``.

This is the one place where the loader's plain tree meets the typed models.
Two passes, both over the whole project so that every problem is listed at
once:

1. a walk of the tree against the models' fields, because the models keep
   extra keys (``x-`` extensions must survive) and so cannot reject a typo
   such as ``imgae`` themselves; each unknown key gets a "did you mean";
2. one pydantic validation of the whole project (not one per service: that is
   what keeps 2000 services fast), whose errors are translated into
   readable problems positioned on the user's text.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from composer.errors import Location, Problem, SchemaError
from composer.schema.model import Project, Service
from composer.schema.tree import Key, Path, YMap, YSeq, locate, path_str, to_plain

Warn = Callable[[str], None]

TOP_LEVEL_KEYS = (
    "version",
    "name",
    "include",
    "services",
    "networks",
    "volumes",
    "configs",
    "secrets",
    "models",
)
"""Keys allowed at the top of a Compose file (besides ``x-*``)."""

_SECTIONS = ("services", "networks", "volumes", "configs", "secrets", "models")
_NULLABLE_SECTIONS = ("networks", "volumes", "configs", "secrets")
"""Sections whose entries may be written empty (``volumes: {data:}``)."""

_V1_MARKERS = ("image", "build")


# --- shapes: how to walk a field's value -------------------------------------

# A shape says where model-typed values sit inside a field's value:
# ("model", cls), ("map", shape) for dict values, ("list", shape) for items.
# ``None`` means free-form (labels, environment, scalars): keys are not checked.
Shape = tuple[str, Any] | None


def _shape_of(annotation: Any) -> Shape:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _shape_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        shapes = [_shape_of(a) for a in typing.get_args(annotation) if a is not type(None)]
        return next((s for s in shapes if s is not None), None)
    if origin is dict:
        inner = _shape_of(typing.get_args(annotation)[1])
        return ("map", inner) if inner is not None else None
    if origin is list:
        inner = _shape_of(typing.get_args(annotation)[0])
        return ("list", inner) if inner is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    return None


@functools.cache
def _field_shapes(cls: type[BaseModel]) -> dict[str, Shape]:
    """Shapes of a model's fields, computed once per class."""
    return {name: _shape_of(info.annotation) for name, info in cls.model_fields.items()}


# --- pass 1: unknown keys ----------------------------------------------------


def _key_loc(node: Any, key: Any) -> Location | None:
    if isinstance(node, YMap):
        return node.key_locs.get(key) or node.loc_of(key)
    return None


def _unknown_key(node: Any, key: Any, path: Path, choices: Iterable[str]) -> Problem:
    match = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.6)
    return Problem(
        f"unknown key '{key}'",
        _key_loc(node, key),
        path_str((*path, str(key))),
        f"did you mean '{match[0]}'?" if match else None,
    )


def _walk_shape(value: Any, shape: Shape, path: Path, out: list[Problem]) -> None:
    if shape is None:
        return
    kind, inner = shape
    if kind == "model":
        _walk_model(value, inner, path, out)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _walk_shape(item, inner, (*path, key), out)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _walk_shape(item, inner, (*path, index), out)


def _walk_model(node: Any, cls: type[BaseModel], path: Path, out: list[Problem]) -> None:
    if not isinstance(node, dict):
        return  # the validation pass reports the wrong type
    shapes = _field_shapes(cls)
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("x-"):
            continue
        if key not in shapes:
            out.append(_unknown_key(node, key, path, shapes))
            continue
        _walk_shape(value, shapes[key], (*path, key), out)


def _check_keys(tree: YMap, out: list[Problem]) -> None:
    project_shapes = _field_shapes(Project)
    for key, value in tree.items():
        if isinstance(key, str) and key.startswith("x-"):
            continue
        if key not in TOP_LEVEL_KEYS:
            out.append(_unknown_key(tree, key, (), TOP_LEVEL_KEYS))
        elif key in _SECTIONS:
            _walk_shape(value, project_shapes[key], (key,), out)


def _legacy_v1(tree: YMap) -> Problem | None:
    """A version-1 file: service definitions at the top level, no ``services:``."""
    if "services" in tree:
        return None
    for key, value in tree.items():
        if key in TOP_LEVEL_KEYS or (isinstance(key, str) and key.startswith("x-")):
            continue
        if isinstance(value, Mapping) and any(marker in value for marker in _V1_MARKERS):
            return Problem(
                f"'{key}' looks like a service defined at the top level (a version-1 compose file)",
                _key_loc(tree, key),
                str(key),
                "version-1 compose files are not supported: put every service "
                "under a top-level `services:` key",
            )
    return None


# --- pass 2: validation ------------------------------------------------------

_PLAIN_MESSAGES = {
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dataclass_type": "must be a mapping",
    "none_required": "must be empty",
    "string_too_short": "must not be empty",
}


def _message(error: Mapping[str, Any]) -> str:
    """A readable message for one pydantic error, free of pydantic jargon."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        return "must be one of: " + ", ".join(choices)
    if kind == "missing":
        return "is required"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    for bound, ctx_key, text in (
        ("greater_than", "gt", "greater than"),
        ("greater_than_equal", "ge", "at least"),
        ("less_than", "lt", "less than"),
        ("less_than_equal", "le", "at most"),
    ):
        if kind == bound:
            return f"must be {text} {ctx.get(ctx_key, '')}".strip()
    text = str(error.get("msg", "is invalid"))
    text = text.removeprefix("Value error, ").replace("Input should be", "must be")
    return text.replace(" a valid ", " a ")


def _data_path(data: Any, loc: Iterable[Any]) -> Path:
    """The part of a pydantic ``loc`` that names real keys of ``data``.

    Union and validator tags that pydantic inserts into ``loc`` are dropped,
    so the result walks the tree the user wrote.
    """
    out: list[Key] = []
    node = data
    for step in loc:
        if _has_step(node, step):
            out.append(step)
            node = node[step]
    return tuple(out)


def _has_step(node: Any, step: Any) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _translate(
    exc: ValidationError, data: Mapping[str, Any], tree: YMap, disabled: YMap
) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error.get("loc", ()))
        path = _data_path(data, loc)
        if error.get("type") == "missing" and loc and loc[-1] not in path:
            path_shown: Path = (*path, str(loc[-1]))
        else:
            path_shown = path
        if path and path[0] == "disabled_services":
            location = locate(disabled, path[1:])
            path_shown = ("services", *path_shown[1:])
        else:
            location = locate(tree, path)
        problems.append(Problem(_message(error), location, path_str(path_shown)))
    return problems


def _plain(value: Any) -> Any:
    """Plain dicts and lists (``to_plain`` with cheap exact-type checks first).

    Binding 2000 services converts every node of the tree, so the common
    types are tested by identity before the general ``Mapping`` check.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is YMap or kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is YSeq or kind is list:
        return [_plain(v) for v in value]
    return to_plain(value)


def _section(tree: YMap, key: str) -> dict[str, Any]:
    value = tree.get(key)
    if value is None:
        return {}
    plain = _plain(value)
    if not isinstance(plain, dict):
        return plain  # type: ignore[no-any-return]  # validation reports it
    if key in _NULLABLE_SECTIONS:
        return {k: ({} if v is None else v) for k, v in plain.items()}
    return plain


def _file_order(config_files: list[str]) -> Callable[[Problem], tuple[int, str, int, int]]:
    rank = {path: index for index, path in enumerate(config_files)}
    unknown = len(config_files)

    def key(problem: Problem) -> tuple[int, str, int, int]:
        loc = problem.location
        if loc is None:
            return (unknown + 1, "", 0, 0)
        return (rank.get(loc.file, unknown), loc.file, loc.line, loc.column)

    return key


def bind_project(
    tree: YMap,
    *,
    name: str,
    working_dir: str,
    config_files: list[str],
    env_files: list[str],
    environment: dict[str, str],
    profiles: list[str],
    disabled: YMap,
    content_digests: dict[str, str],
    warn: Warn | None = None,
) -> Project:
    """Check the normalised tree against the models and build the ``Project``.

    ``tree`` is the merged, normalised long-form document; ``disabled`` holds
    the services switched off by profiles (name to service tree). Every
    problem found is raised together in one ``SchemaError``, in file order.
    ``warn`` receives warnings (the obsolete ``version`` attribute).
    """
    if not isinstance(tree, dict):
        raise SchemaError("a compose file must be a mapping at the top level")
    legacy = _legacy_v1(tree)
    if legacy is not None:
        raise SchemaError(legacy.message, legacy.hint, problems=[legacy])

    if "version" in tree and warn is not None:
        where = _key_loc(tree, "version")
        prefix = f"{where.file}: " if where is not None else ""
        warn(
            f"{prefix}the attribute `version` is obsolete, it will be ignored, "
            "please remove it to avoid potential confusion"
        )

    problems: list[Problem] = []
    _check_keys(tree, problems)
    if isinstance(disabled, Mapping):
        for service, body in disabled.items():
            _walk_model(body, Service, ("services", service), problems)

    data: dict[str, Any] = {
        "name": name,
        "working_dir": working_dir,
        "config_files": list(config_files),
        "env_files": list(env_files),
        "environment": dict(environment),
        "profiles": list(profiles),
        "content_digests": dict(content_digests),
        "disabled_services": _plain(disabled) if disabled is not None else {},
    }
    for section in _SECTIONS:
        data[section] = _section(tree, section)
    for key, value in tree.items():
        if isinstance(key, str) and key.startswith("x-"):
            data[key] = _plain(value)

    project: Project | None = None
    try:
        project = Project.model_validate(data)
    except ValidationError as exc:
        problems.extend(_translate(exc, data, tree, disabled))
    except (TypeError, ValueError) as exc:  # defensive: a validator raised oddly
        problems.append(Problem(f"invalid configuration: {exc}", getattr(tree, "loc", None)))

    if problems or project is None:
        problems.sort(key=_file_order(config_files))
        count = len(problems)
        raise SchemaError(
            f"{count} problem{'s' if count != 1 else ''} in the compose model",
            problems=problems,
        )
    return project
