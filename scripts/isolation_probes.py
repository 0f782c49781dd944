"""Run the 20 isolation probes in a native container and in `docker run`, side by side.

    .venv/bin/python scripts/isolation_probes.py [--native-only]

The native container is started by the runtime itself (translate → launch)
on a rootfs made from busybox-static the way `scripts/engines.sh` makes
bb:latest; the Docker column comes from `docker run --rm bb:latest`. Each
probe prints one normalised line, so the two columns can be compared as
text (tests/backends/native/runtime/test_probes.py asserts they match).
Needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBES: tuple[tuple[int, str, str], ...] = (
    (1, "CapEff", "grep CapEff /proc/self/status | cut -f2"),
    (2, "Seccomp", "grep '^Seccomp:' /proc/self/status | cut -f2"),
    (3, "NoNewPrivs", "grep NoNewPrivs /proc/self/status | cut -f2"),
    (4, "uid_map", "cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'"),
    (
        5,
        "numeric /proc entries",
        "n=$(ls /proc | grep -c '^[0-9][0-9]*$'); "
        "if [ $n -lt 10 ]; then echo 'a handful'; else echo \"$n (host pids?)\"; fi",
    ),
    (6, "unshare -U true", 'unshare -U true 2>&1; echo "rc=$?"'),
    (7, "mount tmpfs", 'mkdir -p /mnt; mount -t tmpfs none /mnt 2>&1; echo "rc=$?"'),
    (8, "write /proc/sys", '(echo x > /proc/sys/kernel/hostname) 2>&1; echo "rc=$?"'),
    (9, "mkdir in cgroupfs", 'mkdir /sys/fs/cgroup/memory/x 2>&1; echo "rc=$?"'),
    (
        10,
        "masked /proc files",
        "echo keys=$(wc -c < /proc/keys) timer_list=$(wc -c < /proc/timer_list)"
        " acpi=$(ls /proc/acpi | wc -l)",
    ),
    (11, "ls /dev", "ls /dev | tr '\\n' ' '"),
    (
        12,
        "mknod + open",
        "mknod /tmp/sda b 8 0 && echo -n 'mknod ok; '; head -c1 /tmp/sda 2>&1 >/dev/null;"
        ' echo "rc=$?"; rm -f /tmp/sda',
    ),
    (13, "ping 127.0.0.1", "ping -c1 -W2 127.0.0.1 >/dev/null 2>&1 && echo works || echo fails"),
    (14, "hostname probe", 'hostname probe 2>&1; echo "rc=$?"'),
    (15, "dmesg", 'dmesg 2>&1 >/dev/null | head -1; echo "rc=$?"'),
    (16, "ip link add dummy", 'ip link add d0 type dummy 2>&1; echo "rc=$?"'),
    (17, "chroot / true", "chroot / true 2>&1 && echo allowed || echo denied"),
    (18, "df /dev/shm", "df -k /dev/shm | awk 'NR==2 {print $2 \" KiB\"}'"),
    (
        19,
        "ro in /proc/mounts",
        "for p in /sys /proc/sys /proc/bus /proc/fs /proc/irq; do "
        'awk -v p=$p \'$2==p {split($4,o,","); printf "%s=%s ", p, o[1]}\' /proc/mounts; done',
    ),
    (20, "ip_unprivileged_port_start", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
)

BUSYBOX = "/bin/busybox"
TEST_IMAGE = "bb:latest"


def script() -> str:
    """One shell script that prints ``### n`` before each probe's output."""
    return "\n".join(f"echo '### {n}'; {{ {cmd}; }}; echo" for n, _, cmd in PROBES) + "\n"


def parse(output: str) -> dict[int, str]:
    results: dict[int, str] = {}
    current: int | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith("### "):
            if current is not None:
                results[current] = " ".join(x.strip() for x in lines if x.strip())
            current = int(line[4:])
            lines = []
        else:
            lines.append(line)
    if current is not None:
        results[current] = " ".join(x.strip() for x in lines if x.strip())
    return results


def make_busybox_rootfs(root: Path) -> Path:
    """A rootfs like bb:latest: busybox-static, its applet links, passwd and group."""
    for sub in ("bin", "etc", "tmp", "root", "home/app", "var/www", "proc", "sys", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox" and not (root / "bin" / applet).exists():
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")
    os.chown(root / "home/app", 1000, 1000)
    return root


BB_IMAGE_CONFIG = {
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
    }
}


def run_native(workdir: Path, lower: Path | None = None) -> dict[int, str]:
    """The probes in a container started by the native runtime (caller must be root)."""
    from composer.backends.native.runtime import syscalls
    from composer.backends.native.runtime.cgroups import Cgroup
    from composer.backends.native.runtime.launch import launch
    from composer.backends.native.runtime.spec import RootfsSpec, Stdio
    from composer.backends.native.translate import ContainerFiles, translate
    from composer.backends.specs import ContainerSpec

    if lower is None:
        lower = make_busybox_rootfs(workdir / "lower")
    for sub in ("upper", "work", "rootfs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    cid = "probe" + os.urandom(6).hex()
    (workdir / "hostname").write_text(cid[:12] + "\n")
    (workdir / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{cid[:12]}\n")
    (workdir / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    spec = ContainerSpec(
        name="probes", service="probes", image=TEST_IMAGE, labels={}, command=("sh", "-c", script())
    )
    rootfs = RootfsSpec(
        str(workdir / "rootfs"), (str(lower),), str(workdir / "upper"), str(workdir / "work")
    )
    files = ContainerFiles(
        str(workdir / "hosts"), str(workdir / "hostname"), str(workdir / "resolv.conf")
    )
    launch_spec = translate(spec, BB_IMAGE_CONFIG, rootfs, files, container_id=cid).launch
    if not syscalls.is_child_subreaper():
        syscalls.set_child_subreaper()
    out_r, out_w = os.pipe()
    with open(os.devnull, "rb") as devnull:
        try:
            started = launch(launch_spec, Stdio(devnull.fileno(), out_w, out_w))
        finally:
            os.close(out_w)
        with os.fdopen(out_r, "rb") as out:
            data = out.read()
        os.waitpid(started.pid, 0)
    if launch_spec.cgroup is not None:
        Cgroup(launch_spec.cgroup.path).remove()
    return parse(data.decode())


def run_docker() -> dict[int, str]:
    """The probes in ``docker run --rm bb:latest``."""
    proc = subprocess.run(
        ["docker", "run", "--rm", "-i", TEST_IMAGE, "sh", "-c", script()],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    return parse(proc.stdout)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="probes-") as tmp:
        native = run_native(Path(tmp))
    docker = {} if "--native-only" in argv else run_docker()
    width = max(len(native.get(n, "")) for n, _, _ in PROBES) + 2
    width = min(max(width, 20), 60)
    print(f"{'#':>2}  {'probe':<28} {'native':<{width}} docker")
    differ = 0
    for n, title, _ in PROBES:
        a, b = native.get(n, "?"), docker.get(n, "?")
        mark = "" if a == b or not docker else "   <-- differs"
        differ += bool(mark)
        print(f"{n:>2}  {title:<28} {a:<{width}} {b}{mark}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
