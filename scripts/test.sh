#!/usr/bin/env bash
# Install everything the test suite needs, then run every check CI runs:
# lint, formatting, strict typing and the tests. Safe to run again; each
# section only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh

section() { printf '\n=== %s\n' "$*"; }

# --- system packages ----------------------------------------------------------
# Engines and tools the end-to-end tests drive are installed here (apt).
section "system packages and engines (docker.io, busybox-static, tini; dockerd; bb:latest)"
# A private state directory: the exit trap undoes only what this run started,
# never a daemon another checkout or an earlier run brought up. It also stops
# the warm command servers the tests' composer processes started.
COMPOSER_ENGINES_STATE="$(mktemp -d "${TMPDIR:-/tmp}/composer-engines.XXXXXX")"
export COMPOSER_ENGINES_STATE
trap '.venv/bin/python -m composer.cmdserver stop 2>/dev/null || true; bash scripts/engines.sh stop; rm -rf "$COMPOSER_ENGINES_STATE"' EXIT
bash scripts/engines.sh start

# --- python environment -------------------------------------------------------
section "python environment (.venv, composer + dev tools)"
ensure_venv '.[dev]'

# --- static checks ------------------------------------------------------------
section "ruff check"
.venv/bin/ruff check composer tests
section "ruff format --check"
.venv/bin/ruff format --check composer tests
section "mypy --strict"
.venv/bin/mypy --strict composer

# --- tests --------------------------------------------------------------------
section "pytest"
.venv/bin/pytest --timeout=900 "$@"
