"""Concurrent creates: the ``containers`` lock covers only the name check and the record."""

from __future__ import annotations

import threading
from pathlib import Path

from composer.backends.native.containers import Containers
from composer.backends.native.images.store import ImageStore
from composer.backends.native.state import StateRoot
from composer.backends.native.volumes import Volumes
from composer.backends.specs import MountSpec
from composer.errors import Conflict
from tests.backends.native.test_backend_containers import small_image, spec, stub_launch


def _race(containers: Containers, store: ImageStore, specs: list[object]) -> list[object]:
    results: list[object] = [None] * len(specs)
    go = threading.Barrier(len(specs))

    def create(i: int) -> None:
        go.wait()
        try:
            results[i] = containers.create(specs[i], store.get("small:1"), stub_launch)  # type: ignore[arg-type]
        except Conflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_one_name_created_at_once_from_many_threads_gives_one_container(tmp_path: Path) -> None:
    root = StateRoot(tmp_path / "state").ensure()
    store = ImageStore(root)
    small_image(store)
    containers = Containers(root, Volumes(root))
    same = spec(mounts=(MountSpec("volume", "/anon"),))
    results = _race(containers, store, [same] * 6)
    made = [r for r in results if not isinstance(r, Conflict)]
    assert len(made) == 1
    assert all(isinstance(r, Conflict) for r in results if r is not made[0])
    # the losers left no directory and no anonymous volume behind
    assert [p.name for p in (root.path / "containers").iterdir()] == [made[0].id]  # type: ignore[attr-defined]
    anonymous = [v for v in containers.volumes.list() if v.anonymous]
    assert len(anonymous) == 2  # the winner's /anon and the image's /cache


def test_different_names_are_created_side_by_side(tmp_path: Path) -> None:
    root = StateRoot(tmp_path / "state").ensure()
    store = ImageStore(root)
    small_image(store)
    containers = Containers(root, Volumes(root))
    results = _race(containers, store, [spec(n) for n in range(1, 7)])
    assert not [r for r in results if isinstance(r, Conflict)]
    assert sorted(r.name for r in containers.records()) == [f"p-app-{n}" for n in range(1, 7)]
