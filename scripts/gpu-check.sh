#!/usr/bin/env bash
# flopwatt's GPU check, for a CUDA node with no network (torch, triton, nvidia-ml-py, pandas,
# pyarrow and rich preinstalled; the project runs from this checkout, nothing is installed).
# On a ROCm node (amd-smi or rocm-smi on PATH, torch.version.hip set; amdsmi instead of
# nvidia-ml-py) it runs the AMD equivalents of the same steps under the same limits: amd-smi
# instead of nvidia-smi, attention with flash and efficient (no cuDNN on ROCm), the energy
# and sampler steps through amdsmi, health with the amdsmi rows. The AMD path has not yet
# run on AMD hardware.
#
#   bash scripts/gpu-check.sh [--quick] [--plan] [OUT_DIR]      (default: results/gpu-check)
#
#   --quick  the same steps with fewer shapes and shorter budgets: 2 minutes, to see
#            what breaks before the full check (about 4.6 minutes)
#   --plan   print the steps with their expected times and limits, run nothing (no GPU needed)
#
# Without a CUDA or ROCm device it says so and exits 2 within seconds. Every step runs under its own
# `timeout` (scripts/gpu_check_step.py): a step that fails for a transient reason (its limit
# struck, a signal, a CUDA/NVML/NCCL availability error) is retried once if the retry fits
# before the deadline, and every step ends in one verdict line, whatever happened. The GPU
# steps never run past the deadline (full 360 s, quick 150 s); the summary and the archive
# follow it under their own limits.
#
# Expected times on an H200 are read from the code; each limit is at least 1.3x its step's
# expected time. Each Python process pays about 5 s for importing torch and starting CUDA
# (and NVML where it is used); that is in every figure below.
#   step         full: expected / limit      quick: expected / limit
#   environment       7 / 20                      6 / 15    flopwatt env (5 s torch + 1-2 s)
#   nvidia-smi        2 / 10                      2 / 10    one query (amd-smi on ROCm)
#   tests            55 / 75                     14 / 25    tests/gpu; quick: not slow
#   ceiling          52 / 70                     18 / 25    5 + warm-up 5|1 + 2 dtypes x
#                                                           (budget 15|2 + ~2 check) +
#                                                           memory ~6|4 + plausibility 1
#   matmul           30 / 45                     11 / 20    6 dtypes x 2|1 shapes, ~1|1 s a
#                                                           case, no energy
#   timers           17 / 30                      9 / 15    5 + triton 2 + 5|2 pairs x ~2|1 s
#   energy           26 / 40                     15 / 25    5 + period probe 2 + idle 2|1 +
#                                                           2 x (~1.5 + ramp 0.5|0.2 +
#                                                           window 5|2)
#   attention        28 / 40                     10 / 15    8|4 SDPA cases x ~3|1.2 s
#   collectives      21 / 30                      7 / 15    36|3 NCCL cases (world size 1)
#   sampler          15 / 30                      7 / 15    5 + 5|2 pairs x 2 x ~0.8 s
#   health           20 / 30                     18 / 25    NVML reads, matmul, copy, canary
#   summary           3 / 20                      2 / 15    gpu-check.json (no torch)
#   archive           2 / 20                      1 / 10    runs.tar.gz
#   total           278 s (4.6 min)             120 s (2.0 min)
#
# One GPU: NCCL runs with world size 1 only (#wrong 0, busbw 0). Multi-rank NCCL, busbw and
# scaling on GPUs remain unverified until a multi-GPU machine runs them.
#
# Writes at most 8 files into OUT_DIR: gpu-check.log, gpu-check.json (every figure beside its
# floor, every step's verdict, the health rows), runs.tar.gz (every run folder, raw samples
# and power traces, the steps' JSON) and, for results/baselines/<sku>/, <sku>/ceiling.json,
# <sku>/matmul-{run.json,cases.jsonl}, <sku>/attention-cases.jsonl and
# <sku>/energy-cases.jsonl. Exits 0 when every step passed and every figure met its floor, 1
# otherwise, 2 without a GPU or on bad arguments.
set -uo pipefail

usage() { echo "usage: bash scripts/gpu-check.sh [--quick] [--plan] [OUT_DIR]"; }

quick=0
plan=0
out=""
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --plan) plan=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "gpu-check: unknown option $arg" >&2; usage >&2; exit 2 ;;
        *)
            if [ -n "$out" ]; then
                echo "gpu-check: one OUT_DIR only (got $out and $arg)" >&2; usage >&2; exit 2
            fi
            out="$arg" ;;
    esac
done

# nvidia or amd, from the tools on PATH (nvidia-smi first); empty when neither is there.
vendor=""
if command -v nvidia-smi >/dev/null 2>&1; then
    vendor=nvidia
elif command -v amd-smi >/dev/null 2>&1 || command -v rocm-smi >/dev/null 2>&1; then
    vendor=amd
fi
smi_step=nvidia-smi
[ "$vendor" = amd ] && smi_step=amd-smi

# name expected_s limit_s, in order; the expected times are the header's table
if [ "$quick" = 1 ]; then
    mode=quick
    deadline_s=150
    steps=(
        "environment 6 15" "$smi_step 2 10" "tests 14 25" "ceiling 18 25" "matmul 11 20"
        "timers 9 15" "energy 15 25" "attention 10 15" "collectives 7 15" "sampler 7 15"
        "health 18 25"
    )
    final=("summary 2 15" "archive 1 10")
else
    mode=full
    deadline_s=360
    steps=(
        "environment 7 20" "$smi_step 2 10" "tests 55 75" "ceiling 52 70" "matmul 30 45"
        "timers 17 30" "energy 26 40" "attention 28 40" "collectives 21 30" "sampler 15 30"
        "health 20 30"
    )
    final=("summary 3 20" "archive 2 20")
fi

if [ "$plan" = 1 ]; then
    total=0
    echo "gpu-check $mode plan: step expected_s limit_s"
    for entry in "${steps[@]}" "${final[@]}"; do
        read -r name expected limit <<<"$entry"
        echo "$name $expected $limit"
        total=$((total + expected))
    done
    echo "expected total: $total s; GPU steps stop at the $deadline_s s deadline (${vendor:-no} GPU tools found)"
    exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# No GPU: say so in seconds, before anything is written.
if [ -z "$vendor" ]; then
    echo "gpu-check: no CUDA device here (nvidia-smi is not on PATH, nor amd-smi or rocm-smi for ROCm); run it on an NVIDIA or AMD GPU node" >&2
    exit 2
fi
if [ "$vendor" = amd ]; then
    if ! timeout 60 python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() and torch.version.hip else 3)'; then
        echo "gpu-check: no ROCm device here (torch.cuda.is_available() is False, torch is not a ROCm build, or torch failed)" >&2
        exit 2
    fi
elif ! timeout 60 python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'; then
    echo "gpu-check: no CUDA device here (torch.cuda.is_available() is False or torch failed)" >&2
    exit 2
fi

out="${out:-$root/results/gpu-check}"
mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$out/gpu-check.log"
: >"$log"
export work out mode vendor

say() { echo "$*" | tee -a "$log"; }
only_run() { ls -d "$work/$1"/*/ 2>/dev/null | tail -n 1; }
export -f only_run

# ---- the steps: each starts clean, so that a retry does not read the first try's files

step_environment() { python -m bench env; }

step_nvidia_smi() {
    nvidia-smi --query-gpu=name,pci.bus_id,driver_version,persistence_mode,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu \
        --format=csv
}

step_amd_smi() {
    # amd-smi (ROCm 6+), or the older rocm-smi; power, clocks, temperatures and energy once.
    if command -v amd-smi >/dev/null 2>&1; then
        amd-smi static --asic --bus --driver --vbios --limit &&
            amd-smi metric --power --clock --temperature --energy
    else
        rocm-smi --showproductname --showbus --showdriverversion --showpower --showclocks \
            --showtemp --showenergycount
    fi
}

step_tests() {
    local marks="gpu"
    [ "$mode" = quick ] && marks="gpu and not slow"
    python -m pytest -q -p no:cacheprovider -m "$marks" tests/gpu
}

step_ceiling() {
    # SIGTERM from timeout still writes the best found so far (flagged interrupted).
    local warm=5 budget=15
    [ "$mode" = quick ] && warm=1 budget=2
    rm -rf "$work/ceiling"
    python -m bench ceiling --quick --dtype bf16,fp8 --warmup-s "$warm" --budget-s "$budget" \
        --baselines "$work/ceiling" &&
        python scripts/gpu_check_ceiling.py "$work/ceiling" "$out" --expect bf16,fp8
}

step_matmul() {
    local shapes="4096x4096x4096,8192x8192x8192"
    [ "$mode" = quick ] && shapes="8192x8192x8192"
    rm -rf "$work/matmul"
    python -m bench run --kernel matmul --dtype bf16,fp16,tf32,fp32,fp8,int8 --shape "$shapes" \
        --timeout-s 1.5 --min-time-s 0.3 --warmup-s 0.2 --power none --idle-s 0 \
        --baselines "$work/ceiling" --out "$work/matmul" || return
    python scripts/gpu_check.py "$(only_run matmul)" "$out" --label matmul
}

step_timers() {
    local pairs=5
    [ "$mode" = quick ] && pairs=2
    python scripts/gpu_check_timers.py --pairs "$pairs" --json "$work/timers.json"
}

step_energy() {
    local window=5 idle=2 ramp=0.5
    [ "$mode" = quick ] && window=2 idle=1 ramp=0.2
    rm -rf "$work/energy"
    python -m bench run --kernel matmul --shape 8192x8192x8192 --dtype bf16,fp8 \
        --timeout-s 1.5 --min-time-s 0.3 --warmup-s 0.2 --energy-window-s "$window" \
        --energy-ramp-s "$ramp" --idle-s "$idle" --baselines "$work/ceiling" \
        --out "$work/energy" || return
    python scripts/gpu_check.py "$(only_run energy)" "$out" --label energy --cases-only
}

step_attention() {
    # Llama-3-8B heads at 8k (B 2, 32 q heads, 8 kv heads, D 128), flash and cuDNN (ROCm:
    # flash and efficient, both AOTriton or CK).
    local masks="none,causal" budget=1.5 backends="flash,cudnn"
    [ "$mode" = quick ] && masks="none" budget=0.5
    [ "$vendor" = amd ] && backends="flash,efficient" # ROCm has no cuDNN attention
    rm -rf "$work/attention"
    python -m bench run --kernel attention --dtype bf16 --attn "llama3-8b:8192" \
        --mask "$masks" --pass fwd,bwd --backend "$backends" --timeout-s "$budget" \
        --min-time-s 0.2 --warmup-s 0.2 --power none --idle-s 0 \
        --baselines "$work/ceiling" --out "$work/attention" || return
    python scripts/gpu_check_attention.py "$(only_run attention)" "$out" --cases-only
}

step_collectives() {
    local sizes="8,1Mi,256Mi" dtypes="fp32,bf16" places="out,in" expect=36
    [ "$mode" = quick ] && sizes="1Mi" dtypes="bf16" places="out" expect=3
    rm -rf "$work/allreduce"
    python -m bench run --kernel allreduce --bytes "$sizes" --dtype "$dtypes" \
        --collective allreduce,allgather,reduce_scatter --place "$places" --idle-s 0 \
        --power none --timeout-s 1 --out "$work/allreduce" || return
    python - "$(only_run allreduce)" "$expect" <<'PY'
import sys
from bench.results.record import load_run
cases = load_run(sys.argv[1]).cases  # schema 2: dotted columns, part.field
status, wrong = cases["identity.status"], cases["collective.wrong_elements"]
bad = cases[(status != "ok") | (wrong != 0) | (cases["collective.bus_factor"] != 0)]
print(f"{len(cases)} collective cases ({sys.argv[2]} expected), {len(bad)} not ok; "
      "#wrong 0 and busbw factor 0 expected at world size 1")
print(cases[["identity.params.shape_label", "identity.dtype", "identity.status",
             "timing.time_mean_s", "collective.algbw_bytes_per_s"]])
if len(bad) or len(cases) != int(sys.argv[2]):
    print("IMPLAUSIBLE: collectives at world size 1")
    sys.exit(1)
PY
}

step_sampler() {
    local pairs=5
    [ "$mode" = quick ] && pairs=2
    python scripts/sampler_overhead.py --device cuda --pairs "$pairs" --json "$work/sampler.json"
}

step_health() {
    # One GPU: the peer rows are N/A; no blessed health baseline for this SKU in the work
    # folder, so the baseline rows are N/A too (the first health run on a SKU informs).
    rm -rf "$work/health"
    python -m bench health --out "$work/health" --baselines "$work/ceiling"
}

step_summary() { python scripts/gpu_check_summary.py "$work" "$out" --mode "$mode"; }

step_archive() { tar -czf "$out/runs.tar.gz" -C "$work" .; }

export -f step_environment step_nvidia_smi step_amd_smi step_tests step_ceiling step_matmul step_timers \
    step_energy step_attention step_collectives step_sampler step_health step_summary \
    step_archive

status=0
begin=$SECONDS
deadline=$(($(date +%s) + deadline_s))
run() { # name limit [--deadline EPOCH]
    local name="$1" limit="$2"
    shift 2
    say ""
    say "== $name (t+$((SECONDS - begin)) s, limit $limit s)"
    python scripts/gpu_check_step.py --name "$name" --limit "$limit" --log "$log" \
        --verdicts "$work/verdicts.jsonl" "$@" -- bash -c "step_${name//-/_}" || status=1
}

say "flopwatt GPU check ($mode, $vendor GPU, $smi_step) in $root -> $out"
say "One GPU: multi-rank NCCL, busbw and scaling remain unverified until a multi-GPU machine runs them."
for entry in "${steps[@]}"; do
    read -r name _ limit <<<"$entry"
    run "$name" "$limit" --deadline "$deadline"
done
for entry in "${final[@]}"; do
    read -r name _ limit <<<"$entry"
    run "$name" "$limit"
done
say ""
say "== done in $((SECONDS - begin)) s: exit $status; $(find "$out" -type f | wc -l) files in $out"
exit "$status"
