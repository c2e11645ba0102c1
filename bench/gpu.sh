#!/usr/bin/env bash
# GPU numbers for bench/README.md ("GPU"): the conformance suite and graph timings on a CUDA GPU.
#   bash bench/gpu.sh export [DIR]        # anywhere with the release binary: the graph set (KBs)
#   bash bench/gpu.sh run [DIR] [OUT]     # on the GPU machine (torch, onnx, numpy; onnxruntime
#                                         # with CUDA if installed): verify.py + bench/gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-}"; dir="${2:-target/gpu-graphs}"
case "$cmd" in
export)
    bin="${DCTCHOP_BIN:-target/release/dctchop}"
    [ -x "$bin" ] || cargo build --release --locked --quiet
    mkdir -p "$dir"
    ex() { "$bin" export --target cuda --force -o "$dir" "$@" >/dev/null; }
    # issue 11's CPU grid points (about 80-100 MB per batch) in three forms ...
    for form in full 16 auto; do
        ex --cf 4 --res 256 --batch 100 --tile "$form"
        ex --cf 4 --res 1024 --batch 8 --tile "$form"
    done
    # ... batches of about 0.8 GB (what a GPU needs to reach its memory speed), CF 2/4/7, f16,
    # and int8/int16 codes in.
    for cf in 2 4 7; do ex --cf "$cf" --res 256 --batch 1000; done
    ex --cf 4 --res 1024 --batch 64
    ex --cf 4 --res 256 --batch 1000 --dtype f16
    ex --cf 4 --res 256 --batch 1000 --variant triangle
    for res in "256 --batch 100" "256 --batch 1000" "1024 --batch 64"; do
        # shellcheck disable=SC2086
        ex --cf 4 --res $res --quant 0.1 --code i8
    done
    ex --cf 4 --res 256 --batch 1000 --quant 0.01 --code i16
    echo "$(ls "$dir"/*.json | wc -l) graph pairs in $dir"
    ;;
run)
    out="${3:-.}"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    python3 -c 'import torch, onnx, numpy; print("torch", torch.__version__, "cuda", torch.version.cuda, "onnx", onnx.__version__)'
    python3 -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())' || true
    python3 graphs/verify.py --runtime custom --runner graphs/torch_runner.py:run --json > "$out/verify_torch_cuda.json" || true
    python3 graphs/verify.py --runtime custom --runner graphs/torch_runner.py:run | tail -8
    if python3 -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
        python3 graphs/verify.py --runtime onnxruntime --provider CUDAExecutionProvider | tail -8
    fi
    python3 bench/gpu.py "$dir" --csv "$out/gpu.csv"
    ;;
*) echo "usage: bash bench/gpu.sh export|run [DIR] [OUT]" >&2; exit 2 ;;
esac
