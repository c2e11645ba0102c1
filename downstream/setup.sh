#!/usr/bin/env bash
# Create/update the venv of the downstream-accuracy harness (downstream/run.py).
#
#   downstream/setup.sh                                  # venv at downstream/.venv
#   DCTCHOP_DOWNSTREAM_VENV=/some/dir downstream/setup.sh  # or reuse/create one elsewhere
#   DCTCHOP_PYTHON=python3.12 downstream/setup.sh          # base interpreter (>= 3.11)
#
# Idempotent: a sha256 stamp of requirements.txt (+ interpreter version) inside the venv
# skips pip when nothing changed. The last line on stdout is the venv's python, so
#   PY=$(downstream/setup.sh) && $PY downstream/run.py --smoke
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${DCTCHOP_DOWNSTREAM_VENV:-$here/.venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
py="${DCTCHOP_PYTHON:-python3}"
log() { printf 'downstream/setup.sh: %s\n' "$*" >&2; }
die() { printf 'downstream/setup.sh: error: %s\n' "$*" >&2; exit 1; }

if command -v flock >/dev/null 2>&1; then exec 9<"${BASH_SOURCE[0]}"; flock 9; fi
sha256() { sha256sum | cut -d' ' -f1; }
vpy="$venv/bin/python"
stamp="$venv/.downstream-requirements.sha256"
if [ ! -x "$vpy" ]; then
    command -v "$py" >/dev/null 2>&1 || die "'$py' not found; set DCTCHOP_PYTHON"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "need Python >= 3.11"
    log "creating venv at $venv with $("$py" -V 2>&1)"
    "$py" -m venv "$venv" || die "python -m venv failed (Debian: apt-get install python3-venv)"
fi
want="$( { cat "$req"; "$vpy" -c 'import sys; print(sys.version)'; } | sha256)"
if [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ]; then
    log "venv at $venv is up to date"
else
    log "installing $req into $venv (torch is ~3 GB of wheels: a few minutes)"
    rm -f "$stamp"
    "$vpy" -m pip install --disable-pip-version-check --no-input --no-cache-dir -q -r "$req" || die "pip install failed"
    "$vpy" -c 'import torch, numpy, onnxruntime, zfpy, pysz, h5py, matplotlib' || die "installed packages fail to import"
    printf '%s\n' "$want" >"$stamp"
    log "done: $("$vpy" -c 'import torch, numpy, onnxruntime as o; print("torch", torch.__version__, "numpy", numpy.__version__, "onnxruntime", o.__version__)')"
fi
echo "$vpy"
