"""``build.additional_contexts: {base: service:base}``: another service's image,
built first, read by ``FROM base`` and ``COPY --from=base`` (through the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from composer.backends.native.images.store import ImageStore

from .conftest import run_image

COMPOSE = """\
services:
  app:
    build:
      context: ./app
      additional_contexts:
        base: service:base
  base:
    build: ./base
"""


def test_a_service_context_is_built_first_and_read_by_from_and_copy(
    store: ImageStore, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "base").mkdir(parents=True)
    (project / "app").mkdir()
    (project / "compose.yaml").write_text(COMPOSE)
    (project / "base" / "Dockerfile").write_text("FROM bb:latest\nRUN echo from-base > /base.txt\n")
    (project / "app" / "Dockerfile").write_text(
        "FROM base\nRUN cp /base.txt /app.txt\nCOPY --from=base /base.txt /copied.txt\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    env.update(COMPOSER_ROOT=str(store.root.path), COMPOSER_SERVER="0")
    # Only app is named: its context's service is built too, and before it.
    done = subprocess.run(
        [sys.executable, "-m", "composer", "--backend", "native", "-p", "sc", "build", "app"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.index("sc-base  Built") < done.stderr.index("sc-app  Building")
    app = store.resolve("sc-app")
    assert app is not None
    ran = run_image(store, app, "cat", "/app.txt", "/copied.txt")
    assert (ran.code, ran.output) == (0, "from-base\nfrom-base\n")
