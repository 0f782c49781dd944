"""The ``develop.watch`` rules of a project, and how a batch of changes maps onto them.

Pure: no engine, no clock. ``plan_batch`` turns a batch of changed host
paths into at most one ``ServiceAction`` per service:

* each path goes to one rule per service: the rule with the most specific
  ``path`` that accepts it (ties: the first declared), so that a
  ``rebuild`` rule on ``./requirements.txt`` wins over a ``sync`` of ``.``;
* a service with any ``rebuild`` path is rebuilt and nothing else (its new
  container starts from the new image); otherwise its sync paths are copied
  rule by rule, then each triggered ``sync+exec`` command runs once, then
  the service restarts once if any ``restart``/``sync+restart`` rule fired —
  one restart per save however many files the save touched;
* a change to a compose file or env file asks for a reload of the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import ConfigError
from composer.watch.filters import RuleFilter
from composer.watch.watcher import Change

if TYPE_CHECKING:
    from composer.schema.model import Project, ServiceHook

SYNC_ACTIONS = frozenset({"sync", "sync+restart", "sync+exec"})


@dataclass(frozen=True)
class Rule:
    """One ``develop.watch`` entry of one service, with its filter built."""

    service: str
    index: int
    action: str
    filter: RuleFilter
    target: str | None = None
    exec: ServiceHook | None = None
    initial_sync: bool = False

    @property
    def root(self) -> Path:
        return self.filter.root

    @property
    def syncs(self) -> bool:
        return self.action in SYNC_ACTIONS


@dataclass
class ServiceAction:
    """What one batch does to one service."""

    service: str
    rebuild: bool = False
    restart: bool = False
    syncs: dict[int, tuple[Rule, dict[str, bool]]] = field(default_factory=dict)
    """Per rule index: the rule and its changed paths (relative to the rule's
    path), each with whether it was created in the batch."""
    execs: list[Rule] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The word of the output line: rebuild, sync+exec, sync+restart, restart or sync."""
        if self.rebuild:
            return "rebuild"
        synced = bool(self.syncs)
        if self.execs:
            return "sync+exec" if synced else "exec"
        if self.restart:
            return "sync+restart" if synced else "restart"
        return "sync"


@dataclass(frozen=True)
class BatchPlan:
    """A batch mapped onto the rules: whether to reload, and one action per service."""

    reload: bool
    actions: tuple[ServiceAction, ...]


def rules_of(project: Project, services: Sequence[str] = ()) -> list[Rule]:
    """The rules of ``services`` (all services when empty) in declaration order."""
    wanted = list(services) or sorted(project.services)
    missing = [s for s in wanted if s not in project.services]
    if missing:
        raise ConfigError(
            f"no such service: {', '.join(missing)}",
            hint="services are: " + ", ".join(sorted(project.services)),
        )
    rules: list[Rule] = []
    for name in wanted:
        service = project.services[name]
        if service.develop is None:
            continue
        context, dockerfile = _build_context(project, name)
        for index, entry in enumerate(service.develop.watch):
            root = Path(project.working_dir, entry.path)
            if entry.action in SYNC_ACTIONS and not entry.target:
                raise ConfigError(
                    f"services.{name}.develop.watch[{index}]: action {entry.action} needs a target",
                    hint="set target: to the path in the container, such as /app",
                )
            if entry.action == "sync+exec" and entry.exec is None:
                raise ConfigError(
                    f"services.{name}.develop.watch[{index}]: sync+exec needs exec.command",
                    hint="add exec: {command: [...]} to the rule",
                )
            if entry.action == "rebuild" and service.build is None:
                raise ConfigError(
                    f"services.{name}.develop.watch[{index}]: rebuild needs a build section",
                    hint="add build: to the service, or use sync+restart",
                )
            rules.append(
                Rule(
                    service=name,
                    index=index,
                    action=entry.action,
                    filter=RuleFilter.build(root, entry.ignore, entry.include, context, dockerfile),
                    target=entry.target,
                    exec=entry.exec,
                    initial_sync=bool(entry.initial_sync),
                )
            )
    return rules


def _build_context(project: Project, name: str) -> tuple[Path | None, str | None]:
    build = project.services[name].build
    if build is None or "://" in build.context or build.context.startswith("git@"):
        return None, None
    return Path(project.working_dir, build.context), build.dockerfile


def config_paths(project: Project) -> list[Path]:
    """The files whose change reloads the model: compose files and env files."""
    return [Path(p) for p in [*project.config_files, *project.env_files] if p and p != "-"]


def plan_batch(
    rules: Sequence[Rule], changes: Iterable[Change], config_files: Iterable[Path] = ()
) -> BatchPlan:
    """Map a batch of changed paths onto the rules (see the module notes)."""
    configs = set(config_files)
    reload = False
    actions: dict[str, ServiceAction] = {}
    by_service: dict[str, list[Rule]] = {}
    for rule in rules:
        by_service.setdefault(rule.service, []).append(rule)
    for change in changes:
        path = change.path
        if path in configs:
            reload = True
        for service, service_rules in by_service.items():
            hit = _best_rule(service_rules, path)
            if hit is None:
                continue
            rule, rel = hit
            action = actions.setdefault(service, ServiceAction(service))
            action.paths.append(path)
            if rule.action == "rebuild":
                action.rebuild = True
                continue
            if rule.syncs and not (change.synced_early and rule.action == "sync"):
                synced = action.syncs.setdefault(rule.index, (rule, {}))[1]
                synced[rel] = synced.get(rel, False) or change.created
            if rule.action in ("restart", "sync+restart"):
                action.restart = True
            if rule.action == "sync+exec" and rule not in action.execs:
                action.execs.append(rule)
    for action in actions.values():
        if action.rebuild:
            action.syncs.clear()
            action.execs.clear()
            action.restart = False
    # A service whose only work was copied by the early sync has nothing left to do.
    busy = [s for s in sorted(actions) if _has_work(actions[s])]
    return BatchPlan(reload, tuple(actions[s] for s in busy))


def _has_work(action: ServiceAction) -> bool:
    return action.rebuild or action.restart or bool(action.syncs) or bool(action.execs)


def early_syncs(plan: BatchPlan) -> tuple[ServiceAction, ...]:
    """The plain ``sync`` copies of a plan, for an early batch.

    ``sync+restart`` and ``sync+exec`` copy with their restart or command in
    the closing batch, so that each stays one action; a rebuild copies nothing.
    """
    out = []
    for action in plan.actions:
        syncs = {i: rs for i, rs in action.syncs.items() if rs[0].action == "sync"}
        if action.rebuild or not syncs:
            continue
        out.append(ServiceAction(action.service, syncs=syncs, paths=action.paths))
    return tuple(out)


def _best_rule(rules: Sequence[Rule], path: Path) -> tuple[Rule, str] | None:
    best: tuple[Rule, str] | None = None
    for rule in rules:
        rel = rule.filter.relpath(path)
        if rel is None:
            continue
        if best is None or len(rule.root.parts) > len(best[0].root.parts):
            best = (rule, rel)
    return best
