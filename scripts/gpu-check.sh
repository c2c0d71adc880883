#!/usr/bin/env bash
# flopwatt's GPU check, for a CUDA node with no network (torch, nvidia-ml-py, pandas, pyarrow
# and rich preinstalled; the project runs from this checkout, nothing is installed).
#
#   bash scripts/gpu-check.sh [OUT_DIR]          (default: results/gpu-check)
#
# Steps, each with its own time limit so that the whole check stays under 6 minutes:
#   1. the GPU tests: real CUDA events against wall time, NVML clocks and energy, the peak
#      lookup on the real SKU, graph mode, the SDPA backends;
#   2. the matmul suite in every dtype (short timing budgets, 1 s energy windows);
#   3. energy: bf16 and fp8 matmul at 8192^3 with 5 s windows (counter against integral,
#      TFLOP/s per W, idle power, clocks);
#   4. attention: bf16 fwd and bwd at 4k and 8k, causal and not, flash and cudnn.
# Writes into OUT_DIR (at most 8 files): gpu-check.log, runs.tar.gz (every run folder, raw
# samples and power traces included) and <sku>/{matmul,energy,attention}-{run.json,
# cases.jsonl} for results/baselines/<sku>/. Exits non-zero when a test fails or a figure is
# implausible (scripts/gpu_check.py and gpu_check_attention.py say which).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/results/gpu-check}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root" || exit 2
exec > >(tee "$out/gpu-check.log") 2>&1

status=0
begin=$SECONDS
step() { echo; echo "== $1 (t+$((SECONDS - begin)) s)"; }
only_run() { ls -d "$work/$1"/*/ 2>/dev/null | head -n 1; }

step "environment"
python -m bench env || status=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu \
    --format=csv 2>/dev/null || true

step "GPU tests"
timeout 90 python -m pytest -q -p no:cacheprovider -m gpu tests/gpu || status=1

step "matmul suite, every dtype"
timeout 140 python -m bench run --suite matmul --timeout-s 3 --warmup-s 0.5 \
    --energy-window-s 1 --energy-ramp-s 0.2 --out "$work/matmul" || status=1
run_dir="$(only_run matmul)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check.py "$run_dir" "$out" --label matmul || status=1
else
    echo "no matmul run folder was written"; status=1
fi

step "energy: bf16 and fp8 at 8192^3, 5 s windows"
timeout 35 python -m bench run --kernel matmul --shape 8192x8192x8192 --dtype bf16,fp8 \
    --timeout-s 3 --energy-window-s 5 --out "$work/energy" || status=1
run_dir="$(only_run energy)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check.py "$run_dir" "$out" --label energy || status=1
else
    echo "no energy run folder was written"; status=1
fi

step "attention: bf16 fwd and bwd, 4k and 8k, causal and not, flash and cudnn"
# 16 cases of Llama-3-8B heads (32 q, 8 kv, D 128; batch 4 and 2): 1.5 s of timing and a
# 1 s energy window each.
timeout 80 python -m bench run --kernel attention --dtype bf16 \
    --attn "llama3-8b:4096;llama3-8b:8192" --mask none,causal --pass fwd,bwd \
    --backend flash,cudnn --timeout-s 1.5 --energy-window-s 1 --idle-s 0 \
    --out "$work/attention" || status=1
run_dir="$(only_run attention)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check_attention.py "$run_dir" "$out" || status=1
else
    echo "no attention run folder was written"; status=1
fi

tar -czf "$out/runs.tar.gz" -C "$work" . || status=1
step "done: exit $status"
exit "$status"
