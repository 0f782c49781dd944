#!/usr/bin/env bash
# Install composer into .venv and bring up samples/quickstart on composer's own
# (native, daemonless) engine: three services whose images composer builds
# itself FROM scratch with Debian's busybox-static, so no registry is needed.
# Run as root (the native engine creates namespaces, mounts and bridges).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh

need=()
for pkg in busybox-static tini iproute2 nftables libseccomp2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

ensure_venv .
# The images start FROM scratch with this one static binary (see samples/quickstart/README.md).
cp /bin/busybox samples/quickstart/busybox
cd samples/quickstart
../../.venv/bin/composer --backend native up -d --build --wait
echo
echo "composer quickstart is up: open http://127.0.0.1:8080/ (or: curl http://127.0.0.1:8080/cgi-bin/beat)"
echo "stop it with: .venv/bin/composer --backend native -f samples/quickstart/compose.yaml down -v"
