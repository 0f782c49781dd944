"""``composer image …`` end to end, on the native store and on the Docker Engine.

Native runs use a state root in the test's tmp_path (``COMPOSER_ROOT``);
Docker runs use image names unique to the test and remove them afterwards
(no ``prune`` on the shared engine). The archive written by
``composer image save`` is checked by the engine itself: ``docker load``,
then ``docker run`` prints what the original image prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ops_support import engine_missing

SCRIPT = "ls /bin | head -3; cat /etc/passwd; echo done"


@dataclass
class Run:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()


def composer(*args: str, root: Path | None, cwd: Path, stdin: bytes | None = None) -> Run:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    environ["COMPOSE_ANSI"] = "never"
    if root is not None:
        environ["COMPOSER_ROOT"] = str(root)
    backend = ["--backend", "native" if root is not None else "docker"]
    proc = subprocess.run(
        [sys.executable, "-m", "composer", *backend, "image", *args],
        cwd=cwd,
        env=environ,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=180,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr.decode())


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(``docker save bb:latest``, its image id, its layer as a rootfs tarball)."""
    probe = subprocess.run(["docker", "image", "inspect", "bb:latest"], capture_output=True)
    if probe.returncode != 0:
        engine_missing("no Docker engine with bb:latest: run `bash scripts/engines.sh start`")
    where = tmp_path_factory.mktemp("bb")
    archive = where / "bb.tar"
    docker("save", "-o", str(archive), "bb:latest")
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tf.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    rootfs = where / "rootfs.tar"
    rootfs.write_bytes(layer)
    image_id = docker("image", "inspect", "-f", "{{.Id}}", "bb:latest").strip()
    return archive, image_id, rootfs


@pytest.fixture
def docker_names() -> Iterator[list[str]]:
    """Names the test gives images on the engine; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


def test_native_load_ls_inspect_rm(tmp_path: Path, bb: tuple[Path, str, Path]) -> None:
    archive, image_id, _ = bb
    root = tmp_path / "state"
    run = composer("load", "-i", str(archive), root=root, cwd=tmp_path)
    assert (run.code, run.text) == (0, "Loaded image: bb:latest\n"), run.err
    run = composer("ls", root=root, cwd=tmp_path)
    lines = run.text.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:3] == ["bb", "latest", image_id[7:19]]
    assert composer("ls", "-q", root=root, cwd=tmp_path).text == image_id[7:19] + "\n"
    row = json.loads(composer("ls", "--format", "json", root=root, cwd=tmp_path).text)
    assert (row["Repository"], row["Tag"], row["ID"]) == ("bb", "latest", image_id[7:19])
    inspected = json.loads(composer("inspect", "bb", root=root, cwd=tmp_path).text)
    engine = json.loads(docker("image", "inspect", "bb:latest"))
    assert inspected[0]["Id"] == image_id
    assert inspected[0]["RepoTags"] == ["bb:latest"]
    assert inspected[0]["RootFS"]["Layers"] == engine[0]["RootFS"]["Layers"]
    assert inspected[0]["Config"]["Cmd"] == engine[0]["Config"]["Cmd"]
    template = "{{.Id}} {{json .Config.Cmd}} {{.Config.Env}} {{.Os}}"
    ours = composer("inspect", "-f", template, "bb", root=root, cwd=tmp_path).text
    assert ours == docker("image", "inspect", "-f", template, "bb:latest")
    missing = composer("inspect", "bb", "nothere", root=root, cwd=tmp_path)
    assert missing.code == 1 and "No such image: nothere" in missing.err
    assert json.loads(missing.text)[0]["Id"] == image_id
    run = composer("rm", "bb", root=root, cwd=tmp_path)
    assert run.text == f"Untagged: bb:latest\nDeleted: {image_id}\n", run.err
    run = composer("rm", "bb", root=root, cwd=tmp_path)
    assert run.code == 1 and "No such image: bb" in run.err
    assert "Traceback" not in run.err
    assert composer("ls", "-q", root=root, cwd=tmp_path).text == ""


def test_native_import_with_changes_and_prune(tmp_path: Path, bb: tuple[Path, str, Path]) -> None:
    _, _, rootfs = bb
    root = tmp_path / "state"
    run = composer(
        "import",
        str(rootfs),
        "mine:1",
        "--change",
        'CMD ["echo", "hi"]',
        "-c",
        "ENV X=1",
        root=root,
        cwd=tmp_path,
    )
    assert run.code == 0, run.err
    image_id = run.text.strip()
    assert image_id.startswith("sha256:")
    config = json.loads(composer("inspect", "mine:1", root=root, cwd=tmp_path).text)[0]["Config"]
    assert config == {"Cmd": ["echo", "hi"], "Env": ["X=1"]}
    # from stdin, unnamed: a dangling image
    run = composer("import", "-", root=root, cwd=tmp_path, stdin=rootfs.read_bytes())
    dangling = run.text.strip()
    assert run.code == 0 and dangling != image_id, run.err
    dangling_ids = composer(
        "ls", "-q", "--no-trunc", "-f", "dangling=true", root=root, cwd=tmp_path
    )
    assert dangling_ids.text == f"{dangling}\n"
    named = composer("ls", "-q", "--filter", "reference=mine", root=root, cwd=tmp_path)
    assert named.text == f"{image_id[7:19]}\n"
    # prune asks first; "no" keeps everything
    run = composer("prune", root=root, cwd=tmp_path, stdin=b"n\n")
    assert "WARNING! This will remove all dangling images." in run.text
    assert len(composer("ls", "-q", root=root, cwd=tmp_path).text.split()) == 2
    run = composer("prune", "-f", root=root, cwd=tmp_path)
    assert f"deleted: {dangling}" in run.text and "Total reclaimed space:" in run.text
    run = composer("prune", "-a", "-f", root=root, cwd=tmp_path)
    assert "untagged: mine:1" in run.text and f"deleted: {image_id}" in run.text
    assert composer("ls", "-q", root=root, cwd=tmp_path).text == ""
    bad = composer("import", str(rootfs), "x", "-c", "RUN true", root=root, cwd=tmp_path)
    assert bad.code == 2 and "RUN is not allowed" in bad.err


def test_native_save_runs_on_docker(
    tmp_path: Path, bb: tuple[Path, str, Path], docker_names: list[str]
) -> None:
    _, _, rootfs = bb
    root = tmp_path / "state"
    name = f"composer-e2e-{uuid.uuid4().hex[:10]}:1"
    docker_names.append(name)
    run = composer("import", str(rootfs), name, root=root, cwd=tmp_path)
    assert run.code == 0, run.err
    imported = run.text.strip()
    run = composer("save", "-o", "out.tar", name, root=root, cwd=tmp_path)
    assert run.code == 0, run.err
    assert f"Loaded image: {name}" in docker("load", "-i", str(tmp_path / "out.tar"))
    assert docker("image", "inspect", "-f", "{{.Id}}", name).strip() == imported
    ours = docker("run", "--rm", name, "sh", "-c", SCRIPT)
    assert ours == docker("run", "--rm", "bb:latest", "sh", "-c", SCRIPT)
    # to stdout, and back in through stdin into another state root
    piped = composer("save", name, root=root, cwd=tmp_path)
    assert piped.code == 0 and piped.out[:512].strip(b"\0"), piped.err
    other = tmp_path / "other"
    run = composer("load", root=other, cwd=tmp_path, stdin=piped.out)
    assert run.text == f"Loaded image: {name}\n", run.err
    # an archive is never written to a terminal
    primary, secondary = os.openpty()
    try:
        env = {**os.environ, "COMPOSER_ROOT": str(root)}
        cmd = [sys.executable, "-m", "composer", "--backend", "native", "image", "save", name]
        done = subprocess.run(cmd, stdout=secondary, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 1 and b"cowardly refusing to save to a terminal" in done.stderr


def test_docker_backend_import_save_into_native(
    tmp_path: Path, bb: tuple[Path, str, Path], docker_names: list[str]
) -> None:
    _, _, rootfs = bb
    name = f"composer-e2e-{uuid.uuid4().hex[:10]}:2"
    docker_names.append(name)
    run = composer("import", str(rootfs), name, "-c", "WORKDIR /tmp", root=None, cwd=tmp_path)
    assert run.code == 0, run.err
    image_id = run.text.strip()
    assert docker("image", "inspect", "-f", "{{.Config.WorkingDir}}", name).strip() == "/tmp"
    listed = composer("ls", "--format", "json", root=None, cwd=tmp_path).text
    rows = [json.loads(line) for line in listed.splitlines()]
    repo, tag = name.split(":")
    assert any(r["Repository"] == repo and r["Tag"] == tag for r in rows)
    inspected = json.loads(composer("inspect", name, root=None, cwd=tmp_path).text)
    assert inspected[0]["Id"] == image_id
    run = composer("save", "-o", "d.tar", name, root=None, cwd=tmp_path)
    assert run.code == 0, run.err
    native = tmp_path / "state"
    run = composer("load", "-i", "d.tar", root=native, cwd=tmp_path)
    assert run.text == f"Loaded image: {name}\n", run.err
    assert composer("inspect", name, root=native, cwd=tmp_path).code == 0
    assert (
        json.loads(composer("inspect", name, root=native, cwd=tmp_path).text)[0]["Id"] == image_id
    )
    run = composer("rm", name, root=None, cwd=tmp_path)
    assert run.code == 0 and f"Untagged: {name}" in run.text, run.err
    missing = composer("inspect", name, root=None, cwd=tmp_path)
    assert missing.code == 1 and "Traceback" not in missing.err


def test_native_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an archive\n" * 100)
    root = tmp_path / "state"
    run = composer("load", "-i", "notes.txt", root=root, cwd=tmp_path)
    assert run.code == 1 and "notes.txt is not an image archive" in run.err
    run = composer("import", "notes.txt", "x", root=root, cwd=tmp_path)
    assert run.code == 1 and "not a valid tar archive" in run.err
    run = composer("import", "missing.tar", root=root, cwd=tmp_path)
    assert run.code == 1 and "missing.tar: no such file" in run.err
    run = composer("import", "notes.txt", "Bad:Name", root=root, cwd=tmp_path)
    assert run.code == 2 and "invalid reference format" in run.err
    run = composer("ls", root=Path("/proc/composer-no-such-root"), cwd=tmp_path)
    assert run.code == 1 and "cannot use the state root" in run.err
    run = composer("inspect", "-f", "{{range .RepoTags}}{{.}}{{end}}", "x", root=root, cwd=tmp_path)
    assert run.code == 1 and "not supported" in run.err
    assert composer("ls", "-q", root=root, cwd=tmp_path).text == ""
