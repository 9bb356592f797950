#!/usr/bin/env bash
# The GPU checks in as few device calls as possible (each call: at most 10 minutes).
#
#   bash benchmarks/gpu_session.sh check    # CUDA tests + the 528x400 benchmark (~6 min)
#   bash benchmarks/gpu_session.sh sweep    # 360p-1080p peak VRAM vs the baseline
#   bash benchmarks/gpu_session.sh train    # continue the bundled model's training, evaluate
#
# Run through the `device` tool from the repository root with carry [".whl", ".scratch"]:
# the GPU machine has torch but no VapourSynth, kornia or this project's data, so
# - .whl/ holds cp312 manylinux wheels of vapoursynth, kornia and kornia-rs
#   (`pip download --only-binary=:all: --platform manylinux_2_28_x86_64
#   --python-version 3.12 --no-deps -d .whl vapoursynth==81 kornia kornia-rs`);
# - .scratch/shared is a copy of ../shared (golden data; tests read $VSREMASTER_SHARED);
# - for `train`, .scratch/prepared is a copy of the prepared training data
#   (~/.cache/vsremaster/prepared, about 35 MB).
# Figures land in $OUT (the device tool brings them back); record them in RESULTS.md.
set -uo pipefail
stage=${1:?usage: gpu_session.sh check|sweep|train}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 VSREMASTER_SHARED=$PWD/.scratch/shared
nvidia-smi -L | tee "$OUT/device.txt"
git log --oneline -1 | tee -a "$OUT/device.txt"

case $stage in
check)
    timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_model.py \
        tests/test_cuda.py tests/test_faults.py tests/test_streaming.py 2>&1 | tail -20 \
        | tee "$OUT/tests.txt"
    timeout 300 python3 -m vsremaster bench --device cuda --width 528 --height 400 \
        --frames 64 --refs 6 --naive-frames 4 2>&1 | tail -40 | tee "$OUT/bench.txt"
    timeout 90 python3 benchmarks/conv_forms.py --device cuda --dtype fp16 --width 528 \
        --height 400 --frames 64 --push 16 --variants taps:8,frame:8 2>&1 | tail -6 \
        | tee "$OUT/conv_forms.txt"
    ;;
sweep)
    timeout 560 python3 -m vsremaster bench --device cuda --sweep 2>&1 | tail -40 \
        | tee "$OUT/sweep.txt"
    ;;
train)
    run=/tmp/train
    timeout 480 python3 -m vsremaster train --data-dir .scratch/prepared --out $run \
        --init models/vsremaster-lite.safetensors --size lite --device cuda --workers 12 \
        --batch 16 --crop 256 256 --lr 2e-4 --beta 2 --steps 3000 --max-minutes 7 \
        --no-progress 2>&1 | tail -20 | tee "$OUT/train.txt"
    cp $run/best.safetensors $run/log.jsonl "$OUT/" 2>/dev/null
    held=.scratch/prepared/heldout
    timeout 100 python3 -m vsremaster evaluate $held/* --weights $run/best.safetensors \
        2>&1 | tail -25 | tee "$OUT/eval.txt"
    ;;
*)
    echo "unknown stage $stage" >&2
    exit 2
    ;;
esac
