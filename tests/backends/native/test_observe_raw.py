"""``observe.raw_records``: the records as JSON, for questions that need a field or two."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native import observe
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor.records import ContainerRecord, write_record


def _record(n: int, project: str) -> ContainerRecord:
    return ContainerRecord(
        id=f"{n:064x}", name=f"{project}-app-{n}", project=project, service="app",
        created_at=1.0, spec={"hostname": "h"}, launch={},
    )  # fmt: skip


def test_raw_records_are_the_records_undecoded_and_filtered_by_project(tmp_path: Path) -> None:
    root = StateRoot(tmp_path / "root")
    root.ensure()
    for n, project in ((1, "a"), (2, "a"), (3, "b")):
        write_record(root, _record(n, project))
    (root.path / "containers" / "junk").mkdir()  # a directory without a record is skipped
    raw = sorted(observe.raw_records(root, "a"), key=lambda d: d["id"])
    assert [d["name"] for d in raw] == ["a-app-1", "a-app-2"]
    assert raw[0]["spec"] == {"hostname": "h"}
    assert len(list(observe.raw_records(root))) == 3
    decoded = sorted(observe.scan(root, "a"), key=lambda r: r.id)
    assert decoded == [_record(1, "a"), _record(2, "a")]
    assert list(observe.raw_records(StateRoot(tmp_path / "none"))) == []
