"""User and group resolution from an image's passwd and group files (Docker's rules)."""

from __future__ import annotations

import pytest

from composer.backends.native.runtime.users import ExecUser, UserError, resolve

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
# comment
web:x:33:33::/var/www:/bin/false
broken line
"""
GROUP = b"""root:x:0:
app:x:1000:
www:x:33:app,web
staff:x:50:app
"""


@pytest.mark.parametrize(
    ("user", "extra", "expected"),
    [
        ("", (), ExecUser(0, 0, (0,), "/root")),
        ("root", (), ExecUser(0, 0, (0,), "/root")),
        ("app", (), ExecUser(1000, 1000, (1000, 33, 50), "/home/app")),
        ("1000", (), ExecUser(1000, 1000, (1000, 33, 50), "/home/app")),
        ("4242", (), ExecUser(4242, 0, (0,), "/")),
        ("4242:4343", (), ExecUser(4242, 4343, (4343,), "/")),
        ("app:www", (), ExecUser(1000, 33, (33,), "/home/app")),
        ("web", ("staff", "9"), ExecUser(33, 33, (33, 50, 9), "/var/www")),
    ],
)
def test_resolution(user: str, extra: tuple[str, ...], expected: ExecUser) -> None:
    assert resolve(user, PASSWD, GROUP, extra) == expected


def test_unknown_names_are_errors_in_dockers_words() -> None:
    with pytest.raises(UserError, match="unable to find user ghost: no matching entries"):
        resolve("ghost", PASSWD, GROUP)
    with pytest.raises(UserError, match="unable to find group ghosts"):
        resolve("app:ghosts", PASSWD, GROUP)
    with pytest.raises(UserError, match="unable to find group nope"):
        resolve("app", PASSWD, GROUP, ("nope",))


def test_image_without_passwd_or_group() -> None:
    assert resolve("", None, None) == ExecUser(0, 0, (0,), "/")
    assert resolve("7:8", None, None) == ExecUser(7, 8, (8,), "/")
    with pytest.raises(UserError):
        resolve("app", None, None)
