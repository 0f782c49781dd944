"""Will the stop signal reach the container at all?

The kernel discards a signal sent from outside a PID namespace to the
namespace's PID 1 unless PID 1 has installed a handler for it (SIGKILL and
SIGSTOP aside). A ``sleep``, ``httpd`` or shell that never traps SIGTERM
therefore ignores ``docker stop`` completely, and Compose waits the whole
grace period before it sends SIGKILL (ten seconds by default, per
dependency level at ``down``). When ``/proc/<pid>/status`` shows a PID 1
that neither catches nor blocks the stop signal (nor waits for signals in
``sigtimedwait``, as tini does), waiting cannot change the outcome, so both
backends go straight to SIGKILL. The exit code is the same 137 Compose users
see after the grace period; only the wait is gone.
"""

from __future__ import annotations

import contextlib
import platform
import signal as signals

from composer.errors import BackendError


def parse_signal(name: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``15`` → 15; a ``BackendError`` for anything else."""
    text = str(name).strip().upper()
    if text.isdigit():
        num = int(text)
        if 0 < num < signals.NSIG:
            return num
    else:
        with contextlib.suppress(KeyError):
            return int(signals.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    raise BackendError(f"invalid signal: {name}", "use a name such as SIGTERM or a number")


_SIGNAL_WAITS = {
    "x86_64": frozenset({"128", "130"}),  # rt_sigtimedwait, rt_sigsuspend
    "aarch64": frozenset({"137", "133"}),
}
"""System calls during which /proc's blocked mask hides the signals being waited for."""


def _mask(status: str, field: str) -> int | None:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1].strip(), 16)
    return None


def signal_reaches(pid: int, signo: int, *, proc: str = "/proc") -> bool | None:
    """Whether ``signo`` sent to host ``pid`` can end it: ``None`` when it cannot be told.

    ``False`` only for a process that is PID 1 of its own PID namespace and
    neither handles nor blocks ``signo``: the kernel drops it.
    """
    if signo in (signals.SIGKILL, signals.SIGSTOP):
        return True
    try:
        with open(f"{proc}/{pid}/status", encoding="ascii", errors="replace") as f:
            status = f.read()
    except OSError:
        return None
    nspid = next((ln for ln in status.splitlines() if ln.startswith("NSpid:")), None)
    if nspid is None:
        return None
    ids = nspid.split()[1:]
    if len(ids) < 2 or ids[-1] != "1":
        return True  # not an init process: the default action applies
    caught, blocked = _mask(status, "SigCgt"), _mask(status, "SigBlk")
    if caught is None or blocked is None:
        return None
    if (caught | blocked) & (1 << (signo - 1)):
        return True
    # A blocked signal is queued, not dropped: tini and other inits block the
    # signals they forward and collect them with sigtimedwait, during which
    # /proc shows the wait's mask instead of the blocked one. A process in
    # such a wait is given the benefit of the doubt.
    waiting = _SIGNAL_WAITS.get(platform.machine())
    if waiting is None:
        return None
    try:
        with open(f"{proc}/{pid}/syscall", encoding="ascii") as f:
            current = f.read().split()[0]
    except (OSError, IndexError):
        return None
    return current in waiting
