#!/usr/bin/env bash
# flopwatt's GPU check, for a CUDA node with no network (torch, nvidia-ml-py, pandas, pyarrow
# and rich preinstalled; the project runs from this checkout, nothing is installed).
#
#   bash scripts/gpu-check.sh [OUT_DIR]          (default: results/gpu-check)
#
# Steps, each with its own time limit so that the whole check stays under 6 minutes
# (limits: 80 + 75 + 45 + 35 + 55 + 20 + 30 s, plus the environment and the tar):
#   1. the GPU tests: real CUDA events against wall time, NVML clocks and energy, the peak
#      lookup on the real SKU, graph mode, the SDPA backends, a tiny ceiling search;
#   2. ceilings: a quick bf16 and fp8 search (10 s warm-up, since the tests have just run,
#      and 20 s per dtype), and the memory bandwidth (copy and read), beside the published
#      MAMF figures; the later steps divide by them (% of ceiling);
#   3. matmul in every dtype at 4096^3 and 8192^3 (short timing budgets, 1 s energy windows);
#   4. energy: bf16 and fp8 matmul at 8192^3 with 5 s windows (counter against integral,
#      TFLOP/s per W, idle power, clocks);
#   5. attention: bf16 fwd and bwd at 4k and 8k, causal and not, flash and cudnn;
#   6. collectives on the one GPU (NCCL, world size 1): they run, #wrong is 0, busbw is 0;
#   7. health: NVML checks, bf16 matmul, copy and the SDC canary on the one GPU (no peers, so
#      those rows are N/A; the baseline is step 3's run of this GPU, so that comparison is
#      real); exits 1 on a FAIL. Its run folder goes only into runs.tar.gz.
# Writes into OUT_DIR (at most 8 files): gpu-check.log, runs.tar.gz (every run folder, raw
# samples and power traces included) and, for results/baselines/<sku>/, <sku>/ceiling.json,
# <sku>/{matmul,attention}-{run.json,cases.jsonl} and <sku>/energy-cases.jsonl (the energy
# run's run.json is only in the tar). Exits non-zero when a test fails or a figure is
# implausible (scripts/gpu_check.py, gpu_check_ceiling.py and gpu_check_attention.py say
# which).
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
timeout 80 python -m pytest -q -p no:cacheprovider -m gpu tests/gpu || status=1

step "ceilings: bf16 and fp8 (quick), memory bandwidth"
# SIGTERM from timeout still writes the best found so far (flagged interrupted).
ceilings="$work/ceiling"
timeout 75 python -m bench ceiling --quick --dtype bf16,fp8 --warmup-s 10 --budget-s 20 \
    --baselines "$ceilings" || status=1
python scripts/gpu_check_ceiling.py "$ceilings" "$out" --expect bf16,fp8 || status=1

step "matmul: every dtype at 4096^3 and 8192^3"
timeout 45 python -m bench run --kernel matmul --shape 4096x4096x4096,8192x8192x8192 \
    --timeout-s 3 --warmup-s 0.5 --energy-window-s 1 --energy-ramp-s 0.2 \
    --baselines "$ceilings" --out "$work/matmul" || status=1
run_dir="$(only_run matmul)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check.py "$run_dir" "$out" --label matmul || status=1
else
    echo "no matmul run folder was written"; status=1
fi

step "energy: bf16 and fp8 at 8192^3, 5 s windows"
timeout 35 python -m bench run --kernel matmul --shape 8192x8192x8192 --dtype bf16,fp8 \
    --timeout-s 3 --energy-window-s 5 --baselines "$ceilings" --out "$work/energy" || status=1
run_dir="$(only_run energy)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check.py "$run_dir" "$out" --label energy --cases-only || status=1
else
    echo "no energy run folder was written"; status=1
fi

step "attention: bf16 fwd and bwd, 4k and 8k, causal and not, flash and cudnn"
# 16 cases of Llama-3-8B heads (32 q, 8 kv, D 128; batch 4 and 2): 1 s of timing and a
# 1 s energy window each.
timeout 55 python -m bench run --kernel attention --dtype bf16 \
    --attn "llama3-8b:4096;llama3-8b:8192" --mask none,causal --pass fwd,bwd \
    --backend flash,cudnn --timeout-s 1 --energy-window-s 1 --idle-s 0 \
    --baselines "$ceilings" --out "$work/attention" || status=1
run_dir="$(only_run attention)"
if [ -n "$run_dir" ]; then
    python scripts/gpu_check_attention.py "$run_dir" "$out" || status=1
else
    echo "no attention run folder was written"; status=1
fi

step "collectives: world size 1 on this GPU (NCCL)"
timeout 20 python -m bench run --kernel allreduce --bytes 8,1Mi,256Mi --dtype fp32,bf16 \
    --collective allreduce,allgather,reduce_scatter --place out,in --idle-s 0 \
    --out "$work/allreduce" || status=1
run_dir="$(only_run allreduce)"
python - "$run_dir" <<'PY' || status=1
import sys
from bench.record import load_run
cases = load_run(sys.argv[1]).cases
bad = cases[(cases.status != "ok") | (cases.wrong_elements != 0) | (cases.bus_factor != 0)]
print(f"{len(cases)} collective cases, {len(bad)} not ok, #wrong 0 and busbw factor 0 expected")
print(cases[["params.shape_label", "dtype", "status", "time_mean_s", "algbw_bytes_per_s"]])
sys.exit(1 if len(bad) or len(cases) != 36 else 0)
PY

step "health: NVML checks, matmul, copy and SDC canary on this GPU"
# One GPU: the peer rows are N/A; the matmul run of step 3 (bf16 8192^3 on this very GPU)
# is the baseline, so the baseline comparison is real (copy and canary: N/A, it has none).
matmul_run="$(only_run matmul)"
timeout 30 python -m bench health --out "$work/health" \
    ${matmul_run:+--baseline "$matmul_run"} || status=1

tar -czf "$out/runs.tar.gz" -C "$work" . || status=1
step "done: exit $status"
exit "$status"
