"""launch(): exit codes, environment, cwd, user, stdio, errors, init, limits of the process."""

from __future__ import annotations

import os
import signal

import pytest

from composer.backends.native.runtime.report import ExecutableNotFound, LaunchError
from composer.backends.native.runtime.spec import MountEntry, NamespaceSpec, Rlimit, Stdio
from composer.errors import Unsupported

from .conftest import Box


def test_exit_code_and_stdout(box: Box) -> None:
    r = box.sh("echo out; echo err >&2; exit 7")
    assert (r.code, r.out, r.err) == (7, "out\n", "err\n")


def test_killed_by_signal_from_the_host(box: Box) -> None:
    started = box.start(box.spec("sleep", "30"))
    os.kill(started.pid, signal.SIGKILL)
    _, status = os.waitpid(started.pid, 0)
    box.pids.remove(started.pid)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL


def test_pid_one_without_init_ignores_sigterm_and_with_init_does_not(box: Box) -> None:
    bare = box.start(box.spec("sleep", "30"))
    tini = box.start(box.spec("sleep", "30", init=True))
    # launch returns once tini has started the program, i.e. after it set up
    # its signal handling: a SIGTERM right away is not lost.
    with open(f"/proc/{tini.pid}/task/{tini.pid}/children") as f:
        assert f.read().strip()
    os.kill(bare.pid, signal.SIGTERM)
    os.kill(tini.pid, signal.SIGTERM)
    _, status = os.waitpid(tini.pid, 0)
    box.pids.remove(tini.pid)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM  # tini forwards, sleep dies
    assert os.waitpid(bare.pid, os.WNOHANG) == (0, 0)  # still running


def test_stdin_reaches_the_process(box: Box) -> None:
    r = box.run(box.spec("cat"), stdin=b"hello\n")
    assert r.out == "hello\n"


def test_environment_is_exactly_the_spec(box: Box) -> None:
    r = box.run(box.spec("env", env=("PATH=/bin", "A=1", "B=two words")))
    lines = sorted(r.out.splitlines())
    assert lines == ["A=1", "B=two words", "HOME=/root", "PATH=/bin"]


def test_working_directory_is_created_and_entered(box: Box) -> None:
    assert box.sh("pwd", cwd="/srv/app").out == "/srv/app\n"


def test_user_by_name_gets_passwd_ids_and_home(box: Box) -> None:
    r = box.sh('id; echo "$HOME"; grep CapEff /proc/self/status', user="app")
    assert r.out.splitlines() == [
        "uid=1000(app) gid=1000(app) groups=1000(app)",  # as docker run -u app
        "/home/app",
        "CapEff:\t0000000000000000",
    ]


def test_numeric_user_and_group_need_no_passwd_entry(box: Box) -> None:
    r = box.sh("id", user="4242:4343")
    assert r.out == "uid=4242 gid=4343 groups=4343\n"  # as docker run -u 4242:4343


def test_numeric_user_without_group_gets_gid_zero(box: Box) -> None:
    assert box.sh("id", user="4242").out == "uid=4242 gid=0(root) groups=0(root)\n"


def test_group_add_by_name_and_number(box: Box) -> None:
    r = box.sh("id", user="app", additional_groups=("77", "root"))
    assert r.out == "uid=1000(app) gid=1000(app) groups=0(root),77,1000(app)\n"


def test_unknown_user_is_a_clear_error(box: Box) -> None:
    with pytest.raises(LaunchError) as info:
        box.start(box.spec("true", user="nosuchuser"))
    assert "unable to find user nosuchuser" in info.value.message
    assert info.value.hint


def test_missing_executable_is_127_with_a_hint(box: Box) -> None:
    with pytest.raises(ExecutableNotFound) as info:
        box.start(box.spec("no-such-program"))
    assert info.value.exit_code == 127
    assert 'exec: "no-such-program": executable file not found in $PATH' in info.value.message
    assert info.value.hint


def test_working_directory_is_entered_before_capabilities_drop(box: Box) -> None:
    # As with runc: the directory is entered while CAP_DAC_OVERRIDE is still
    # effective, so `docker run -u app --tmpfs /private:mode=700 -w /private` works.
    private = MountEntry("/private", "tmpfs", "tmpfs", ("mode=700",))
    assert box.sh("pwd", user="app", cwd="/private", mounts=(private,)).out == "/private\n"


def test_working_directory_that_is_a_file_is_a_clear_error(box: Box) -> None:
    with pytest.raises(LaunchError) as info:
        box.start(box.spec("true", cwd="/etc/passwd"))
    assert "working directory /etc/passwd" in info.value.message
    assert info.value.exit_code == 126


def test_no_fd_of_the_caller_leaks_into_the_container(box: Box) -> None:
    leaked = os.open("/", os.O_RDONLY)  # inheritable on purpose
    os.set_inheritable(leaked, True)
    try:
        r = box.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '")
    finally:
        os.close(leaked)
    assert r.out.split() == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_pid_one_and_hostname(box: Box) -> None:
    spec = box.spec("sh", "-c", "echo $$; hostname", hostname="web-1")
    assert box.run(spec).out.split() == ["1", "web-1"]


def test_domainname(box: Box) -> None:
    spec = box.spec("sh", "-c", "cat /proc/sys/kernel/domainname", domainname="example.org")
    assert box.run(spec).out == "example.org\n"


def test_init_runs_tini_as_pid_one(box: Box) -> None:
    r = box.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$", init=True)
    first, second = r.out.splitlines()
    assert first.startswith("/sbin/docker-init -- sh -c")
    assert second != "1"


def test_rlimits_apply(box: Box) -> None:
    r = box.sh("ulimit -n; ulimit -Hn", rlimits=(Rlimit("nofile", 321, 654),))
    assert r.out.split() == ["321", "654"]


def test_oom_score_adj(box: Box) -> None:
    assert box.sh("cat /proc/self/oom_score_adj", oom_score_adj=500).out == "500\n"


def test_sysctl_in_the_private_network_namespace(box: Box) -> None:
    r = box.sh(
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
        sysctls=(("net.ipv4.ip_unprivileged_port_start", "123"),),
    )
    assert r.out == "123\n"


def test_read_only_rootfs(box: Box) -> None:
    r = box.sh("touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1; echo rc=$?", readonly_rootfs=True)
    assert "Read-only file system" in r.out
    assert r.out.count("rc=1") == 2


def test_bind_and_tmpfs_mounts(box: Box, tmp_path: os.PathLike[str]) -> None:
    src = os.path.join(tmp_path, "data")
    os.mkdir(src)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("from host")
    mounts = (
        MountEntry("/data", "bind", src, ("rbind", "ro")),
        MountEntry("/scratch", "tmpfs", "tmpfs", ("nosuid", "size=1m", "mode=1777")),
    )
    r = box.sh(
        "cat /data/f; echo; touch /data/g 2>&1; grep -E ' /(data|scratch) ' /proc/mounts",
        mounts=mounts,
    )
    lines = r.out.splitlines()
    assert lines[0] == "from host"
    assert "Read-only file system" in lines[1]
    assert any(line.split()[1] == "/data" and line.split()[3].startswith("ro") for line in lines)
    assert any("/scratch tmpfs rw,nosuid" in line and "size=1024k" in line for line in lines)


def test_joined_network_namespace(box: Box) -> None:
    first = box.start(box.spec("sleep", "30"))
    path = f"/proc/{first.pid}/ns/net"
    r = box.sh(
        "readlink /proc/self/ns/net",
        namespaces=(
            NamespaceSpec("mnt"),
            NamespaceSpec("uts"),
            NamespaceSpec("ipc"),
            NamespaceSpec("pid"),
            NamespaceSpec("net", path),
        ),
    )
    assert r.out.strip() == os.readlink(path)


def test_before_exec_sees_the_pid_before_the_program_runs(box: Box) -> None:
    seen: list[str] = []

    def plumb(pid: int) -> None:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            seen.append(f.read().decode())
        seen.append(os.readlink(f"/proc/{pid}/ns/net"))

    started = box.start(box.spec("sleep", "30"), before_exec=plumb)
    assert seen and "sleep" not in seen[0]  # still the runtime, not yet exec'd
    assert seen[1] == os.readlink(f"/proc/{started.pid}/ns/net")


def test_failing_before_exec_kills_the_child_and_removes_the_cgroup(box: Box) -> None:
    spec = box.spec("sleep", "30")

    def fail(pid: int) -> None:
        raise RuntimeError("plumbing failed")

    with pytest.raises(RuntimeError):
        box.start(spec, before_exec=fail)
    assert spec.cgroup is not None
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{spec.cgroup.path}")


def test_tty_becomes_the_controlling_terminal_and_the_console(box: Box) -> None:
    master, slave = os.openpty()
    try:
        spec = box.spec("sh", "-c", "ps -o pid,tty | awk '$1 == 1 {print $2}'; ls /dev", tty=True)
        started = box.start(spec, Stdio(slave, slave, slave))
    finally:
        os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO once the last holder of the slave exits
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    os.waitpid(started.pid, 0)
    box.pids.remove(started.pid)
    lines = out.decode().split()
    assert lines[0].startswith("136,")  # PID 1's controlling terminal is the pty
    assert "console" in lines


@pytest.mark.parametrize(
    "namespaces",
    [
        (NamespaceSpec("mnt"), NamespaceSpec("user")),
        (NamespaceSpec("mnt", "/proc/1/ns/mnt"),),
        (NamespaceSpec("pid"),),
    ],
)
def test_unsupported_namespace_layouts_are_refused_before_forking(
    box: Box, namespaces: tuple[NamespaceSpec, ...]
) -> None:
    with pytest.raises(Unsupported) as info:
        box.start(box.spec("true", namespaces=namespaces))
    assert info.value.hint


def test_parallel_launches_from_threads(box: Box) -> None:
    """The supervisor starts independent containers from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    specs = [box.spec("sh", "-c", "ls /proc/self/fd | wc -l; echo $$") for _ in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(box.run, specs))
    for r in results:
        assert r.code == 0
        assert r.out.split() == ["4", "1"]  # 0, 1, 2 and ls's own directory


def test_working_directory_through_a_leaked_fd_is_refused(box: Box) -> None:
    """CVE-2024-21626: a cwd of /proc/self/fd/N must not reach a host directory."""
    leaked = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    try:
        with pytest.raises(LaunchError) as info:
            box.start(box.spec("pwd", cwd=f"/proc/self/fd/{leaked}"))
    finally:
        os.close(leaked)
    assert "working directory" in info.value.message


def test_umask_is_dockers_not_the_callers(box: Box) -> None:
    old_umask = os.umask(0o077)
    try:
        r = box.sh("umask; cat /proc/self/oom_score_adj")
    finally:
        os.umask(old_umask)
    assert r.out.split() == ["0022", "0"]


def test_a_protected_caller_does_not_pass_its_oom_score_on(box: Box) -> None:
    with open("/proc/self/oom_score_adj") as f:
        old_adj = f.read().strip()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-100")
    except PermissionError:
        pytest.skip("lowering oom_score_adj needs CAP_SYS_RESOURCE, which this host withholds")
    try:
        r = box.sh("cat /proc/self/oom_score_adj")
    finally:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(old_adj)
    assert r.out == "0\n"
