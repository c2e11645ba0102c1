#!/usr/bin/env bash
# Every test of the project: Rust unit/integration tests (workspace), then the Python
# cross-checks (onnx.checker full check, onnxruntime and OpenVINO vs tract) on the graphs
# the Rust tests wrote. Makes its own venv (python/setup_venv.sh) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI's disk is small: with DCTCHOP_CI_FREE_DISK=1 (set by .ci/run) build products are deleted as
# soon as the stages that need them have run. Do not set it locally: it throws your build away.
free_disk=${DCTCHOP_CI_FREE_DISK:-0}
disk_free() { df -h . | awk 'NR==2 {print $4 " free"}'; }

echo "== python venv (numpy, onnx, onnxruntime, openvino) [disk: $(disk_free)]"
python/setup_venv.sh >/dev/null

export DCTCHOP_CROSSCHECK_DIR="$PWD/target/crosscheck"
# The ort engine's tests run against the venv's ONNX Runtime; without a library they would skip,
# so make that a failure here.
export ORT_DYLIB_PATH="$(python/ort_dylib_path.sh)"
export DCTCHOP_REQUIRE_ORT=1
echo "== ONNX Runtime for the ort engine: $ORT_DYLIB_PATH [disk: $(disk_free)]"
# The ZFP and SZ3 baselines of `dctchop eval` (features `zfp`, `sz3`) are built from source:
# ZFP with cmake and libclang (bindgen); SZ3 also with a C++ compiler and libzstd-dev (its cmake
# configure step finds zstd through pkg-config, or else tries to download it). When they are
# present (.ci/run installs them as root) their tests run in the same build.
# DCTCHOP_REQUIRE_FEATURES=1 (set by .ci/run as root) turns a missing prerequisite into a failure.
skip_or_fail() {
    if [ "${DCTCHOP_REQUIRE_FEATURES:-0}" = 1 ]; then
        echo "== FAIL: $1 (DCTCHOP_REQUIRE_FEATURES=1)" >&2
        exit 1
    fi
    echo "== skipping $1"
}
have_zfp_prereqs() {
    command -v cmake >/dev/null && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1
}
feature_list=()
if have_zfp_prereqs; then
    feature_list+=(zfp)
else
    skip_or_fail "ZFP tests: cmake or libclang-dev not installed"
fi
if have_zfp_prereqs && command -v c++ >/dev/null && pkg-config --exists libzstd 2>/dev/null; then
    feature_list+=(sz3)
else
    skip_or_fail "SZ3 tests: cmake, a C++ compiler, libclang-dev or libzstd-dev not installed"
fi
features=()
if [ ${#feature_list[@]} -gt 0 ]; then
    features=(--features "$(IFS=,; echo "${feature_list[*]}")")
fi
echo "== cargo test --workspace ${features[*]} [disk: $(disk_free)]"
cargo test --workspace --locked "${features[@]}"

# HDF5 input is behind the `hdf5` feature (links the system libhdf5); .ci/run installs it as root.
if pkg-config --exists hdf5 2>/dev/null; then
    echo "== cargo test --features hdf5 --test hdf5_input (libhdf5 $(pkg-config --modversion hdf5)) [disk: $(disk_free)]"
    # Same feature set as above plus hdf5. hdf5-metno's derive macros turn on syn's
    # `extra-traits`, so every proc-macro and what it derives is rebuilt, tract included. The
    # first build stays without hdf5, so the hdf5_disabled module checks its error.
    hdf5_features=$(IFS=,; echo "hdf5${feature_list[*]:+,${feature_list[*]}}")
    cargo test --locked --features "$hdf5_features" --test hdf5_input
else
    skip_or_fail "HDF5 tests: libhdf5-dev not installed"
fi

if [ "$free_disk" = 1 ]; then
    # From here on only the CLI binary of the debug build is used (pytest, downstream).
    echo "== CI: deleting the debug build except target/debug/dctchop"
    find target/debug -mindepth 1 -maxdepth 1 ! -name dctchop -exec rm -rf {} +
fi

echo "== python cross-check: onnx.checker, onnxruntime, OpenVINO on $(ls "$DCTCHOP_CROSSCHECK_DIR" | wc -l) graph pairs [disk: $(disk_free)]"
.venv/bin/python python/crosscheck.py "$DCTCHOP_CROSSCHECK_DIR" --openvino --quiet

echo "== conformance suite graphs/: onnxruntime and OpenVINO (graphs/verify.py) [disk: $(disk_free)]"
.venv/bin/python graphs/verify.py --runtime all

# The Python package (issue 13): build the wheel as `pip install .` does (maturin, release
# profile; --no-build-isolation uses the venv's pinned maturin), install it, run its tests
# against the CLI. The torch tests run below, in the downstream venv that has torch.
echo "== python package: pip wheel . (maturin), pytest python/tests [disk: $(disk_free)]"
rm -rf target/wheels
PATH="$PWD/.venv/bin:$PATH" .venv/bin/pip wheel . --no-deps --no-build-isolation --disable-pip-version-check -q -w target/wheels
wheel=$(ls target/wheels/dctchop-*.whl)
echo "== python package: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB [disk: $(disk_free)]"
.venv/bin/pip install --force-reinstall --no-deps --disable-pip-version-check -q "$wheel"
DCTCHOP_BIN="$PWD/target/debug/dctchop" .venv/bin/python -m pytest -q -p no:cacheprovider python/tests
if [ "$free_disk" = 1 ]; then
    # The wheel is built and installed; its release build (~1-2 GB) is not needed again.
    echo "== CI: deleting the wheel's release build (target/release)"
    rm -rf target/release
fi

# Downstream accuracy (issue 14): train a small denoiser on simulated micrographs; the smoke run
# checks that training on CF = block data matches the baseline exactly. Its venv holds torch
# (~3 GB from PyPI), installed on first use.
echo "== downstream smoke: denoiser on simulated graphene micrographs (downstream/ci.sh) [disk: $(disk_free)]"
DCTCHOP_BIN="$PWD/target/debug/dctchop" bash downstream/ci.sh

# The package's torch tests (IterableDataset, DataLoader workers, ranks) need torch: run them in
# the downstream venv, where a missing torch fails instead of skipping.
echo "== python package with torch: pytest python/tests/test_torch.py (downstream venv) [disk: $(disk_free)]"
PY="$(downstream/setup.sh | tail -n 1)"
"$PY" -m pip install --force-reinstall --no-deps --disable-pip-version-check -q "$wheel"
DCTCHOP_REQUIRE_TORCH=1 DCTCHOP_BIN="$PWD/target/debug/dctchop" "$PY" -m pytest -q -p no:cacheprovider python/tests/test_torch.py

echo "== conformance suite graphs/ run by PyTorch (graphs/torch_runner.py; CUDA where there is one) [disk: $(disk_free)]"
"$PY" graphs/verify.py --runtime custom --runner graphs/torch_runner.py:run
