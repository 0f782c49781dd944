"""Capabilities, seccomp and no_new_privs inside a container, and the rules behind them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from composer.backends.native.runtime import caps, seccomp

from .conftest import Box


def status(box: Box, **overrides: object) -> dict[str, str]:
    out = box.sh("cat /proc/self/status", **overrides).out
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_docker_default_capabilities() -> None:
    assert caps.mask(caps.DOCKER_DEFAULT_CAPS) == 0xA80425FB
    assert len(caps.DOCKER_DEFAULT_CAPS) == 14


def test_cap_add_drop_rules() -> None:
    assert "CAP_NET_ADMIN" in caps.compute(["net_admin"])
    assert "CAP_CHOWN" not in caps.compute(cap_drop=["CHOWN"])
    assert caps.compute(["NET_ADMIN"], ["ALL"]) == ("CAP_NET_ADMIN",)
    assert caps.compute(cap_drop=["ALL"]) == ()
    assert set(caps.compute(["ALL"])) == set(caps.all_caps())
    assert set(caps.compute(privileged=True)) == set(caps.all_caps())
    with pytest.raises(ValueError):
        caps.compute(["NOT_A_CAP"])


def test_container_has_exactly_dockers_capabilities(box: Box) -> None:
    s = status(box)
    assert s["CapEff"] == s["CapPrm"] == s["CapBnd"] == "00000000a80425fb"
    assert s["CapInh"] == s["CapAmb"] == "0000000000000000"


def test_cap_add_and_drop_take_effect(box: Box) -> None:
    chosen = caps.compute(["NET_ADMIN"], ["NET_RAW", "CHOWN"])
    s = status(box, capabilities=chosen)
    assert int(s["CapEff"], 16) == caps.mask(chosen)
    r = box.sh("ip addr add 10.9.9.9/32 dev lo && echo added", capabilities=chosen)
    assert r.out == "added\n"  # in the container's own network namespace


def test_privileged_has_all_the_runtime_has(box: Box) -> None:
    s = status(box, capabilities=caps.all_caps(), privileged=True, seccomp="unconfined")
    assert int(s["CapEff"], 16) == caps.current_permitted() & caps.mask(caps.all_caps())
    assert s["Seccomp"] == "0"


def test_seccomp_filter_is_on_by_default_and_off_when_unconfined(box: Box) -> None:
    assert status(box)["Seccomp"] == "2"
    assert status(box, seccomp="unconfined")["Seccomp"] == "0"


def test_no_new_privileges(box: Box) -> None:
    assert status(box)["NoNewPrivs"] == "0"
    s = status(box, no_new_privileges=True)
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"


def test_seccomp_denies_namespaces_and_keyring_but_allows_the_ordinary(box: Box) -> None:
    r = box.sh(
        "unshare -n true 2>&1; echo rc=$?;"
        " ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok;"
        " sh -c 'echo child-ok'"
    )
    assert "Operation not permitted" in r.out
    assert "ping-ok" in r.out and "child-ok" in r.out


def test_sys_admin_unlocks_the_namespace_calls(box: Box) -> None:
    chosen = caps.compute(["SYS_ADMIN"])
    r = box.sh("unshare -n true && echo ok", capabilities=chosen)
    assert r.out == "ok\n"


def test_denied_calls_depend_on_capabilities() -> None:
    base = seccomp.denied_calls(caps.DOCKER_DEFAULT_CAPS)
    assert {"unshare", "mount", "setns", "keyctl", "bpf", "reboot", "acct"} <= base
    assert {"kexec_load", "open_by_handle_at", "userfaultfd", "io_uring_setup"} <= base
    admin = seccomp.denied_calls((*caps.DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN"))
    assert "mount" not in admin and "unshare" not in admin and "keyctl" in admin
    assert "reboot" not in seccomp.denied_calls(("CAP_SYS_BOOT",))


def test_seccomp_arguments_rules_in_a_forked_child() -> None:
    """clone3 → ENOSYS, AF_VSOCK/AF_ALG sockets and odd personalities → EPERM."""
    import ctypes
    import errno
    import os

    from composer.backends.native.runtime import syscalls

    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        results = []
        try:
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.load(caps.DOCKER_DEFAULT_CAPS)
            for call in (
                lambda: libc.syscall(435, 0, 0),  # clone3 (x86_64 and the generic table)
                lambda: libc.socket(40, 1, 0),
                lambda: libc.socket(38, 5, 0),
                lambda: libc.personality(ctypes.c_ulong(1)),
                lambda: libc.personality(ctypes.c_ulong(0xFFFFFFFF)),
                lambda: libc.socket(2, 1, 0),
            ):
                ctypes.set_errno(0)
                rc = call()
                results.append(str(ctypes.get_errno()) if rc < 0 else "ok")
            os.write(w, " ".join(results).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read().split()
    os.waitpid(pid, 0)
    eperm = str(errno.EPERM)
    assert got == [str(errno.ENOSYS), eperm, eperm, eperm, "ok", "ok"]


def test_compiled_filters_are_cached_between_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second process reads the compiled program instead of compiling it again."""
    monkeypatch.setattr(seccomp, "CACHE_DIR", str(tmp_path / "cache"))
    seccomp.compiled.cache_clear()
    caps = frozenset({"CAP_CHOWN", "CAP_KILL"})
    program = seccomp.compiled(caps)
    [cached] = list((tmp_path / "cache").iterdir())
    assert cached.read_bytes() == program
    code = (
        "import sys\n"
        "from composer.backends.native.runtime import seccomp\n"
        f"seccomp.CACHE_DIR = {str(tmp_path / 'cache')!r}\n"
        f"program = seccomp.compiled(frozenset({sorted(caps)!r}))\n"
        f"assert program == open({str(cached)!r}, 'rb').read()\n"
        "assert 'pyseccomp' not in sys.modules, 'compiled again'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    seccomp.compiled.cache_clear()
