#!/usr/bin/env bash
# Print the absolute path of the ONNX Runtime shared library shipped in the
# dctchop venv (onnxruntime/capi/libonnxruntime.so.1.*), for the Rust `ort`
# crate's load-dynamic mode:
#   ORT_DYLIB_PATH=$(python/ort_dylib_path.sh) cargo test ...
# The venv is <repo>/.venv unless DCTCHOP_VENV is set (as for setup_venv.sh).
# Exits 1 with a message on stderr when the library is not there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DCTCHOP_VENV:-$(cd "$here/.." && pwd)/.venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac

shopt -s nullglob
libs=("$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*)
shopt -u nullglob

if [ "${#libs[@]}" -eq 0 ]; then
    echo "ort_dylib_path: no onnxruntime/capi/libonnxruntime.so.1.* under $venv;" \
         "run python/setup_venv.sh first (or set DCTCHOP_VENV to the venv it created)" >&2
    exit 1
fi
if [ "${#libs[@]}" -gt 1 ]; then
    echo "ort_dylib_path: warning: several candidates, using the last: ${libs[*]}" >&2
fi
lib="${libs[${#libs[@]}-1]}"
dir="$(cd "$(dirname "$lib")" && pwd -P)"
echo "$dir/$(basename "$lib")"
