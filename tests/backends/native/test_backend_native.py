"""What only the native backend does, checked inside real containers: mounts, configs and
secrets with owner and mode, volumes filled from the image, cp on a stopped container,
container roots for watch, and the error when a bind source must exist."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from composer.backends.specs import MountSpec
from composer.errors import Conflict, NotFound


def run(backend: Any, cid: str, *command: str) -> tuple[int, str]:
    out, err = io.BytesIO(), io.BytesIO()
    code = backend.exec_run(cid, list(command), stdout=out, stderr=err)
    return code, (out.getvalue() + err.getvalue()).decode()


def started(backend: Any, spec: Any) -> str:
    cid = str(backend.create_container(spec))
    backend.start_container(cid)
    return cid


def test_mounts_inside_the_container(native_backend: Any, specs: Any, tmp_path: Path) -> None:
    b = native_backend
    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "from-host").write_text("hello")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("s3cret")
    spec = specs.container(
        mounts=(
            MountSpec("bind", "/ro", str(host), read_only=True),
            MountSpec("bind", "/made", str(tmp_path / "made-by-composer")),
            MountSpec("tmpfs", "/scratch", tmpfs_size=1 << 20),
            MountSpec("volume", "/etc-copy", specs.volume().name),
            MountSpec(
                "secret", "/run/secrets/token", str(secret_file), uid="1000", gid="1000", mode=0o400
            ),
            MountSpec("config", "/etc/app.conf", content="key=value\n"),
        ),
    )
    cid = started(b, spec)
    assert run(b, cid, "cat", "/ro/from-host") == (0, "hello")
    code, text = run(b, cid, "touch", "/ro/nope")
    assert code != 0 and "Read-only" in text
    assert (tmp_path / "made-by-composer").is_dir()
    code, text = run(b, cid, "sh", "-c", "grep ' /scratch ' /proc/mounts")
    assert code == 0 and "tmpfs" in text and "size=1024k" in text, text
    assert run(b, cid, "stat", "-c", "%u:%g %a", "/run/secrets/token") == (0, "1000:1000 400\n")
    assert run(b, cid, "cat", "/run/secrets/token") == (0, "s3cret")
    assert run(b, cid, "stat", "-c", "%a", "/etc/app.conf") == (0, "444\n")
    code, text = run(b, cid, "sh", "-c", "echo x > /etc/app.conf")
    assert code != 0
    # The new named volume was filled from the image's content at /etc-copy: nothing there
    # in bb:latest, so it stays empty; mounted over /etc instead it would hold passwd.
    assert run(b, cid, "ls", "-A", "/etc-copy") == (0, "")


def test_new_volume_is_filled_from_the_image(native_backend: Any, specs: Any) -> None:
    b = native_backend
    etc = specs.volume("etc")
    image_etc: set[str] = set()
    for layer in b.images.get("bb:latest").layer_dirs:
        if (layer / "etc").is_dir():
            image_etc.update(os.listdir(layer / "etc"))
    assert image_etc
    spec = specs.container(mounts=(MountSpec("volume", "/etc", etc.name),))
    cid = started(b, spec)
    code, listing = run(b, cid, "ls", "-A", "/etc")
    assert code == 0 and image_etc <= set(listing.split())
    data = b.volumes.data_dir(etc.name)
    assert image_etc <= set(os.listdir(data))
    b.remove_container(cid, force=True, volumes=True)
    assert b.volumes.exists(etc.name)  # named volumes outlive their containers


def test_missing_bind_source_is_an_error_when_it_may_not_be_created(
    native_backend: Any, specs: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "absent"
    spec = specs.container(
        mounts=(MountSpec("bind", "/x", str(missing), bind_create_host_path=False),)
    )
    with pytest.raises(NotFound, match="bind source path does not exist"):
        native_backend.create_container(spec)
    assert not missing.exists()
    assert native_backend.observe(specs.project).containers == ()


def test_copy_into_a_stopped_container_and_container_roots(native_backend: Any, specs: Any) -> None:
    b = native_backend
    spec = specs.container()
    cid = b.create_container(spec)
    with pytest.raises(Conflict):
        b.container_root(cid)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("greeting")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    b.copy_to(cid, "/tmp", buffer.getvalue())
    assert b.stat_path(cid, "/tmp/greeting").size == 2
    b.start_container(cid)
    assert run(b, cid, "cat", "/tmp/greeting") == (0, "hi")
    root = b.container_root(cid)
    assert (root / "tmp" / "greeting").read_text() == "hi"
    (root / "tmp" / "from-watch").write_text("direct")
    assert run(b, cid, "cat", "/tmp/from-watch") == (0, "direct")


def test_exec_runs_as_the_container_would(native_backend: Any, specs: Any) -> None:
    b = native_backend
    spec = specs.container(environment={"GREETING": "hello"}, working_dir="/tmp")
    cid = started(b, spec)
    assert run(b, cid, "sh", "-c", "echo $GREETING; pwd") == (0, "hello\n/tmp\n")
    out = io.BytesIO()
    code = b.exec_run(
        cid, ["sh", "-c", "id -u; pwd; echo $X"], user="1000", workdir="/", env={"X": "y"},
        stdout=out,
    )  # fmt: skip
    assert (code, out.getvalue()) == (0, b"1000\n/\ny\n")
    code, text = run(b, cid, "sh", "-c", "grep CapEff /proc/self/status")
    assert "00000000a80425fb" in text
    with pytest.raises(NotFound, match="nosuchcommand"):
        run(b, cid, "nosuchcommand")


def test_etc_files_name_the_container(native_backend: Any, specs: Any) -> None:
    b = native_backend
    b.create_network(specs.network())
    spec = specs.container(networks=(specs.attach(),), hostname="myhost")
    cid = started(b, spec)
    assert run(b, cid, "hostname") == (0, "myhost\n")
    code, hosts = run(b, cid, "cat", "/etc/hosts")
    ours = [line.split() for line in hosts.splitlines() if "myhost" in line.split()[1:]]
    assert code == 0 and len(ours) == 1, hosts
    assert spec.name in ours[0]
    code, resolv = run(b, cid, "cat", "/etc/resolv.conf")
    gateway = b.networks.inspect(specs.network().name).gateway
    assert resolv.splitlines()[0] == f"nameserver {gateway}"
    code, found = run(b, cid, "nslookup", spec.name)
    assert code == 0 and ours[0][0] in found, found


def test_exec_with_a_tty_gets_a_terminal_of_the_container(native_backend: Any, specs: Any) -> None:
    b = native_backend
    cid = started(b, specs.container())
    out = io.BytesIO()
    code = b.exec_run(cid, ["sh", "-c", "tty; exit 3"], tty=True, stdout=out)
    assert code == 3
    assert out.getvalue().replace(b"\r", b"").startswith(b"/dev/pts/"), out.getvalue()
    fed = io.BytesIO()
    code = b.exec_run(cid, ["head", "-n1"], tty=True, stdin=io.BytesIO(b"typed\n"), stdout=fed)
    assert code == 0 and b"typed" in fed.getvalue()


def test_joining_another_containers_network_is_resolved_at_each_start(
    native_backend: Any, specs: Any
) -> None:
    b = native_backend
    owner_spec = specs.container("owner")
    owner = b.create_container(owner_spec)
    side = b.create_container(specs.container("side", network_mode=f"container:{owner_spec.name}"))
    with pytest.raises(Conflict, match="not running"):
        b.start_container(side)
    b.start_container(owner)
    b.start_container(side)

    def netns(cid: str) -> str:
        return str(os.readlink(b.container_root(cid).parent / "ns" / "net"))

    assert netns(side) == netns(owner)
    for cid in (side, owner):
        b.stop_container(cid, timeout=1)
    b.start_container(owner)
    b.start_container(side)
    assert netns(side) == netns(owner)
