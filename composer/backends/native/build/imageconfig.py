"""The image config a build step leaves behind: ENV, CMD, USER and the rest.

Metadata instructions change only the image config (the OCI ``config``
object), never the filesystem; they are applied here as pure functions so
that the builder can replay them for free on a cache hit, and so that each
rule (CMD reset by ENTRYPOINT, relative WORKDIR, shell form under SHELL)
is tested on its own.
"""

from __future__ import annotations

import copy
import json
import platform
import posixpath
from collections.abc import Mapping
from typing import Any

from composer.backends.native.build import dockerfile as D
from composer.schema.units import parse_duration

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


def host_platform() -> tuple[str, str]:
    """``(os, architecture)`` in OCI words for this machine."""
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


def scratch_config() -> dict[str, Any]:
    """The config of ``FROM scratch``: nothing but the platform."""
    os_name, arch = host_platform()
    return {
        "architecture": arch,
        "os": os_name,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


def from_image(config: Mapping[str, Any]) -> dict[str, Any]:
    """A working copy of a base image's config (never mutates the stored one)."""
    out = copy.deepcopy(dict(config))
    out.setdefault("config", {})
    out["config"] = dict(out["config"] or {})
    out.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    out.setdefault("history", [])
    return out


def env_map(config: Mapping[str, Any]) -> dict[str, str]:
    """The image's ``Env`` list as a mapping (later entries win)."""
    out: dict[str, str] = {}
    for item in config.get("config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def set_env(config: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    env = env_map(config)
    env.update(pairs)
    config["config"]["Env"] = [f"{k}={v}" for k, v in env.items()]


def shell_of(config: Mapping[str, Any]) -> tuple[str, ...]:
    shell = config.get("config", {}).get("Shell")
    return tuple(shell) if shell else DEFAULT_SHELL


def workdir_of(config: Mapping[str, Any]) -> str:
    return str(config.get("config", {}).get("WorkingDir") or "/")


def apply(
    df: D.Dockerfile, inst: D.Instruction, config: dict[str, Any], env: Mapping[str, str]
) -> str | None:
    """Apply a metadata instruction to ``config``; return its history text.

    ``env`` is what ``$var`` expands to (image ENV plus ARGs in scope).
    Returns ``None`` for instructions that are not metadata (RUN, COPY, …).
    """
    c = config["config"]
    k = inst.keyword
    if k == "ENV":
        pairs = D.key_values(df, inst, env)
        set_env(config, pairs)
        return "ENV " + " ".join(f"{a}={b}" for a, b in pairs)
    if k == "LABEL":
        labels = dict(c.get("Labels") or {})
        labels.update(D.key_values(df, inst, env))
        c["Labels"] = labels
        return f"LABEL {inst.args}"
    if k == "WORKDIR":
        path = D.single(df, inst, env)
        c["WorkingDir"] = posixpath.normpath(posixpath.join(workdir_of(config), path))
        return f"WORKDIR {c['WorkingDir']}"
    if k == "USER":
        c["User"] = D.single(df, inst, env)
        return f"USER {c['User']}"
    if k == "EXPOSE":
        ports = dict(c.get("ExposedPorts") or {})
        for word in D.words(df, inst, env):
            for port in _ports(df, inst, word):
                ports[port] = {}
        c["ExposedPorts"] = ports
        return f"EXPOSE {' '.join(sorted(ports))}"
    if k == "VOLUME":
        volumes = dict(c.get("Volumes") or {})
        for word in D.words(df, inst, env):
            volumes[word] = {}
        c["Volumes"] = volumes
        return f"VOLUME {inst.args}"
    if k == "STOPSIGNAL":
        c["StopSignal"] = D.single(df, inst, env)
        return f"STOPSIGNAL {c['StopSignal']}"
    if k == "SHELL":
        if inst.exec_form is None:
            raise df.error(inst, "SHELL requires the JSON form", hint='SHELL ["/bin/bash", "-c"]')
        c["Shell"] = list(inst.exec_form)
        return f"SHELL {json.dumps(list(inst.exec_form))}"
    if k == "CMD":
        c["Cmd"] = list(D.command(inst, shell_of(config)))
        return f"CMD {json.dumps(c['Cmd'])}"
    if k == "ENTRYPOINT":
        c["Entrypoint"] = list(D.command(inst, shell_of(config)))
        c["Cmd"] = None  # Docker: a new ENTRYPOINT resets the base image's CMD
        return f"ENTRYPOINT {json.dumps(c['Entrypoint'])}"
    if k == "HEALTHCHECK":
        c["Healthcheck"] = _healthcheck(df, inst, config)
        return f"HEALTHCHECK {inst.args}"
    if k == "ONBUILD":
        assert inst.sub is not None
        c["OnBuild"] = [*(c.get("OnBuild") or []), inst.sub.original]
        return f"ONBUILD {inst.sub.original}"
    if k == "MAINTAINER":
        config["author"] = D.single(df, inst, env)
        return f"MAINTAINER {config['author']}"
    return None


def _ports(df: D.Dockerfile, inst: D.Instruction, word: str) -> list[str]:
    number, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = number.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise df.error(inst, f"invalid port {word!r}") from None
    if not (0 < first <= last <= 65535) or proto not in ("tcp", "udp", "sctp"):
        raise df.error(inst, f"invalid port {word!r}")
    return [f"{p}/{proto}" for p in range(first, last + 1)]


def _healthcheck(df: D.Dockerfile, inst: D.Instruction, config: dict[str, Any]) -> dict[str, Any]:
    rest = inst.args
    if rest.upper() == "NONE":
        return {"Test": ["NONE"]}
    word, _, cmd = rest.partition(" ")
    if word.upper() != "CMD" or not cmd.strip():
        raise df.error(inst, "expected NONE or CMD <command>", hint="HEALTHCHECK CMD curl -f …")
    cmd = cmd.strip()
    parsed = D.parse_exec_form(cmd)
    test = ["CMD", *parsed] if parsed is not None else ["CMD-SHELL", cmd]
    out: dict[str, Any] = {"Test": test}
    names = {
        "interval": "Interval",
        "timeout": "Timeout",
        "start-period": "StartPeriod",
        "start-interval": "StartInterval",
    }
    for flag, key in names.items():
        if flag in inst.flags:
            try:
                out[key] = int(parse_duration(inst.flags[flag]) * 1e9)
            except (ValueError, TypeError) as exc:
                raise df.error(inst, f"--{flag}: {exc}") from None
    if "retries" in inst.flags:
        try:
            out["Retries"] = int(inst.flags["retries"])
        except ValueError:
            raise df.error(inst, "--retries must be a number") from None
    return out
