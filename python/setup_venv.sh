#!/usr/bin/env bash
# Create/update the Python virtual environment used by dctchop's cross-checks
# (python/crosscheck.py) and by the Rust `ort` tests (ORT_DYLIB_PATH).
#
#   python/setup_venv.sh                 # venv at <repo>/.venv
#   DCTCHOP_VENV=/some/dir python/setup_venv.sh
#   DCTCHOP_PYTHON=python3.12 python/setup_venv.sh   # interpreter (>= 3.11)
#
# Idempotent: when the venv already matches python/requirements.txt (sha256
# stamp inside the venv) pip is not run at all. Progress goes to stderr; the
# last line on stdout is the absolute path of the venv's ONNX Runtime shared
# library, so this works:
#   export ORT_DYLIB_PATH=$(python/setup_venv.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
req="$here/requirements.txt"
venv="${DCTCHOP_VENV:-$repo/.venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
py="${DCTCHOP_PYTHON:-python3}"

log() { printf 'setup_venv: %s\n' "$*" >&2; }
die() { printf 'setup_venv: error: %s\n' "$*" >&2; exit 1; }

[ -f "$req" ] || die "missing $req"

# Serialise concurrent runs (e.g. several test processes) without creating
# extra files: flock on this script itself.
if command -v flock >/dev/null 2>&1; then
    exec 9<"${BASH_SOURCE[0]}"
    flock 9
fi

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1
    else shasum -a 256 | cut -d' ' -f1; fi
}

stamp="$venv/.dctchop-requirements.sha256"
vpy="$venv/bin/python"

# A venv whose interpreter no longer runs (moved repo, removed base python)
# is rebuilt from scratch; anything that is not a venv is left alone.
if [ -e "$venv" ] && ! "$vpy" -c '' >/dev/null 2>&1; then
    if [ -f "$venv/pyvenv.cfg" ]; then
        log "venv at $venv is broken; recreating it"
        "$py" -m venv --clear "$venv" || die "could not recreate venv at $venv"
    elif [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then
        die "$venv exists and is not a Python venv; remove it or set DCTCHOP_VENV"
    fi
fi

if [ ! -x "$vpy" ]; then
    command -v "$py" >/dev/null 2>&1 || die "'$py' not found; set DCTCHOP_PYTHON"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$py" -V 2>&1) is too old: numpy $(grep -m1 '^numpy==' "$req" | cut -d= -f3) needs Python >= 3.11 (set DCTCHOP_PYTHON)"
    log "creating venv at $venv with $("$py" -V 2>&1)"
    "$py" -m venv "$venv" || die "python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

# The stamp covers the requirements and the venv's interpreter version.
want="$( { cat "$req"; "$vpy" -c 'import sys; print(sys.version)'; } | sha256)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
    log "venv at $venv is up to date"
else
    log "installing python/requirements.txt into $venv"
    rm -f "$stamp"
    "$vpy" -m pip install --disable-pip-version-check --no-input -q -r "$req" \
        || die "pip install failed (see above)"
    "$vpy" -m pip check --disable-pip-version-check >&2 \
        || die "pip check found inconsistent dependencies"
    "$vpy" -c 'import numpy, onnx, onnxruntime, openvino, pytest, dask.distributed' \
        || die "installed packages fail to import"
    printf '%s\n' "$want" >"$stamp"
    log "done: $("$vpy" -c 'import numpy, onnx, onnxruntime as o, openvino as v; print("numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", o.__version__, "openvino", v.get_version())')"
fi

DCTCHOP_VENV="$venv" "$here/ort_dylib_path.sh"
