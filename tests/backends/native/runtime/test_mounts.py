"""The container's filesystem: Docker's mounts and devices, masks, and hostile images.

The malicious-rootfs cases follow CVE-2025-31133 / CVE-2025-52565: an image
that replaces ``/dev``, ``/proc`` or a mount target with a symlink must not
make the runtime mount over a host path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from composer.backends.native.runtime import masks, mounts, paths
from composer.backends.native.runtime.mounts import MountError
from composer.backends.native.runtime.report import LaunchError
from composer.backends.native.runtime.spec import MountEntry, RootfsSpec

from .conftest import Box


def mount_table(box: Box, **overrides: object) -> dict[str, tuple[str, str, set[str]]]:
    out = box.sh("cat /proc/mounts", **overrides).out
    table = {}
    for line in out.splitlines():
        src, target, fstype, opts = line.split()[:4]
        table[target] = (src, fstype, set(opts.split(",")))
    return table


def test_dockers_default_mounts_with_their_options(box: Box) -> None:
    t = mount_table(box)
    assert t["/"][1] == "overlay"
    assert t["/proc"][1] == "proc" and {"nosuid", "nodev", "noexec"} <= t["/proc"][2]
    assert t["/dev"][1] == "tmpfs" and {"nosuid", "size=65536k", "mode=755"} <= t["/dev"][2]
    assert t["/dev/pts"][1] == "devpts"
    assert {"nosuid", "noexec", "gid=5", "mode=620", "ptmxmode=666"} <= t["/dev/pts"][2]
    assert t["/dev/shm"][:2] == ("shm", "tmpfs")
    assert {"nosuid", "nodev", "noexec", "size=65536k"} <= t["/dev/shm"][2]
    assert t["/dev/mqueue"][1] == "mqueue"
    assert t["/sys"][1] == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= t["/sys"][2]
    assert t["/sys/fs/cgroup"][1] in ("tmpfs", "cgroup2")
    for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"):
        assert "ro" in t[p][2], p
    if os.path.exists("/proc/sysrq-trigger"):
        assert "ro" in t["/proc/sysrq-trigger"][2]


def test_cgroup_hierarchies_are_read_only_and_show_our_own_cgroup(box: Box) -> None:
    spec = box.spec("sh", "-c", "grep ' /sys/fs/cgroup/' /proc/mounts; cat /proc/self/cgroup")
    r = box.run(spec)
    v1 = [line for line in r.out.splitlines() if line.startswith("cgroup ")]
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert v1 and all(" ro," in line for line in v1)
    assert spec.cgroup is not None
    assert f":/{spec.cgroup.path}" in r.out


def test_shm_size(box: Box) -> None:
    r = box.sh("df -k /dev/shm | awk 'NR==2 {print $2}'", shm_size=8 * 1024 * 1024)
    assert r.out == "8192\n"


def test_dev_has_exactly_dockers_nodes_and_links(box: Box) -> None:
    r = box.sh("ls /dev | tr '\\n' ' '; echo; ls -l /dev/null /dev/ptmx /dev/fd /dev/stdout")
    names = r.out.splitlines()[0].split()
    expected = {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr"}
    expected |= {"stdin", "stdout", "tty", "urandom", "zero"}
    if os.path.exists("/proc/kcore"):
        expected.add("core")
    assert set(names) == expected
    assert "crw-rw-rw-" in r.out and "1,   3" in r.out
    assert "ptmx -> pts/ptmx" in r.out and "fd -> /proc/self/fd" in r.out
    assert "stdout -> /proc/self/fd/1" in r.out


def test_masked_paths_are_empty(box: Box) -> None:
    r = box.sh(
        "for f in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug; do"
        "  [ -e $f ] && echo $f=$(wc -c < $f); done;"
        " for d in /proc/acpi /sys/firmware /proc/scsi; do"
        "  [ -d $d ] && echo $d=$(ls $d | wc -l); done;"
        " touch /proc/acpi/x 2>&1 | grep -c Read-only"
    )
    lines = r.out.splitlines()
    assert lines[-1] == "1" or not os.path.isdir("/proc/acpi")
    for line in lines[:-1]:
        assert line.endswith("=0"), line


def test_privileged_unmasks_and_keeps_sys_writable(box: Box) -> None:
    from composer.backends.native.runtime.caps import all_caps

    t = mount_table(
        box, privileged=True, masked_paths=(), readonly_paths=(), capabilities=all_caps()
    )
    assert "/proc/keys" not in t and "/proc/sys" not in t
    assert "rw" in t["/sys"][2]


def test_user_mounts_land_at_symlinked_targets_inside_the_root(
    box: Box, lower: Path, tmp_path: Path
) -> None:
    # The image's /etc/hosts is a link to a file *outside* the root when
    # resolved on the host; in the root it resolves to /etc/real-hosts.
    image = tmp_path / "image"
    shutil.copytree(lower, image, symlinks=True)
    (image / "etc/real-hosts").write_text("image's file\n")
    os.symlink("../../../../../../../../etc/real-hosts", image / "etc/hosts")
    canary = tmp_path / "hosts-from-host"
    canary.write_text("ours\n")
    spec = box.spec(
        "sh",
        "-c",
        "cat /etc/real-hosts",
        rootfs=RootfsSpec(str(tmp_path / "rootfs"), (str(image),), None, None),
        mounts=(MountEntry("/etc/hosts", "bind", str(canary), ("rbind",)),),
    )
    (tmp_path / "rootfs").mkdir()
    assert box.run(spec).out == "ours\n"
    with open("/etc/hosts") as f:
        assert "ours" not in f.read()


@pytest.mark.parametrize("name", ["dev", "proc", "sys"])
def test_image_replacing_a_default_target_with_a_symlink_is_refused(
    box: Box, lower: Path, tmp_path: Path, name: str
) -> None:
    image = tmp_path / "image"
    shutil.copytree(lower, image, symlinks=True)
    shutil.rmtree(image / name)
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    os.symlink(str(host_dir), image / name)  # absolute: a host path if resolved on the host
    (tmp_path / "rootfs").mkdir()
    spec = box.spec("true", rootfs=RootfsSpec(str(tmp_path / "rootfs"), (str(image),), None, None))
    with pytest.raises(LaunchError) as info:
        box.start(spec)
    assert f"/{name}" in info.value.message or "symbolic links" in info.value.message
    with open("/proc/self/mountinfo") as f:
        assert str(host_dir) not in f.read()


def test_image_dev_null_symlink_does_not_matter_because_dev_is_ours(
    box: Box, lower: Path, tmp_path: Path
) -> None:
    image = tmp_path / "image"
    shutil.copytree(lower, image, symlinks=True)
    os.symlink("/proc/sys/kernel/core_pattern", image / "dev/null")
    os.symlink("/proc/sys/kernel/core_pattern", image / "dev/console")
    (tmp_path / "rootfs").mkdir()
    spec = box.spec(
        "sh",
        "-c",
        "ls -l /dev/null; grep ' /proc/keys ' /proc/mounts | cut -d' ' -f1",
        rootfs=RootfsSpec(str(tmp_path / "rootfs"), (str(image),), None, None),
    )
    out = box.run(spec).out
    assert out.startswith("crw-rw-rw-")
    assert "core_pattern" not in out


def test_mask_source_must_be_the_null_device(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    (root / "dev/null").write_text("not a device")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(MountError, match="not the null device"):
            masks.null_device(fd)
        os.unlink(root / "dev/null")
        os.symlink("/dev/null", root / "dev/null")  # the host's real one, through a link
        with pytest.raises(OSError):
            masks.null_device(fd)
    finally:
        os.close(fd)


def test_open_in_root_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("host secret")
    os.symlink("../../secret", root / "etc/rel")
    os.symlink(str(tmp_path / "secret"), root / "etc/abs")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        assert paths.read_in_root(fd, "/etc/rel") is None
        assert paths.read_in_root(fd, "/etc/abs") is None
        (root / "secret").write_text("inside")
        assert paths.read_in_root(fd, "/etc/rel") == b"inside"
        with pytest.raises(OSError):
            paths.open_in_root(fd, "/etc/rel", strict=True)
        with pytest.raises(OSError):
            paths.mkdirs_in_root(fd, "/a/../../b")
    finally:
        os.close(fd)


def test_option_parsing() -> None:
    from composer.backends.native.runtime import syscalls as S

    flags, prop, data = mounts.parse_options(["rbind", "ro", "nosuid", "rprivate", "size=1m"])
    assert flags == S.MS_BIND | S.MS_REC | S.MS_RDONLY | S.MS_NOSUID
    assert prop == S.MS_PRIVATE | S.MS_REC
    assert data == "size=1m"
    assert mounts.parse_options(["ro", "rw"])[0] == 0


def test_host_ipc_namespace_shares_the_hosts_dev_shm(box: Box) -> None:
    from composer.backends.native.runtime.spec import NamespaceSpec

    name = f"composer-test-{os.getpid()}-{id(box)}"
    with open(f"/dev/shm/{name}", "w") as f:
        f.write("from host")
    try:
        namespaces = tuple(NamespaceSpec(t) for t in ("mnt", "uts", "pid", "net"))
        r = box.sh(f"cat /dev/shm/{name}", namespaces=namespaces)
    finally:
        os.unlink(f"/dev/shm/{name}")
    assert r.out == "from host"


def test_privileged_gets_the_hosts_devices(box: Box) -> None:
    import stat

    from composer.backends.native.runtime.caps import all_caps

    expected = sorted(
        e.name
        for e in os.scandir("/dev")
        if e.name not in ("console", "ptmx")
        and stat.S_IFMT(e.stat(follow_symlinks=False).st_mode) in (stat.S_IFBLK, stat.S_IFCHR)
    )
    r = box.sh(
        "for f in /dev/*; do [ -b $f -o -c $f ] && echo ${f#/dev/}; done",
        privileged=True,
        capabilities=all_caps(),
        seccomp="unconfined",
        masked_paths=(),
        readonly_paths=(),
    )
    got = sorted(n for n in r.out.split() if n not in ("console", "ptmx"))
    assert got == expected


def test_many_layers_beyond_one_page_of_mount_options(
    box: Box, lower: Path, tmp_path: Path
) -> None:
    """The overlay option string is limited to a page: long layer lists use relative names."""
    layers = []
    for i in range(60):
        layer = tmp_path / "layers" / f"{i:02d}-{'x' * 64}" / "diff"
        layer.mkdir(parents=True)
        (layer / f"layer-{i:02d}").write_text(str(i))
        layers.append(str(layer))
    (tmp_path / "layers/upper").mkdir()
    (tmp_path / "layers/work").mkdir()
    (tmp_path / "rootfs").mkdir()
    lowerdirs = (*reversed(layers), str(lower))
    assert len(":".join(lowerdirs)) > 4096
    spec = box.spec(
        "sh",
        "-c",
        "ls / | grep -c '^layer-'",
        rootfs=RootfsSpec(
            str(tmp_path / "rootfs"),
            lowerdirs,
            str(tmp_path / "layers/upper"),
            str(tmp_path / "layers/work"),
        ),
    )
    assert box.run(spec).out == "60\n"


def test_image_passwd_symlink_to_a_host_file_is_read_inside_the_root(
    box: Box, lower: Path, tmp_path: Path
) -> None:
    """Users are resolved from the image's files; a link cannot make us read the host's."""
    image = tmp_path / "image"
    shutil.copytree(lower, image, symlinks=True)
    os.unlink(image / "etc/passwd")
    fake_host = tmp_path / "host-passwd"
    fake_host.write_text("intruder:x:0:0::/:/bin/sh\n")
    os.symlink(str(fake_host), image / "etc/passwd")  # absolute: host path if followed on the host
    (tmp_path / "rootfs").mkdir()
    spec = box.spec(
        "true",
        user="intruder",
        rootfs=RootfsSpec(str(tmp_path / "rootfs"), (str(image),), None, None),
    )
    with pytest.raises(LaunchError, match="unable to find user intruder"):
        box.start(spec)
