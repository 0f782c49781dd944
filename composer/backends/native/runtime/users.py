"""Docker's ``user:`` rules, resolved from the container's own ``/etc/passwd`` and ``/etc/group``.

``user`` is ``name|uid[:group|gid]``. A name must exist in the image's
passwd file; a number need not (it then runs with gid 0 unless a group is
given). The primary group comes from passwd unless a group is named; the
supplementary groups are the primary one, those of ``/etc/group`` that list
the user, plus ``group_add`` (names resolved in ``/etc/group``, numbers as is). ``HOME``
comes from passwd (``/`` when the user has no entry). The files are read
under the root's directory fd, never through a host path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .paths import read_in_root


class UserError(Exception):
    """The user or a group cannot be resolved in the image."""


@dataclass(frozen=True, slots=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


@dataclass(frozen=True, slots=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def _lines(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def parse_passwd(data: bytes | None) -> list[_Passwd]:
    out = []
    for f in _lines(data):
        if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
            out.append(_Passwd(f[0], int(f[2]), int(f[3]), f[5] if len(f) > 5 else ""))
    return out


def parse_group(data: bytes | None) -> list[_Group]:
    out = []
    for f in _lines(data):
        if len(f) >= 3 and f[2].isdigit():
            members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
            out.append(_Group(f[0], int(f[2]), members))
    return out


def resolve(
    user: str,
    passwd: bytes | None,
    group: bytes | None,
    additional: Iterable[str] = (),
) -> ExecUser:
    """Resolve ``user`` and ``additional`` groups against the two files' contents."""
    name, _, grp = (user or "").partition(":")
    users = parse_passwd(passwd)
    groups = parse_group(group)
    entry: _Passwd | None = None
    if not name:
        entry = next((u for u in users if u.uid == 0), None)
        uid, gid = 0, 0
    elif name.isdigit():
        uid = int(name)
        entry = next((u for u in users if u.uid == uid), None)
        gid = entry.gid if entry else 0
    else:
        entry = next((u for u in users if u.name == name), None)
        if entry is None:
            raise UserError(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = entry.uid, entry.gid
    if entry is not None and not name:
        gid = entry.gid
    if grp:
        gid = _group_id(grp, groups)
    supplementary: list[int] = [gid]
    if entry is not None and not grp:
        supplementary += [g.gid for g in groups if entry.name in g.members]
    for extra in additional:
        supplementary.append(_group_id(extra, groups))
    seen: list[int] = []
    for g in supplementary:
        if g not in seen:
            seen.append(g)
    home = entry.home if entry is not None and entry.home else "/"
    return ExecUser(uid, gid, tuple(seen), home)


def _group_id(spec: str, groups: list[_Group]) -> int:
    if spec.isdigit():
        return int(spec)
    for g in groups:
        if g.name == spec:
            return g.gid
    raise UserError(f"unable to find group {spec}: no matching entries in group file")


def resolve_in_root(root_fd: int, user: str, additional: Iterable[str] = ()) -> ExecUser:
    """``resolve`` with the files read from the container root behind ``root_fd``."""
    passwd = read_in_root(root_fd, "/etc/passwd")
    group = read_in_root(root_fd, "/etc/group")
    return resolve(user, passwd, group, additional)
