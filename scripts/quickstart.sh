#!/usr/bin/env bash
# Install composer into .venv and show what it makes of the webapp sample:
# the sample's fully resolved Compose model, as `docker compose config` prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh

ensure_venv .
cd samples/webapp
../../.venv/bin/composer config
