"""Docker credential helpers: ``docker-credential-NAME get``, as docker runs them.

When ``config.json`` names a helper (``credsStore`` for every registry,
``credHelpers`` per registry), the credentials live in that program's store
(a keychain, ``pass``, a cloud CLI). The protocol is small: the registry's
server URL on stdin, ``{"ServerURL", "Username", "Secret"}`` as JSON on
stdout, or a non-zero exit with ``credentials not found`` when it has none.
A helper that is missing or fails does not stop a pull by itself (many
registries serve anonymous pulls): its note explains the failure only if
the registry then asks for credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping

from composer.backends.native.images.auth import HUB_KEY, Credentials

HELPER_TIMEOUT = 60.0
TOKEN_USER = "<token>"  # Username of an identity (OAuth refresh) token


def server_url(registry: str) -> str:
    """What docker passes to a helper: Docker Hub's legacy URL, else the host[:port]."""
    return HUB_KEY if registry == "docker.io" else registry


def ask(
    helper: str, registry: str, environ: Mapping[str, str]
) -> tuple[Credentials | None, str | None]:
    """Credentials from ``docker-credential-<helper>``, or None and why not."""
    program = f"docker-credential-{helper}"
    path = environ.get("PATH", os.defpath)
    exe = shutil.which(program, path=path)
    if exe is None:
        return None, f"{program} is not installed (not found on PATH)"
    try:
        done = subprocess.run(
            [exe, "get"],
            input=server_url(registry),
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            env=dict(environ),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{program} could not be run: {exc}"
    output = (done.stdout or done.stderr).strip()
    if done.returncode != 0:
        if "credentials not found" in output.lower():
            return None, f"{program} has no credentials for {registry}"
        return None, f"{program} failed: {output or f'exit status {done.returncode}'}"
    try:
        data = json.loads(done.stdout)
        username, secret = data["Username"], data["Secret"]
    except (ValueError, KeyError, TypeError):
        return None, f"{program} answered something that is not its JSON"
    if not isinstance(username, str) or not isinstance(secret, str) or not username:
        return None, f"{program} answered without a user name"
    if username == TOKEN_USER:
        return None, f"{program} holds an identity token for {registry}, which composer cannot use"
    return Credentials(username, secret), None
