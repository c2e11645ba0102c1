#!/usr/bin/env bash
# CI entry of the downstream harness: venv, unit tests, then the smoke training run.
#   bash downstream/ci.sh            # needs a built dctchop (DCTCHOP_BIN or target/{release,debug})
# The smoke run exits non-zero when training on CF 8 data does not match the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(downstream/setup.sh | tail -n 1)"
"$PY" -m pytest -q downstream
start=$SECONDS
"$PY" downstream/run.py --smoke --threads 2
echo "downstream smoke: $((SECONDS - start)) s"
