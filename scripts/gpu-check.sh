#!/usr/bin/env bash
# flopwatt's GPU check, for a CUDA node with no network (torch, nvidia-ml-py, pandas, pyarrow
# and rich preinstalled; the project runs from this checkout, nothing is installed).
#
#   bash scripts/gpu-check.sh [OUT_DIR]          (default: results/gpu-check)
#
# Runs the GPU tests (real CUDA events, NVML, peak lookup, graph mode), then the matmul
# suite across all dtypes, prints the figures and writes into OUT_DIR: gpu-check.log,
# run.tar.gz (the whole run folder, raw samples included) and <sku>/{run.json,cases.jsonl,
# summary.csv} for results/baselines/<sku>/. Exits non-zero when a test fails or a figure
# is implausible (scripts/gpu_check.py says which).
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
step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }

step "environment"
python -m bench env || status=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu \
    --format=csv 2>/dev/null || true

step "GPU tests"
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/gpu || status=1

step "matmul suite, every dtype"
start=$SECONDS
timeout 240 python -m bench run --suite matmul --timeout-s 5 --out "$work/runs" || status=1
echo "matmul suite took $((SECONDS - start)) s"

step "figures and plausibility"
run_dir="$(ls -d "$work"/runs/*/ 2>/dev/null | head -n 1)"
if [ -z "$run_dir" ]; then
    echo "no run folder was written"
    status=1
else
    python scripts/gpu_check.py "$run_dir" "$out" || status=1
    tar -czf "$out/run.tar.gz" -C "$(dirname "$run_dir")" "$(basename "$run_dir")"
fi

step "done: exit $status"
exit "$status"
