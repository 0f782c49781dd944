"""Conformance with the Compose Specification, generated from its JSON schema.

For every service attribute and every top-level element of
``fixtures/compose-spec.json``, a representative long-form value is built from
the schema (the branch of each ``oneOf`` that matches the canonical model,
one entry per map, one item per list, an ``x-`` extension wherever the schema
allows one). The value must be accepted by ``bind_project`` and must come
back out of ``render_project`` with the same meaning: the rendered element,
read back, binds to an equal model.

The same values then go through the whole loader (YAML file, interpolation,
transform, merge, normalisation, checks, binding), and a table of short
syntaxes checks that each comes out in the long form ``docker compose
config`` prints.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, BeforeValidator

from composer.schema import model as m
from composer.schema.bind import TOP_LEVEL_KEYS, bind_project
from composer.schema.loader import LoadOptions, load_project
from composer.schema.render import render_project, render_service
from composer.schema.tree import YMap
from composer.schema.units import parse_bytes, parse_duration

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "compose-spec.json").read_text(encoding="utf-8")
)
SERVICE_SCHEMA: dict[str, Any] = SCHEMA["definitions"]["service"]["properties"]
ELEMENTS: dict[str, type[BaseModel]] = {
    "networks": m.Network,
    "volumes": m.Volume,
    "configs": m.ConfigDef,
    "secrets": m.SecretDef,
    "models": m.ModelDef,
}
EXTENSION = "x-conformance"


# --- generating values from the schema ---------------------------------------


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"].removeprefix("#/")
        target: Any = SCHEMA
        for part in ref.split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _branches(node: Any) -> list[dict[str, Any]]:
    """The alternatives a schema node allows, each with a single type."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return []
    for key in ("oneOf", "anyOf"):
        if key in node:
            return [b for branch in node[key] for b in _branches(branch)]
    kind = node.get("type")
    if isinstance(kind, list):
        return [{**node, "type": one} for one in kind]
    return [node]


def _kind(annotation: Any) -> tuple[str, Any]:
    """What the model expects: a model, map, list, scalar, duration or size."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        funcs = {meta.func for meta in args[1:] if isinstance(meta, BeforeValidator)}
        if parse_duration in funcs:
            return ("duration", None)
        if parse_bytes in funcs:
            return ("bytes", None)
        return _kind(args[0])
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _kind(inner[0]) if len(inner) == 1 else ("any", None)
    if origin is typing.Literal:
        return ("literal", args)
    if origin is dict:
        return ("map", args[1])
    if origin is list:
        return ("list", args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    scalars = {str: "string", bool: "boolean", int: "integer", float: "number"}
    return (scalars.get(annotation, "any"), None)


_JSON_TYPES = {
    "model": ("object",),
    "map": ("object",),
    "list": ("array",),
    "string": ("string",),
    "boolean": ("boolean",),
    "integer": ("integer", "number"),
    "number": ("number", "integer"),
    "duration": ("string",),
    "bytes": ("string", "integer", "number"),
}


def _pick(node: Any, kind: str) -> dict[str, Any]:
    branches = _branches(node)
    for wanted in _JSON_TYPES.get(kind, ()):
        for branch in branches:
            if branch.get("type") == wanted or (
                wanted == "object" and "properties" in branch and "type" not in branch
            ):
                return branch
    return branches[0] if branches else {}


def _map_value_schema(branch: dict[str, Any]) -> Any:
    patterns = {k: v for k, v in branch.get("patternProperties", {}).items() if k != "^x-"}
    if patterns:
        return next(iter(patterns.values()))
    extra = branch.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def generate(node: Any, annotation: Any, missing: list[str], where: str) -> Any:
    """A representative long-form value of ``node`` that fits ``annotation``."""
    kind, detail = _kind(annotation)
    if kind == "literal":
        return detail[0]
    if kind == "duration":
        return "1m30s"
    if kind == "bytes":
        return "64m"
    branch = _pick(node, kind)
    if kind == "model":
        return _generate_model(branch, detail, missing, where)
    if kind == "map":
        value = generate(_map_value_schema(branch), detail, missing, f"{where}.*")
        return {"example": value}
    if kind == "list":
        return [generate(branch.get("items", {}), detail, missing, f"{where}[]")]
    if branch.get("enum"):
        return branch["enum"][0]
    return {"string": "example", "boolean": True, "integer": 2, "number": 0.5}.get(kind, "example")


def _annotation(cls: type[BaseModel], name: str) -> Any:
    """A field's type with the validators pydantic moved into its metadata."""
    field = cls.model_fields[name]
    if field.metadata:
        return typing.Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def _generate_model(
    branch: dict[str, Any], cls: type[BaseModel], missing: list[str], where: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    properties = branch.get("properties", {})
    for name, prop in properties.items():
        if name not in cls.model_fields:
            missing.append(f"{where}.{name}")
            continue
        out[name] = generate(prop, _annotation(cls, name), missing, f"{where}.{name}")
    for name, field in cls.model_fields.items():  # required by the model, unknown to the schema
        if field.is_required() and name not in out:
            out[name] = generate({}, _annotation(cls, name), missing, f"{where}.{name}")
    if "^x-" in branch.get("patternProperties", {}):
        out[EXTENSION] = {"kept": True}
    return out


# --- reading the rendered output back ----------------------------------------


def read_back_service(rendered: dict[str, Any]) -> dict[str, Any]:
    """Undo the few shapes ``docker compose config`` prints differently from the model."""
    out = dict(rendered)
    _read_back_common(out)
    if isinstance(out.get("build"), dict):
        build = dict(out["build"])
        _read_back_common(build)
        out["build"] = build
    return out


def _read_back_common(element: dict[str, Any]) -> None:
    for mount in element.get("volumes", []):
        if isinstance(mount.get("bind"), dict):  # opt-out: omitted means true
            mount["bind"] = {"create_host_path": True, **mount["bind"]}
    if isinstance(element.get("extra_hosts"), list):
        hosts: dict[str, list[str]] = {}
        for entry in element["extra_hosts"]:
            host, _, ip = entry.partition("=")
            hosts.setdefault(host, []).append(ip)
        element["extra_hosts"] = hosts
    if isinstance(element.get("ulimits"), dict):
        element["ulimits"] = {
            name: {"single": value} if isinstance(value, int) else value
            for name, value in element["ulimits"].items()
        }


def bind(tree: dict[str, Any], warn: Any = None) -> m.Project:
    return bind_project(
        YMap(tree),
        name="conformance",
        working_dir="/srv/conformance",
        config_files=["compose.yaml"],
        env_files=[],
        environment={},
        profiles=[],
        disabled=YMap(),
        content_digests={},
        warn=warn,
    )


# --- the tests -----------------------------------------------------------------


def test_the_schema_has_92_service_attributes() -> None:
    assert len(SERVICE_SCHEMA) == 92


def test_every_service_attribute_is_a_model_field_and_nothing_else() -> None:
    assert set(SERVICE_SCHEMA) == set(m.Service.model_fields)


def test_every_top_level_element_is_known() -> None:
    assert set(SCHEMA["properties"]) == set(TOP_LEVEL_KEYS)
    assert set(ELEMENTS) | {"services"} <= set(m.Project.model_fields)


def test_nested_schema_properties_all_have_model_fields() -> None:
    missing: list[str] = []
    for name, prop in SERVICE_SCHEMA.items():
        generate(prop, _annotation(m.Service, name), missing, f"service.{name}")
    for section, cls in ELEMENTS.items():
        element = SCHEMA["properties"][section]["patternProperties"]
        generate(next(iter(element.values())), cls, missing, section)
    assert missing == []


@pytest.mark.parametrize("attribute", sorted(SERVICE_SCHEMA))
def test_service_attribute_is_accepted_and_round_trips(attribute: str) -> None:
    value = generate(SERVICE_SCHEMA[attribute], _annotation(m.Service, attribute), [], attribute)
    project = bind({"services": {"svc": {attribute: value}}})
    bound = project.services["svc"]
    assert getattr(bound, attribute) not in (None, [], {}), f"{attribute} was dropped"

    rendered = render_service(bound)
    assert attribute in rendered, f"{attribute} missing from config output"
    assert rendered == render_project(project)["services"]["svc"]

    again = bind({"services": {"svc": read_back_service(rendered)}}).services["svc"]
    assert getattr(again, attribute) == getattr(bound, attribute)
    assert again == bound


@pytest.mark.parametrize("section", sorted(ELEMENTS))
def test_top_level_element_is_accepted_and_round_trips(section: str) -> None:
    element = SCHEMA["properties"][section]["patternProperties"]
    value = generate(next(iter(element.values())), ELEMENTS[section], [], section)
    project = bind({"services": {}, section: {"example": value}})
    bound = getattr(project, section)["example"]
    assert bound.extensions == {EXTENSION: {"kept": True}}

    rendered = render_project(project)
    assert list(rendered[section]) == ["example"]
    assert rendered[section]["example"][EXTENSION] == {"kept": True}

    again = bind({"services": {}, section: rendered[section]})
    assert getattr(again, section) == getattr(project, section)


def test_name_version_and_include_are_accepted() -> None:
    warnings: list[str] = []
    project = bind(
        {
            "version": "3.9",
            "name": "ignored-here",
            "include": ["other/compose.yaml"],
            "services": {"svc": {"image": "busybox"}},
        },
        warn=warnings.append,
    )
    rendered = render_project(project)
    assert rendered["name"] == "conformance"
    assert "version" not in rendered and "include" not in rendered
    assert len(warnings) == 1


def test_top_level_extensions_round_trip() -> None:
    project = bind({"services": {}, "x-anchor": {"b": [1, 2], "a": None}})
    assert render_project(project)["x-anchor"] == {"a": None, "b": [1, 2]}


def test_a_service_with_every_attribute_at_once() -> None:
    body = {
        name: generate(prop, _annotation(m.Service, name), [], name)
        for name, prop in SERVICE_SCHEMA.items()
    }
    project = bind({"services": {"svc": body}})
    rendered = render_service(project.services["svc"])
    assert set(SERVICE_SCHEMA) <= set(rendered)
    again = bind({"services": {"svc": read_back_service(rendered)}})
    assert again.services == project.services


# --- through the whole loader ------------------------------------------------

LOADER_OVERRIDES: dict[str, Any] = {
    # values the semantic checks would rightly refuse as "example"
    "pull_policy": "always",
    "restart": "unless-stopped",
    "extends": {"service": "example"},
}

CONTEXT = """\
  example: {image: busybox}
networks: {example: {}}
volumes: {example: {}}
secrets: {example: {file: ./example}}
configs: {example: {file: ./example}}
models: {example: {model: ai/example}}
"""
"""Everything a generated value may refer to as ``example``."""


def load_rendered(tmp_path: Path, service_yaml: str) -> dict[str, Any]:
    """Load ``services.svc`` (plus CONTEXT) from a real file; render ``svc``.

    The project directory is replaced by ``.`` in the output so that
    resolved paths compare with what was written.
    """
    (tmp_path / "example").write_text("EXAMPLE=1\n", encoding="utf-8")
    text = "services:\n  svc:\n" + service_yaml + CONTEXT
    (tmp_path / "compose.yaml").write_text(text, encoding="utf-8")
    warnings: list[str] = []
    options = LoadOptions(
        working_dir=tmp_path, environ={"B": "2", "HOME": "/home/u"}, profiles=("example",)
    )
    project = load_project(options, warnings.append)
    rendered = render_project(project)["services"]["svc"]
    dumped = json.dumps(rendered).replace(f"{tmp_path}/", "").replace(str(tmp_path), ".")
    result: dict[str, Any] = json.loads(dumped)
    return result


def _indented(value: Any) -> str:
    return "".join(f"    {line}\n" for line in yaml.safe_dump(value).splitlines())


@pytest.mark.parametrize("attribute", sorted(SERVICE_SCHEMA))
def test_service_attribute_through_the_loader(tmp_path: Path, attribute: str) -> None:
    value = LOADER_OVERRIDES.get(attribute)
    if value is None:
        value = generate(SERVICE_SCHEMA[attribute], _annotation(m.Service, attribute), [], "")
    if attribute == "ports":
        value[0].update(published="8080", host_ip="127.0.0.1")
    body: dict[str, Any] = {"image": "busybox", attribute: value}
    loaded = load_rendered(tmp_path, _indented(body))
    direct = render_service(bind({"services": {"svc": {attribute: value}}}).services["svc"])
    if attribute == "extends":
        assert "extends" not in loaded  # applied by the loader, as Docker Compose does
        return
    assert loaded[attribute] == direct[attribute]


SHORT_SYNTAX: list[tuple[str, str, Any]] = [
    (
        "ports",
        '["8080:80", "127.0.0.1:5000-5001:5000-5001/udp", 3000, "[::1]:9000:9000"]',
        [
            {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
            {
                "mode": "ingress",
                "host_ip": "127.0.0.1",
                "target": 5000,
                "published": "5000",
                "protocol": "udp",
            },
            {
                "mode": "ingress",
                "host_ip": "127.0.0.1",
                "target": 5001,
                "published": "5001",
                "protocol": "udp",
            },
            {"mode": "ingress", "target": 3000, "protocol": "tcp"},
            {
                "mode": "ingress",
                "host_ip": "::1",
                "target": 9000,
                "published": "9000",
                "protocol": "tcp",
            },
        ],
    ),
    (
        "volumes",
        '["./data:/data:ro", "example:/var/lib", "/anon", "~/x:/x"]',
        [
            {"type": "bind", "source": "data", "target": "/data", "read_only": True, "bind": {}},
            {"type": "volume", "source": "example", "target": "/var/lib", "volume": {}},
            {"type": "volume", "target": "/anon", "volume": {}},
            {"type": "bind", "source": "/home/u/x", "target": "/x", "bind": {}},
        ],
    ),
    (
        "depends_on",
        "[example]",
        {"example": {"condition": "service_started", "required": True}},
    ),
    ("environment", "[A=1, B]", {"A": "1", "B": "2"}),
    ("labels", "[a=1, b]", {"a": "1", "b": ""}),
    ("build", "./app", {"context": "app", "dockerfile": "Dockerfile"}),
    ("command", '"echo hello world"', ["echo", "hello", "world"]),
    ("entrypoint", '"/bin/sh -c"', ["/bin/sh", "-c"]),
    (
        "healthcheck",
        '{test: "curl -f http://localhost", interval: 90s, timeout: 1.5s}',
        {"test": ["CMD-SHELL", "curl -f http://localhost"], "timeout": "1.5s", "interval": "1m30s"},
    ),
    ("env_file", "example", [{"path": "example"}]),
    (
        "extra_hosts",
        '["somehost:162.242.195.82", "other=::1"]',
        ["other=::1", "somehost=162.242.195.82"],
    ),
    ("networks", "[example]", {"example": None}),
    ("secrets", "[example]", [{"source": "example", "target": "/run/secrets/example"}]),
    ("configs", "[example]", [{"source": "example", "target": "/example"}]),
    (
        "ulimits",
        "{nofile: 1024, nproc: {soft: 1, hard: 2}}",
        {"nofile": 1024, "nproc": {"soft": 1, "hard": 2}},
    ),
    ("tmpfs", "/run", ["/run"]),
    ("dns", "8.8.8.8", ["8.8.8.8"]),
    (
        "devices",
        '["/dev/ttyUSB0:/dev/ttyUSB1:rwm", "/dev/sda"]',
        [
            {"source": "/dev/ttyUSB0", "target": "/dev/ttyUSB1", "permissions": "rwm"},
            {"source": "/dev/sda", "target": "/dev/sda", "permissions": "rwm"},
        ],
    ),
    ("expose", '[3000, "8000"]', ["3000", "8000"]),
    ("gpus", "all", [{"count": -1}]),
    ("models", "[example]", {"example": None}),
    ("mem_limit", "512m", "536870912"),
    ("group_add", "[100, wheel]", ["100", "wheel"]),
    ("sysctls", '["net.core.somaxconn=1024"]', {"net.core.somaxconn": "1024"}),
    ("post_start", '[{command: "echo hi"}]', [{"command": ["echo", "hi"]}]),
    (
        "deploy",
        '{resources: {limits: {cpus: "0.5", memory: 50M}}}',
        {"resources": {"limits": {"cpus": 0.5, "memory": "52428800"}}},
    ),
    ("stop_grace_period", "1m", "1m0s"),
    ("cpus", '"1.5"', 1.5),
    ("privileged", '"true"', True),
]


@pytest.mark.parametrize(
    ("attribute", "written", "printed"), SHORT_SYNTAX, ids=[c[0] for c in SHORT_SYNTAX]
)
def test_short_syntax_comes_out_in_long_form(
    tmp_path: Path, attribute: str, written: str, printed: Any
) -> None:
    loaded = load_rendered(tmp_path, f"    image: busybox\n    {attribute}: {written}\n")
    assert loaded[attribute] == printed


def test_extends_short_form_is_applied(tmp_path: Path) -> None:
    loaded = load_rendered(tmp_path, "    extends: example\n")
    assert "extends" not in loaded
    assert loaded["image"] == "busybox"


def test_a_full_service_through_the_loader(tmp_path: Path) -> None:
    body = {
        name: LOADER_OVERRIDES.get(name) or generate(prop, _annotation(m.Service, name), [], name)
        for name, prop in SERVICE_SCHEMA.items()
        if name not in ("extends", "scale", "container_name", "network_mode")
    }  # the checks refuse those together with deploy.replicas and networks
    body["ports"][0].update(published="8080", host_ip="127.0.0.1")
    loaded = load_rendered(tmp_path, _indented(body))
    assert set(body) <= set(loaded)
