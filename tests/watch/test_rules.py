"""Rules from a loaded project, and a batch mapped to one action per service."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import ConfigError
from composer.schema.loader import LoadOptions, load_project
from composer.schema.model import Project
from composer.watch.rules import config_paths, plan_batch, rules_of
from composer.watch.watcher import Change

COMPOSE = """
name: rules
services:
  web:
    image: bb:latest
    build: ./web
    develop:
      watch:
        - {path: ./web, action: sync, target: /app, ignore: [tmp]}
        - {path: ./web/requirements.txt, action: rebuild}
        - {path: ./web/conf, action: sync+restart, target: /etc/web}
  worker:
    image: bb:latest
    develop:
      watch:
        - {path: ./web/shared, action: sync+exec, target: /shared,
           exec: {command: [touch, /done], user: nobody}}
        - {path: ./worker, action: restart}
  db:
    image: bb:latest
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    for d in ("web/conf", "web/shared", "worker"):
        (tmp_path / d).mkdir(parents=True)
    return load_project(LoadOptions(working_dir=tmp_path, environ={}), lambda _: None)


def _changes(root: Path, *rels: str) -> list[Change]:
    return [Change(root / rel) for rel in rels]


def test_rules_of(project: Project, tmp_path: Path) -> None:
    rules = rules_of(project)
    assert [(r.service, r.action) for r in rules] == [
        ("web", "sync"),
        ("web", "rebuild"),
        ("web", "sync+restart"),
        ("worker", "sync+exec"),
        ("worker", "restart"),
    ]
    assert rules[0].root == tmp_path / "web"
    assert rules[0].filter.context == tmp_path / "web"
    assert [r.service for r in rules_of(project, ["worker"])] == ["worker", "worker"]
    assert rules_of(project, ["db"]) == []
    with pytest.raises(ConfigError, match="no such service: nope"):
        rules_of(project, ["nope"])
    assert config_paths(project) == [tmp_path / "compose.yaml"]


def test_a_save_of_many_files_restarts_once(project: Project, tmp_path: Path) -> None:
    plan = plan_batch(rules_of(project), _changes(tmp_path, "web/conf/a", "web/conf/b"))
    assert not plan.reload
    (web,) = plan.actions
    assert web.service == "web" and web.restart and not web.rebuild
    assert web.kind == "sync+restart"
    ((rule, changed),) = web.syncs.values()
    assert rule.target == "/etc/web" and list(changed) == ["a", "b"]


def test_most_specific_rule_wins(project: Project, tmp_path: Path) -> None:
    plan = plan_batch(rules_of(project), _changes(tmp_path, "web/app.py", "web/conf/x"))
    (web,) = plan.actions
    assert sorted(rule.target or "" for rule, _ in web.syncs.values()) == ["/app", "/etc/web"]
    assert web.restart


def test_rebuild_supersedes_the_rest_and_touches_only_its_service(
    project: Project, tmp_path: Path
) -> None:
    batch = _changes(tmp_path, "web/app.py", "web/requirements.txt", "worker/x")
    plan = plan_batch(rules_of(project), batch)
    kinds = {a.service: a.kind for a in plan.actions}
    assert kinds == {"web": "rebuild", "worker": "restart"}
    web = next(a for a in plan.actions if a.service == "web")
    assert not web.syncs and not web.restart


def test_one_path_feeds_every_service_that_watches_it(project: Project, tmp_path: Path) -> None:
    plan = plan_batch(rules_of(project), _changes(tmp_path, "web/shared/lib.py"))
    kinds = {a.service: a.kind for a in plan.actions}
    assert kinds == {"web": "sync", "worker": "sync+exec"}
    worker = next(a for a in plan.actions if a.service == "worker")
    assert worker.execs[0].exec is not None and worker.execs[0].exec.user == "nobody"


def test_ignored_and_unrelated_paths_do_nothing(project: Project, tmp_path: Path) -> None:
    batch = _changes(tmp_path, "web/tmp/x", "web/.app.py.swp", "web/.git/index", "elsewhere")
    assert plan_batch(rules_of(project), batch).actions == ()


def test_compose_file_change_asks_for_reload(project: Project, tmp_path: Path) -> None:
    plan = plan_batch(rules_of(project), _changes(tmp_path, "compose.yaml"), config_paths(project))
    assert plan.reload and plan.actions == ()


def test_sync_without_target_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: bb\n    develop:\n      watch:\n"
        "        - {path: ., action: sync}\n"
    )
    project = load_project(LoadOptions(working_dir=tmp_path, environ={}), lambda _: None)
    with pytest.raises(ConfigError, match="needs a target"):
        rules_of(project)


def test_early_batches_copy_files_and_closing_batches_do_the_rest(
    project: Project, tmp_path: Path
) -> None:
    from composer.watch.rules import early_syncs

    rules = rules_of(project)
    first = plan_batch(rules, _changes(tmp_path, "web/conf/a", "worker/x", "web/requirements.txt"))
    early = early_syncs(first)
    assert [(a.service, a.kind) for a in early] == []  # web rebuilds: nothing early
    first = plan_batch(rules, _changes(tmp_path, "web/conf/a", "worker/x", "web/index.html"))
    [web_early] = early_syncs(first)
    assert (web_early.service, web_early.kind, web_early.restart) == ("web", "sync", False)
    assert [rule.action for rule, _ in web_early.syncs.values()] == ["sync"]  # not sync+restart
    closing = plan_batch(
        rules,
        [Change(tmp_path / "web/conf/a", synced_early=True),
         Change(tmp_path / "web/index.html", synced_early=True),
         Change(tmp_path / "worker/x")],
    )  # fmt: skip
    web, worker = closing.actions
    # index.html was copied early; conf/a is copied with its restart, as one action.
    assert (web.service, web.kind) == ("web", "sync+restart")
    assert [list(changed) for _, changed in web.syncs.values()] == [["a"]]
    assert (worker.service, worker.kind) == ("worker", "restart")
    only_copied = plan_batch(rules, [Change(tmp_path / "web/index.html", synced_early=True)])
    assert only_copied.actions == ()
