"""Build an image from a Dockerfile without a daemon.

Each stage starts from its base image's layers; each filesystem step (RUN,
COPY, ADD, a WORKDIR that must create its directory) runs on an overlay of
those layers with a fresh upper directory, and the upper directory is
committed as the step's layer (``layer.py``) into the image store.
Metadata steps only change the config (``imageconfig.py``).

The cache key of a step chains the previous step's key (which starts at the
base image's id, so a cache entry can never be reused on another parent —
the CVE-2024-24557 class), the instruction as written, the build args in
scope for RUN, and the content checksum of COPY/ADD sources. Once a step
misses, every later key differs, so everything after it runs again. A build
where every step hits returns the image it produced last time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from composer.backends.native.build import dockerfile as D
from composer.backends.native.build import imageconfig as IC
from composer.backends.native.build.cachefile import write_cache_json
from composer.backends.native.build.context import BuildContext, ContextError
from composer.backends.native.build.words import expand
from composer.backends.native.images.store import ImageStore, StoredImage, chain_id, chain_ids
from composer.backends.native.state import read_json
from composer.backends.specs import BuildSpec
from composer.errors import BackendError, ComposerError, NotFound

if TYPE_CHECKING:
    from composer.backends.native.build.overlay import StepDirs
    from composer.backends.native.runtime.spec import RootfsSpec

# Mounting, copying and committing (overlay.py, copying.py, layer.py) are
# imported by the first step that misses the cache: a build that is all
# cache hits does not load them.

Log = Callable[[str], None]


class StepRunner(Protocol):
    """Runs a RUN step's command in its own namespaces on the step's overlay."""

    def run(
        self,
        *,
        rootfs: RootfsSpec,
        args: Sequence[str],
        env: Sequence[str],
        cwd: str,
        user: str,
        network: str,
        extra_hosts: Sequence[tuple[str, str]],
        shm_size: int | None,
        output: Callable[[bytes], None],
    ) -> int:
        """Return the command's exit code."""
        ...


class Puller(Protocol):
    """Fetches an image reference into the store and returns its id."""

    def __call__(self, ref: str, *, fresh: bool = False) -> str:
        """``fresh`` (``build.pull``): ask the registry even when the store has ``ref``."""
        ...


@dataclass
class _Stage:
    """A stage being built: its config, its layers and its running cache key."""

    index: int
    name: str | None
    config: dict[str, Any]
    layers: list[tuple[str, str]] = field(default_factory=list)
    """``(blob digest, diff id)``, bottom first."""
    key: str = ""
    args: dict[str, str] = field(default_factory=dict)
    """ARG values in scope (only those with a value)."""
    declared: set[str] = field(default_factory=set)


class BuildFailed(BackendError):
    """A step failed: names the Dockerfile line and, for RUN, the exit code."""


def _sha(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


class Builder:
    """Builds ``BuildSpec``s into an ``ImageStore``."""

    def __init__(
        self,
        store: ImageStore,
        *,
        runner: StepRunner | None,
        pull: Puller | None = None,
        log: Log | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.pull = pull
        self.log: Log = log or (lambda _line: None)
        self._step = 0
        self._no_cache = False
        self.extra_contexts: Mapping[str, str] = {}
        self._contexts: dict[str, BuildContext] = {}
        self._pulled: dict[str, str] = {}

    @property
    def cache_dir(self) -> Path:
        return self.store.root.images / "build-cache"

    # --- the whole build ----------------------------------------------------------

    def build(self, spec: BuildSpec) -> str:
        """Build ``spec``; tag the result with ``spec.tag`` and ``spec.tags``; return its id."""
        # The lease keeps a concurrent prune away from the layers committed so
        # far, which no image config references until the build ends.
        with self.store.lease():
            return self._build(spec)

    def _build(self, spec: BuildSpec) -> str:
        started = time.monotonic()
        self._no_cache = spec.no_cache
        self.extra_contexts = spec.additional_contexts
        self._contexts, self._pulled = {}, {}
        context = self.open_context(spec.context, spec.dockerfile)
        try:
            return self._build_in(spec, context, started)
        finally:
            for opened in self._contexts.values():
                opened.sums.save()

    def open_context(self, root: str, dockerfile: str | None = None) -> BuildContext:
        """The build context at ``root`` (once per build), its file digests remembered."""
        key = f"{root}\0{dockerfile}"
        if key not in self._contexts:
            self._contexts[key] = BuildContext.open(root, dockerfile, sums_dir=self.cache_dir)
        return self._contexts[key]

    def _build_in(self, spec: BuildSpec, context: BuildContext, started: float) -> str:
        df = self._dockerfile(spec, context)
        target = df.stage(spec.target)
        needed = self._needed(df, target)
        global_args = self._global_args(df, spec.args)
        results: dict[int, _Stage] = {}
        for stage in df.stages:
            if stage.index in needed:
                results[stage.index] = self._build_stage(
                    df, stage, results, context, spec, global_args, len(needed)
                )
        final = results[target.index]
        image_id = self._commit_image(final, spec)
        for ref in (spec.tag, *spec.tags):
            if ref:
                self.store.tag(ref, image_id)
        self.log(f"#{self._next()} DONE {time.monotonic() - started:.1f}s writing image {image_id}")
        return image_id

    def _dockerfile(self, spec: BuildSpec, context: BuildContext) -> D.Dockerfile:
        if spec.dockerfile_inline is not None:
            return D.parse(spec.dockerfile_inline, "Dockerfile (inline)")
        name = spec.dockerfile or "Dockerfile"
        path = Path(name) if os.path.isabs(name) else context.root / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContextError(
                f"Dockerfile not found: {path}", hint="check build.dockerfile and build.context"
            ) from None
        return D.parse(text, str(path))

    def _needed(self, df: D.Dockerfile, target: D.Stage) -> set[int]:
        """The target stage and every stage it copies from or builds on, transitively."""
        by_name = {s.name: s.index for s in df.stages if s.name}
        needed: set[int] = set()
        todo = [target.index]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            stage = df.stages[i]
            refs = [stage.base.lower()]
            refs += [inst.flags["from"] for inst in stage.instructions if "from" in inst.flags]
            for ref in refs:
                if ref in by_name and by_name[ref] < i:
                    todo.append(by_name[ref])
                elif ref.isdigit() and int(ref) < i:
                    todo.append(int(ref))
        return needed

    def _global_args(self, df: D.Dockerfile, build_args: Mapping[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for inst in df.global_args:
            for name, default in D.arg_defs(df, inst, values):
                if name in build_args:
                    values[name] = build_args[name]
                elif default is not None:
                    values[name] = default
        return values

    # --- one stage ----------------------------------------------------------------

    def _build_stage(
        self,
        df: D.Dockerfile,
        stage: D.Stage,
        done: Mapping[int, _Stage],
        context: BuildContext,
        spec: BuildSpec,
        global_args: Mapping[str, str],
        count: int,
    ) -> _Stage:
        label = f"[{stage.name} " if stage.name else "["
        total = len(stage.instructions) + 1
        base_ref = expand(stage.base, global_args, df.escape)
        self.log(f"#{self._next()} {label}1/{total}] FROM {base_ref}")
        state = self._base(df, stage, base_ref, done, spec)
        for trigger in state.config["config"].pop("OnBuild", None) or []:
            inst = D.parse(f"FROM scratch\n{trigger}\n", df.file).stages[0].instructions[0]
            self._step_one(df, inst, state, done, context, spec, global_args, f"{label}onbuild]")
        for n, inst in enumerate(stage.instructions, start=2):
            self._step_one(
                df, inst, state, done, context, spec, global_args, f"{label}{n}/{total}]"
            )
        return state

    def _base(
        self,
        df: D.Dockerfile,
        stage: D.Stage,
        ref: str,
        done: Mapping[int, _Stage],
        spec: BuildSpec,
    ) -> _Stage:
        earlier = {s.name: s.index for s in df.stages if s.name and s.index < stage.index}
        if ref.lower() in earlier:
            parent = done[earlier[ref.lower()]]
            return _Stage(
                stage.index,
                stage.name,
                IC.from_image(parent.config),
                list(parent.layers),
                _sha("stage", parent.key),
            )
        extra = self.extra_contexts.get(ref)
        named = extra is not None and extra.startswith("docker-image://")
        if named and extra is not None:
            ref = extra.removeprefix("docker-image://")
        if ref == "scratch":
            return _Stage(stage.index, stage.name, IC.scratch_config(), [], _sha("scratch"))
        # An image named by build.additional_contexts (another service's image,
        # often built just before) is taken as it is, never pulled again.
        image = self._image(ref, pull=spec.pull and not named)
        config = IC.from_image(image.config)
        layers = [(layer.blob, layer.diff_id) for layer in image.layers]
        return _Stage(stage.index, stage.name, config, layers, _sha("image", image.id))

    def _image(self, ref: str, *, pull: bool) -> StoredImage:
        """The base image ``ref``; with ``pull`` fetched from its registry once per build."""
        image_id = self._pulled.get(ref) if pull else self.store.resolve(ref)
        if image_id is None:
            if self.pull is None:
                raise NotFound(
                    f"image {ref} is not in the native image store",
                    hint=f"load or import it first (composer image load / import), or pull {ref}",
                )
            image_id = self.pull(ref, fresh=pull)
            if pull:
                self._pulled[ref] = image_id
        return self.store.image(image_id)

    def _step_one(
        self,
        df: D.Dockerfile,
        inst: D.Instruction,
        state: _Stage,
        done: Mapping[int, _Stage],
        context: BuildContext,
        spec: BuildSpec,
        global_args: Mapping[str, str],
        label: str,
    ) -> None:
        env = {**state.args, **IC.env_map(state.config)}
        if inst.keyword == "ARG":
            for name, default in D.arg_defs(df, inst, env):
                state.declared.add(name)
                if name in spec.args:
                    state.args[name] = spec.args[name]
                elif default is not None:
                    state.args[name] = default
                elif name in global_args:
                    state.args[name] = global_args[name]
            state.key = _sha(state.key, inst.original, json.dumps(sorted(state.args.items())))
            return
        history = IC.apply(df, inst, state.config, env)
        if history is not None:
            state.key = _sha(state.key, inst.original, json.dumps(env, sort_keys=True))
            before = len(state.layers)
            if inst.keyword == "WORKDIR":
                self._fs_step(state, lambda _dirs, root: self._workdir(state, root))
            state.config["history"].append(_history(history, empty=len(state.layers) == before))
            return
        number = self._next()
        self.log(f"#{number} {label} {inst.original.splitlines()[0]}")
        started = time.monotonic()
        try:
            if inst.keyword == "RUN":
                self._run(df, inst, state, spec, number, env)
            elif inst.keyword in ("COPY", "ADD"):
                self._copy(df, inst, state, done, context, env, number)
        except ComposerError:
            raise
        except OSError as exc:
            raise BuildFailed(f"{df.file}:{inst.line}: {inst.keyword}: {exc}") from exc
        self.log(f"#{number} DONE {time.monotonic() - started:.1f}s")

    # --- filesystem steps -----------------------------------------------------------

    def _lower_dirs(self, state: _Stage) -> list[Path]:
        dirs = []
        for chain in reversed(chain_ids([diff for _blob, diff in state.layers])):
            layer = self.store.layer(chain)
            if layer is None:
                raise NotFound(f"layer {chain} is missing from the image store")
            dirs.append(layer.diff_dir)
        return dirs

    def _fs_step(
        self, state: _Stage, body: Callable[[StepDirs, Path], None], *, number: int | None = None
    ) -> None:
        """Run ``body`` on the step's overlay (mounted on the host) unless cached; commit."""
        if self._reuse(state, number):
            return
        from composer.backends.native.build.overlay import mounted, step_dirs

        with step_dirs(self.store.root.tmp) as dirs:
            with mounted(
                dirs.lowers(self._lower_dirs(state)), dirs.merged, dirs.upper, dirs.work
            ) as merged:
                body(dirs, merged)
            self._commit_step(state, dirs)

    def _reuse(self, state: _Stage, number: int | None) -> bool:
        """Take the step's layer from the cache when its key is there (``#N CACHED``)."""
        cached = self._cached(state.key)
        if cached is None:
            return False
        if number is not None:
            self.log(f"#{number} CACHED")
        if not cached.get("empty"):
            blob, diff_id = cached["blob"], cached["diff_id"]
            chains = chain_ids([d for _b, d in state.layers])
            parent = chains[-1] if chains else None
            if self.store.layer(chain_id(parent, diff_id)) is None:
                # The blob outlived this chain (another chain holds the same
                # diff): unpack it here again, checked against its DiffID.
                self.store.add_layer(blob, parent=parent, diff_id=diff_id)
            state.layers.append((blob, diff_id))
        return True

    def _commit_step(self, state: _Stage, dirs: StepDirs) -> None:
        from composer.backends.native.build.layer import commit_upper

        layer = commit_upper(dirs.upper, dirs.base / "layer.tar")
        if layer.empty:
            self._remember(state.key, {"empty": True})
            return
        parent = chain_ids([d for _b, d in state.layers])
        info = self.store.commit_layer(
            layer.path,
            dirs.upper,
            diff_id=layer.diff_id,
            parent=parent[-1] if parent else None,
            size=layer.content_size,
        )
        state.layers.append((info.blob, info.diff_id))
        self._remember(state.key, {"blob": info.blob, "diff_id": info.diff_id})

    def _workdir(self, state: _Stage, root: Path) -> None:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            from composer.backends.native.build.copying import make_dirs

            make_dirs(fd, IC.workdir_of(state.config))
        finally:
            os.close(fd)

    def _run(
        self,
        df: D.Dockerfile,
        inst: D.Instruction,
        state: _Stage,
        spec: BuildSpec,
        number: int,
        env: Mapping[str, str],
    ) -> None:
        argv = D.command(inst, IC.shell_of(state.config))
        image_env = IC.env_map(state.config)
        run_env = {"PATH": IC.DEFAULT_PATH, **state.args, **image_env}
        network = inst.flags.get("network") or spec.network or "default"
        state.key = _sha(
            state.key, "RUN", json.dumps(argv), json.dumps(sorted(state.args.items())), network
        )
        before = len(state.layers)
        try:
            self._run_step(df, inst, state, spec, number, argv, run_env, network)
        finally:
            text = f"RUN {json.dumps(list(argv))}"
            state.config["history"].append(_history(text, empty=len(state.layers) == before))

    def _run_step(
        self,
        df: D.Dockerfile,
        inst: D.Instruction,
        state: _Stage,
        spec: BuildSpec,
        number: int,
        argv: Sequence[str],
        run_env: Mapping[str, str],
        network: str,
    ) -> None:
        if self.runner is None:
            raise BuildFailed(f"{df.file}:{inst.line}: RUN needs the native runtime")
        runner = self.runner
        started = time.monotonic()

        def output(data: bytes) -> None:
            text = data.decode("utf-8", "replace")
            for line in text.splitlines():
                self.log(f"#{number} {time.monotonic() - started:.3f} {line}")

        if self._reuse(state, number):
            return
        from composer.backends.native.build.overlay import step_dirs
        from composer.backends.native.runtime.spec import RootfsSpec

        with step_dirs(self.store.root.tmp) as dirs:
            rootfs = RootfsSpec(
                mountpoint=str(dirs.merged),
                lowerdirs=dirs.lowers(self._lower_dirs(state)),
                upperdir=str(dirs.upper),
                workdir=str(dirs.work),
            )
            code = runner.run(
                rootfs=rootfs,
                args=argv,
                env=tuple(f"{k}={v}" for k, v in run_env.items()),
                cwd=IC.workdir_of(state.config),
                user=str(state.config["config"].get("User") or ""),
                network=network,
                extra_hosts=spec.extra_hosts,
                shm_size=spec.shm_size,
                output=output,
            )
            _drop_mount_stubs(dirs.upper)
            if code != 0:
                raise BuildFailed(
                    f"{df.file}:{inst.line}: RUN {inst.args.splitlines()[0] if inst.args else ''}"
                    f" failed with exit code {code}",
                    hint="the step's output is above",
                )
            self._commit_step(state, dirs)

    def _copy(
        self,
        df: D.Dockerfile,
        inst: D.Instruction,
        state: _Stage,
        done: Mapping[int, _Stage],
        context: BuildContext,
        env: Mapping[str, str],
        number: int,
    ) -> None:
        from composer.backends.native.build.copy_step import plan_copy

        plan = plan_copy(self, df, inst, state.config, done, context, env)
        state.key = _sha(state.key, inst.original, plan.checksum, plan.owner_text)
        before = len(state.layers)
        self._fs_step(state, plan.apply, number=number)
        text = f"{inst.keyword} {inst.args.splitlines()[0] if inst.args else ''}"
        state.config["history"].append(_history(text, empty=len(state.layers) == before))

    # --- cache and commit -------------------------------------------------------------

    def _cached(self, key: str) -> dict[str, Any] | None:
        if self._no_cache:
            return None  # --no-cache: every step runs; its result still refreshes the cache
        path = self.cache_dir / f"{key.removeprefix('sha256:')}.json"
        try:
            entry = read_json(path)
        except (FileNotFoundError, ValueError):
            return None  # a cache file cut short by a crash is a miss too (``cachefile``)
        if not isinstance(entry, dict):
            return None
        if entry.get("empty"):
            return entry
        blob, diff_id = entry.get("blob"), entry.get("diff_id")
        if not isinstance(blob, str) or not isinstance(diff_id, str):
            return None
        try:
            if not self.store.has_blob(blob):
                return None  # the layer was pruned since: build the step again
        except ValueError:
            return None
        return entry

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        write_cache_json(self.cache_dir / f"{key.removeprefix('sha256:')}.json", entry)

    def _commit_image(self, final: _Stage, spec: BuildSpec) -> str:
        config = final.config
        if spec.labels:
            labels = dict(config["config"].get("Labels") or {})
            labels.update(spec.labels)
            config["config"]["Labels"] = labels
        config["rootfs"] = {"type": "layers", "diff_ids": [d for _b, d in final.layers]}
        final_key = _sha(final.key, json.dumps(dict(spec.labels), sort_keys=True))
        cached = self._cached(final_key)
        if cached is not None and self.store.has_image(str(cached.get("image"))):
            return str(cached["image"])
        config["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        raw = json.dumps(config, separators=(",", ":")).encode()
        image_id = self.store.put_image(raw, [b for b, _d in final.layers])
        self._remember(final_key, {"empty": True, "image": image_id})
        return image_id

    def _next(self) -> int:
        self._step += 1
        return self._step


_STUBS = ("etc/hosts", "etc/resolv.conf", "etc/hostname")


def _drop_mount_stubs(upper: Path) -> None:
    """Remove the empty files a RUN's bind mounts left as mount points (never part of a layer)."""
    for rel in _STUBS:
        path = upper / rel
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
                path.unlink()
    etc = upper / "etc"
    with contextlib.suppress(OSError):
        opaque = "trusted.overlay.opaque" in os.listxattr(etc)
        if etc.is_dir() and not any(etc.iterdir()) and not opaque:
            etc.rmdir()


def _history(created_by: str, *, empty: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": created_by,
        "comment": "composer",
    }
    if empty:
        entry["empty_layer"] = True
    return entry
