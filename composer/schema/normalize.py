"""Normalisation: the implicit parts of a Compose project made explicit.

After this stage the tree says everything Docker Compose would infer, in the
shape ``docker compose config`` prints, so that the planner never has to guess:

* the default network: a service with neither ``networks`` nor
  ``network_mode`` (nor ``provider``) joins ``default``, and the top-level
  ``default`` network is declared when some service uses it;
* engine names of networks, volumes, configs and secrets (``<project>_<key>``,
  or the key itself for ``external`` ones);
* relative and ``~`` paths resolved against the project directory (bind
  sources, build contexts, env and label files, config and secret files,
  ``extends.file``, watch paths);
* ``env_file`` and ``label_file`` contents read and merged (explicit values
  win); a bare ``KEY`` in ``environment`` or ``build.args`` takes its value
  from the environment;
* default targets of secrets and configs, ``build.dockerfile``,
  ``bind.create_host_path``; ``pull_policy: if_not_present`` → ``missing``;
  ``deploy.replicas`` filled from ``scale``;
* the implicit ``depends_on`` of ``links``, ``service:x`` namespaces and
  ``volumes_from``.

It also returns the SHA-256 of every file whose *content* the project uses
(env, label, config and secret files), so that config hashing can notice a
changed secret without reading files again.

The process environment and the working directory are parameters; files are
read, never written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import ConfigError, Location
from composer.schema.discovery import absolute, expand_user
from composer.schema.dotenv import parse_dotenv, parse_raw_env
from composer.schema.profiles import CONTAINER_PREFIX, NAMESPACE_KEYS, SERVICE_PREFIX
from composer.schema.tree import YMap, deepcopy_tree, locate, path_str

MISSING = "missing"
"""Digest recorded for an optional file that does not exist."""

RESOURCE_SECTIONS = ("networks", "volumes", "configs", "secrets")
"""Top-level sections whose entries get an engine ``name``."""

_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")

Lookup = Callable[[str], str | None]


@dataclass
class _Ctx:
    """What one normalisation run needs and collects."""

    tree: YMap
    project_name: str
    project_dir: Path
    environ: Mapping[str, str]
    resolve_paths: bool
    digests: dict[str, str] = field(default_factory=dict)

    def real(self, path: str) -> Path:
        """Where ``path`` is on disk, whatever ``resolve_paths`` says."""
        return absolute(Path(expand_user(path, self.environ)), self.project_dir)

    def written(self, path: str) -> str:
        """What to write back into the tree for ``path``."""
        return str(self.real(path)) if self.resolve_paths else path

    def read(self, path: Path) -> str | None:
        """The text of ``path`` (recording its digest), or None when it is absent."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.digests[str(path)] = MISSING
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.digests[str(path)] = hashlib.sha256(data).hexdigest()
        return data.decode("utf-8", errors="replace")


def normalize(
    tree: YMap,
    *,
    project_name: str,
    project_dir: Path,
    environ: Mapping[str, str],
    resolve_paths: bool = True,
    copy: bool = True,
) -> tuple[YMap, dict[str, str]]:
    """Return the normalised copy of ``tree`` and the digests of the files it read.

    ``environ`` is the interpolation environment (process environment over the
    env files). With ``resolve_paths=False`` (``config --no-path-resolution``)
    relative paths stay as written; files are still read from where they are.
    A caller that owns ``tree`` and will not use it again passes
    ``copy=False``: it is then normalised in place and returned.
    """
    out: YMap = deepcopy_tree(tree) if copy else tree
    ctx = _Ctx(out, project_name, project_dir, environ, resolve_paths)
    out["name"] = project_name
    uses_default = False
    services = out.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                uses_default |= _service(ctx, name, service)
    networks = out.get("networks")
    if uses_default and not (isinstance(networks, dict) and "default" in networks):
        if not isinstance(networks, YMap):
            networks = YMap(networks or {}, out.loc)
            out["networks"] = networks
        networks["default"] = None
    _resources(ctx)
    return out, dict(sorted(ctx.digests.items()))


# --- one service --------------------------------------------------------------


def _service(ctx: _Ctx, name: str, service: dict[str, Any]) -> bool:
    """Normalise ``service`` in place; True when it joins the default network."""
    path = ("services", name)
    if service.get("pull_policy") == "if_not_present":
        service["pull_policy"] = "missing"
    if isinstance(service.get("build"), dict):
        _build(ctx, service["build"])
    environment = service.get("environment")
    if isinstance(environment, dict):
        _resolve_bare(environment, ctx.environ.get, keep_unset=True)
    if isinstance(service.get("env_file"), list):
        _env_files(ctx, service, path)
    if isinstance(service.get("label_file"), list):
        _label_files(ctx, service, path)
    if isinstance(service.get("volumes"), list):
        _volumes(ctx, service["volumes"])
    _file_refs(service.get("secrets"), "/run/secrets/")
    _file_refs(service.get("configs"), "/")
    _implicit_depends_on(service)
    _paths(ctx, service)
    _replicas(service)
    return _default_network(service)


def _resolve_bare(mapping: dict[str, Any], lookup: Lookup, *, keep_unset: bool) -> None:
    """Give a bare ``KEY`` (``None``) its value from ``lookup``; drop it unless ``keep_unset``."""
    for key in [k for k, v in mapping.items() if v is None]:
        value = lookup(str(key))
        if value is not None:
            mapping[key] = value
        elif not keep_unset:
            del mapping[key]


def _build(ctx: _Ctx, build: dict[str, Any]) -> None:
    if build.get("context") is None:
        build["context"] = "."
    build["context"] = _context_path(ctx, build["context"])
    if build.get("dockerfile") is None and build.get("dockerfile_inline") is None:
        build["dockerfile"] = "Dockerfile"
    if isinstance(build.get("args"), dict):
        _resolve_bare(build["args"], ctx.environ.get, keep_unset=False)
    extra = build.get("additional_contexts")
    if isinstance(extra, dict):
        for key, value in extra.items():
            extra[key] = _context_path(ctx, value)


def _context_path(ctx: _Ctx, value: Any) -> Any:
    """A build context made absolute, unless it is a URL, a remote or ``service:x``."""
    if not isinstance(value, str):
        return value
    if "://" in value or value.startswith((SERVICE_PREFIX, *_REMOTE_CONTEXT)):
        return value
    return ctx.written(value)


def _env_files(ctx: _Ctx, service: dict[str, Any], path: tuple[str, ...]) -> None:
    explicit = service.get("environment")
    explicit = explicit if isinstance(explicit, dict) else {}

    def lookup(key: str) -> str | None:
        if key in ctx.environ:
            return ctx.environ[key]
        value = explicit.get(key)
        return None if value is None else str(value)

    merged = YMap(loc=locate(ctx.tree, (*path, "env_file")))
    for index, entry in enumerate(service["env_file"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        real = ctx.real(entry["path"])
        entry["path"] = ctx.written(entry["path"])
        text = ctx.read(real)
        if text is None:
            if entry.get("required", True) is False:
                continue
            raise ConfigError(
                f"env file {real} not found",
                location=locate(ctx.tree, (*path, "env_file", index, "path")),
                path=path_str((*path, "env_file", index)),
                hint="create the file, or mark the entry `required: false`",
            )
        values = _parse_env(text, str(real), lookup, entry.get("format"))
        for key, value in values.items():
            merged.set(key, value, Location(str(real), 1, 1))
    if not merged:
        return
    if isinstance(explicit, YMap):
        for key in explicit:
            merged.set(key, explicit[key])
            merged.copy_locs_from(explicit, key)
    else:
        merged.update(explicit)
    service["environment"] = merged


def _label_files(ctx: _Ctx, service: dict[str, Any], path: tuple[str, ...]) -> None:
    labels: dict[str, Any] = {}
    files = service["label_file"]
    for index, name in enumerate(files):
        if not isinstance(name, str):
            continue
        real = ctx.real(name)
        files[index] = ctx.written(name)
        text = ctx.read(real)
        if text is None:
            raise ConfigError(
                f"label file {real} not found",
                location=locate(ctx.tree, (*path, "label_file", index)),
                path=path_str((*path, "label_file", index)),
            )
        labels.update(_parse_env(text, str(real), labels.get, None))
    explicit = service.get("labels")
    merged = YMap(labels, locate(ctx.tree, (*path, "label_file")))
    if isinstance(explicit, dict):
        for key, value in explicit.items():
            merged[key] = value
            if isinstance(explicit, YMap):
                merged.copy_locs_from(explicit, key)
    service["labels"] = merged


def _parse_env(text: str, filename: str, lookup: Lookup, fmt: Any) -> dict[str, str]:
    """Parse an env or label file with the project's dotenv rules."""
    if fmt == "raw":
        return parse_raw_env(text, filename, lookup)
    return parse_dotenv(text, filename, lookup)


def _volumes(ctx: _Ctx, volumes: list[Any]) -> None:
    for volume in volumes:
        if not isinstance(volume, dict) or volume.get("type") != "bind":
            continue
        if isinstance(volume.get("source"), str):
            volume["source"] = ctx.written(volume["source"])
        bind = volume.get("bind")
        if isinstance(bind, dict) and "create_host_path" not in bind:
            bind["create_host_path"] = True


def _file_refs(refs: Any, prefix: str) -> None:
    """Default ``target`` of service secrets (``/run/secrets/<source>``) and configs."""
    if not isinstance(refs, list):
        return
    for ref in refs:
        if isinstance(ref, dict) and ref.get("target") is None and "source" in ref:
            ref["target"] = f"{prefix}{ref['source']}"


def _implicit_depends_on(service: dict[str, Any]) -> None:
    """Add what ``links``, ``service:x`` namespaces and ``volumes_from`` imply."""
    implied: list[tuple[str, bool]] = []
    for link in service.get("links") or []:
        implied.append((str(link).split(":", 1)[0], True))
    for key in NAMESPACE_KEYS:
        value = service.get(key)
        if isinstance(value, str) and value.startswith(SERVICE_PREFIX):
            implied.append((value[len(SERVICE_PREFIX) :], True))
    for source in service.get("volumes_from") or []:
        if not str(source).startswith(CONTAINER_PREFIX):
            implied.append((str(source).split(":", 1)[0], False))
    if not implied:
        return
    depends = service.get("depends_on")
    if not isinstance(depends, dict):
        depends = YMap()
        service["depends_on"] = depends
    for name, restart in implied:
        if name not in depends:
            depends[name] = YMap(
                {"condition": "service_started", "restart": restart, "required": True}
            )


def _paths(ctx: _Ctx, service: dict[str, Any]) -> None:
    """``extends.file`` leftovers and ``develop.watch[].path``."""
    extends = service.get("extends")
    if isinstance(extends, dict) and isinstance(extends.get("file"), str):
        extends["file"] = ctx.written(extends["file"])
    develop = service.get("develop")
    watch = develop.get("watch") if isinstance(develop, dict) else None
    for rule in watch if isinstance(watch, list) else []:
        if isinstance(rule, dict) and isinstance(rule.get("path"), str):
            rule["path"] = _watch_path(ctx, rule["path"])


def _watch_path(ctx: _Ctx, path: str) -> str:
    if not ctx.resolve_paths:
        return path
    real = ctx.real(path)
    return str(real.resolve()) if real.is_symlink() else str(real)


def _replicas(service: dict[str, Any]) -> None:
    """``deploy.replicas`` follows ``scale`` when only the latter is set."""
    scale, deploy = service.get("scale"), service.get("deploy")
    if isinstance(scale, int) and isinstance(deploy, dict) and deploy.get("replicas") is None:
        deploy["replicas"] = scale


def _default_network(service: dict[str, Any]) -> bool:
    if "provider" in service or service.get("network_mode") is not None:
        return False
    networks = service.get("networks")
    if not networks:
        service["networks"] = YMap({"default": None}, getattr(service, "loc", None))
        return True
    return isinstance(networks, dict) and "default" in networks


# --- top-level resources ----------------------------------------------------


def _resources(ctx: _Ctx) -> None:
    for section in RESOURCE_SECTIONS:
        entries = ctx.tree.get(section)
        if not isinstance(entries, dict):
            continue
        for key in list(entries):
            resource = entries[key]
            if resource is None:
                resource = YMap(loc=entries.loc_of(key) if isinstance(entries, YMap) else None)
                entries[key] = resource
            if not isinstance(resource, dict):
                continue
            if resource.get("name") is None:
                external = resource.get("external") is True
                resource["name"] = key if external else f"{ctx.project_name}_{key}"
            if section in ("configs", "secrets"):
                _file_source(ctx, resource)
            elif section == "volumes":
                _bind_volume(ctx, resource)


def _file_source(ctx: _Ctx, resource: dict[str, Any]) -> None:
    source = resource.get("file")
    if not isinstance(source, str) or resource.get("external") is True:
        return
    real = ctx.real(source)
    resource["file"] = ctx.written(source)
    ctx.read(real)


def _bind_volume(ctx: _Ctx, volume: dict[str, Any]) -> None:
    """A ``local`` volume with ``o: bind`` is a bind mount: resolve its device."""
    opts = volume.get("driver_opts")
    if volume.get("driver") != "local" or not isinstance(opts, dict):
        return
    if opts.get("o") == "bind" and isinstance(opts.get("device"), str):
        opts["device"] = ctx.written(opts["device"])
