# Sourced by the other scripts: make sure .venv exists and holds composer.
#   ensure_venv [pip-spec]     (default: ".", i.e. composer itself)
# Needs a Python >= 3.11 as $PYTHON (default python3); on Debian the venv
# module comes from the python3-venv package, installed here when missing.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

ensure_venv() {
    local spec="${1:-.}"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "composer needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
        return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            as_root apt-get update -qq
            as_root apt-get install -y -qq python3-venv
        fi
        "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
}
