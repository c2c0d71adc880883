"""flopwatt's command line: the only place that parses argv and chooses a device.

Module level imports only the standard library, so `flopwatt --help` never loads torch.
Bad input exits with code 2 and one line on stderr; Ctrl-C during a run exits 130 with
every finished case on disk.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.commands.history import add_history_commands, add_history_option, cmd_history
from bench.commands.results import RESULT_COMMANDS, _fraction, add_result_commands
from bench.errors import UsageError
from bench.execution.ranks import RankFailure  # stdlib-only at import: --help stays torch-free

EXIT_USAGE = 2
EXIT_RANK_FAILURE = 3  # a rank died or hung (bench.execution.ranks.RankFailure)
EXIT_NAGIOS_UNKNOWN = 3  # `history check --nagios`: bad input is UNKNOWN to a monitor
EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (128 + 13)
DEFAULT_OUT = Path("results/runs")
DEFAULT_BASELINES = Path("results/baselines")  # bench.results.blessed.ceiling's default too


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def _nonnegative_float(text: str) -> float:
    if text.strip() == "0":
        return 0.0
    return _positive_float(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line and exit code 2 (never usage dumps)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flopwatt",
        description="Measure how much of a device's peak compute real kernels reach.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="measure a suite or chosen cases (default: the quick suite)")
    run.add_argument(
        "--suite",
        default="quick",
        help="named suite: quick (default), matmul, attention, collectives, full, nightly",
    )
    run.add_argument("--kernel", help="comma-separated kernels (flopwatt list shows them)")
    _add_kernel_flags(run)
    run.add_argument(
        "--nproc", type=_positive_int, help="start N local ranks with torch's elastic launcher"
    )
    run.add_argument(
        "--collective-timeout-s",
        type=_positive_float,
        default=300.0,
        help="a rank that dies or hangs stops the others within this (300)",
    )
    run.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    run.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder that receives the run folder (default results/runs)",
    )
    run.add_argument(
        "--peak",
        action="append",
        default=[],
        metavar="DTYPE=OPS_PER_S",
        help="override a peak, e.g. bf16=989e12 (repeatable or comma-separated)",
    )
    run.add_argument("--timeout-s", type=_positive_float, help="per-case time limit")
    run.add_argument("--max-noise", type=_positive_float, help="target relative noise (0.01)")
    run.add_argument(
        "--timing",
        default="auto",
        choices=("auto", "cold", "hot", "graph"),
        help="sampling mode (auto: cold on GPU, graph for us-scale kernels, hot on CPU)",
    )
    run.add_argument("--min-samples", type=_positive_int, help="samples before stopping (10)")
    run.add_argument("--min-time-s", type=_positive_float, help="measured time before stopping")
    run.add_argument("--warmup-s", type=_nonnegative_float, help="minimum warm-up per case")
    run.add_argument(
        "--ceiling-budget-s",
        type=_positive_float,
        help="suites that measure their ceilings (full): search seconds per dtype",
    )
    run.add_argument(
        "--ceiling-max-dim",
        type=_positive_int,
        metavar="N",
        help="suites that measure their ceilings: largest M, N or K searched",
    )
    run.add_argument(
        "--ceiling-warmup-s",
        type=_nonnegative_float,
        help="suites that measure their ceilings: thermal warm-up before the search",
    )
    run.add_argument(
        "--ceiling-no-memory",
        action="store_true",
        help="suites that measure their ceilings: the matmul ceilings only, no memory ceiling",
    )
    run.add_argument("--threads", type=_positive_int, help="CPU threads (default: torch's)")
    run.add_argument(
        "--init",
        default="randn",
        choices=("randn", "zeros", "ones"),
        help="input distribution (it changes power and clocks)",
    )
    run.add_argument("--seed", type=int, default=0, help="input seed")
    run.add_argument(
        "--power",
        default="auto",
        choices=("auto", "nvml", "amdsmi", "rapl", "estimate", "none"),
        help="energy source (auto: NVML on NVIDIA, amdsmi on AMD, RAPL on CPU, else a TDP "
        "estimate or none)",
    )
    run.add_argument(
        "--energy-window-s",
        type=_positive_float,
        help="counted energy window per case (default 5 on GPU, 1 on CPU)",
    )
    run.add_argument(
        "--energy-ramp-s",
        type=_nonnegative_float,
        help="uncounted ramp before the window (default 0.5 on GPU, 0.25 on CPU)",
    )
    run.add_argument("--tdp-w", type=_positive_float, help="TDP for --power estimate (CPUs)")
    run.add_argument(
        "--idle-s", type=_nonnegative_float, default=2.0, help="idle baseline length (2; 0 off)"
    )
    run.add_argument(
        "--baselines",
        type=Path,
        default=DEFAULT_BASELINES,
        help="reads the stored <this>/<sku>/ceiling.json (default results/baselines)",
    )
    add_history_option(run)

    env = sub.add_parser("env", help="show the environment flopwatt records with every run")
    env.add_argument("--device", default="auto")
    env.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("list", help="list kernels, dtypes and suites")

    peaks = sub.add_parser("peaks", help="show the peak table, or the peaks of one device")
    peaks.add_argument(
        "--gpu-name", help='device name as torch reports it, e.g. "NVIDIA H100 PCIe"'
    )
    peaks.add_argument("--compute-capability", help="e.g. 9.0")
    peaks.add_argument("--sm-count", type=_positive_int, help="SM count, to derive unknown SKUs")
    peaks.add_argument("--max-clock-mhz", type=_positive_float, help="max SM clock, for derive")
    peaks.add_argument("--json", action="store_true", help="print JSON")

    ceiling = sub.add_parser(
        "ceiling", help="measure this device's best matmul rates and memory bandwidth"
    )
    ceiling.add_argument("--dtype", help="matmul dtypes (default bf16 on a GPU, fp32 on a CPU)")
    depth = ceiling.add_mutually_exclusive_group()
    depth.add_argument("--quick", action="store_true", help="about a minute per dtype (default)")
    depth.add_argument("--thorough", action="store_true", help="a wider, finer, longer search")
    ceiling.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    ceiling.add_argument("--budget-s", type=_positive_float, help="search seconds per dtype")
    ceiling.add_argument(
        "--warmup-s", type=_nonnegative_float, help="thermal warm-up (30 on a GPU, 1 on a CPU)"
    )
    ceiling.add_argument(
        "--max-dim",
        type=_positive_int,
        metavar="N",
        help="largest M, N or K searched (20480 on a GPU; 2048 on a CPU, 4096 thorough)",
    )
    ceiling.add_argument("--no-memory", action="store_true", help="skip the memory ceiling")
    ceiling.add_argument("--threads", type=_positive_int, help="CPU threads (default: torch's)")
    ceiling.add_argument(
        "--baselines",
        type=Path,
        default=DEFAULT_BASELINES,
        help="writes <this>/<sku>/ceiling.json (default results/baselines)",
    )
    add_history_option(ceiling)
    add_result_commands(sub)
    _add_health(sub)
    _add_project(sub)
    add_history_commands(sub)
    return parser


def _add_kernel_flags(run: argparse.ArgumentParser) -> None:
    """--dtype, and one flag per axis each kernel declares (kernels.spec): --shape, --attn, ..."""
    from kernels import specs

    dtypes = dict.fromkeys(d for spec in specs().values() for d in spec.dtypes)
    run.add_argument("--dtype", help=f"comma-separated dtypes: {','.join(dtypes)}")
    for spec in specs().values():
        for axis in spec.axes:
            run.add_argument(
                axis.flag,
                dest=_axis_dest(spec.name, axis.name),
                action="append" if axis.repeatable else "store",
                metavar=axis.metavar,
                help=axis.help,
            )


def _axis_dest(kernel: str, axis: str) -> str:
    return f"axis:{kernel}:{axis}"


def _kernel_axes(args: argparse.Namespace) -> dict[str, dict[str, tuple[str, ...]]]:
    """RunPlan.axes from the kernel flags given: {kernel: {axis: items}}."""
    from bench.execution.plan import split_list, split_shapes
    from kernels import specs

    axes: dict[str, dict[str, tuple[str, ...]]] = {}
    for spec in specs().values():
        for axis in spec.axes:
            raw = getattr(args, _axis_dest(spec.name, axis.name))
            items = split_shapes(raw, axis.flag) if axis.repeatable else split_list(raw)
            if items:
                axes.setdefault(spec.name, {})[axis.name] = items
    return axes


def _add_health(sub: Any) -> None:
    """`flopwatt health` (bench.commands.health.command): NVML checks, speed and the SDC canary."""
    p = sub.add_parser("health", help="check every GPU of the node: NVML, speed, SDC canary")
    p.add_argument(
        "--device", default="all", help="all (every GPU, else the CPU), cpu, or cuda:N,cuda:M"
    )
    p.add_argument(
        "--baseline",
        default="auto",
        metavar="auto|PATH",
        help="auto: <--baselines>/<sku>/health; or a blessed health run folder",
    )
    p.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES, help="where auto looks")
    p.add_argument("--format", choices=("table", "json", "md"), default="table")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent of the run folder")
    p.add_argument("--nproc", type=_positive_int, help="N local ranks (default: one per GPU)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads (default: torch's)")
    p.add_argument(
        "--peer-warn", type=_fraction, default=0.05, help="WARN this far below the peers (0.05)"
    )
    p.add_argument(
        "--peer-fail", type=_fraction, default=0.10, help="FAIL this far below the peers (0.10)"
    )
    p.add_argument(
        "--baseline-min",
        type=_positive_float,
        default=0.95,
        help="FAIL under this x the baseline's median, beyond its noise (0.95)",
    )
    p.add_argument(
        "--temp-warn-c", type=_positive_float, default=80.0, help="idle temperature to WARN at"
    )
    p.add_argument("--expect-gpus", type=_positive_int, help="FAIL unless NVML sees N GPUs")
    p.add_argument(
        "--shape",
        metavar="MxNxK",
        help="the matmul's shape (8192x8192x8192 on a GPU, 512x512x512 on a CPU)",
    )
    p.add_argument(
        "--copy-bytes",
        metavar="SIZE",
        help="the copy's buffer, e.g. 32Mi or 4Gi (GPU: 8 x L2, at least 1 GiB; CPU: 32Mi)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        help="timed repeats of each kernel (3 on a GPU, 5 on a CPU)",
    )
    p.add_argument(
        "--timeout-s",
        type=_positive_float,
        help="time limit of each repeat per kernel; minimum time and warm-up scale with it",
    )
    p.add_argument(
        "--collective-timeout-s",
        type=_positive_float,
        default=120.0,
        help="how long rank 0 waits for the other ranks (120)",
    )
    add_history_option(p)
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the launching process names the run
    p.add_argument("--canary-flip-rank", type=int, help=argparse.SUPPRESS)  # a test seam


def _add_project(sub: Any) -> None:
    """`flopwatt project` (bench.commands.project): E(N), MFU and energy at 1k-16k GPUs."""
    from bench.commands.project.command import DEFAULT_GPUS, DEFAULT_HOST_W

    p = sub.add_parser("project", help="project scaling efficiency to 1k-16k GPUs from runs")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--mode", choices=("model", "dp"), default="model", help="dp: scaling cases")
    p.add_argument("--model", help="preset: gpt3-175b, llama3-70b, llama3-405b, megatron-530b, ...")
    for dim in ("layers", "hidden", "heads", "seq", "vocab", "ffn", "kv-heads"):
        p.add_argument(f"--{dim}", type=_positive_int, help=f"custom model: {dim}")
    p.add_argument("--gated", action="store_true", help="custom model: SwiGLU feed-forward")
    p.add_argument("--gpus", default=DEFAULT_GPUS, help=f"GPU counts N ({DEFAULT_GPUS})")
    p.add_argument("--tp", type=_positive_int, default=8, help="tensor parallel (8)")
    p.add_argument("--pp", type=_positive_int, default=1, help="pipeline stages (1)")
    p.add_argument("--vp", type=_positive_int, default=1, help="interleaved chunks per GPU (1)")
    p.add_argument("--microbatch", type=_positive_int, default=1, help="sequences (1)")
    p.add_argument("--global-batch", type=_positive_int, default=2048, help="sequences (2048)")
    p.add_argument("--recompute", choices=("none", "selective", "full"), default="selective")
    p.add_argument("--grad-bytes", type=_positive_int, default=2, help="per gradient element (2)")
    p.add_argument("--dp-overlap", type=_fraction, help="share of DP hidden (0.5, assumed)")
    p.add_argument("--goodput", type=_positive_float, default=1.0, help="useful share (1.0)")
    p.add_argument("--dtype", help="the matmul dtype to calibrate on (bf16 if measured)")
    p.add_argument("--peak", type=_positive_float, help="peak OPS/s for MFU (default: the run's)")
    p.add_argument("--mem-gbps", type=_positive_float, help="HBM GB/s for elementwise ops")
    p.add_argument("--gpus-per-node", type=_positive_int, help="GPUs per NVLink domain (8)")
    p.add_argument("--intra-gbps", type=_positive_float, help="NVLink ring busbw GB/s")
    p.add_argument("--nvls-gbps", type=_positive_float, help="NVLink SHARP busbw GB/s")
    p.add_argument("--nic-gbps", type=_positive_float, help="NIC line rate per GPU, Gb/s (400)")
    p.add_argument("--eta", type=_positive_float, help="network efficiency (0.92)")
    p.add_argument("--net-latency-us", type=_positive_float, help="per network hop (14)")
    p.add_argument("--pod-size", type=_positive_int, help="GPUs per non-blocking pod")
    p.add_argument("--oversubscription", type=_positive_float, help="above the pod, e.g. 7")
    p.add_argument("--pue", type=_positive_float, help="facility PUE")
    p.add_argument("--usd-per-kwh", type=_positive_float, help="price per kWh")
    p.add_argument(
        "--host-w-per-gpu",
        type=_nonnegative_float,
        default=DEFAULT_HOST_W,
        help=f"CPU, NIC and switch share per GPU ({DEFAULT_HOST_W:g} W, assumed)",
    )
    p.add_argument("--out", type=Path, help="folder for projection.json (RUN_DIR/projection)")
    p.add_argument("--no-plots", action="store_true", help="no projection.png")


def cmd_project(args: argparse.Namespace) -> int:
    from bench.commands.project.command import run_command

    return run_command(args)


def cmd_run(args: argparse.Namespace) -> int:
    from bench.commands.run import run_command

    return run_command(args, _kernel_axes(args))


def cmd_env(args: argparse.Namespace) -> int:
    import json

    from bench.devices import get_backend
    from bench.devices.environment import capture_environment, format_environment
    from bench.execution.session import PROJECT_ROOT

    backend = get_backend(args.device)
    try:
        env = capture_environment(backend.facts(), project_root=PROJECT_ROOT)
    finally:
        backend.close()
    print(json.dumps(env, indent=2) if args.json else format_environment(env))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench.execution.suites import SUITES, get_suite
    from kernels import registry

    print("kernels:")
    for name, spec in registry().specs.items():
        flags = " ".join(f"{a.flag} {a.form()}" for a in spec.axes)
        print(f"  {name:10s} {spec.description}")
        print(f"  {'':10s} dtypes: {', '.join(spec.dtypes)}\n  {'':10s} flags: {flags}")
    for warning in registry().warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("suites:")
    for name in SUITES:
        for kind in ("cuda", "cpu"):
            suite = get_suite(name, kind)
            n = sum(len(p.dtypes) * len(p.shapes) for p in suite.plans)
            print(f"  {name:10s} on {kind:4s}: {n:3d} cases, {suite.description}")
    return 0


def cmd_ceiling(args: argparse.Namespace) -> int:
    from bench.commands.ceiling.command import run_command

    return run_command(args)


def cmd_health(args: argparse.Namespace) -> int:
    from bench.commands.health.command import run_command

    return run_command(args)


def cmd_peaks(args: argparse.Namespace) -> int:
    from bench.commands.peak_table import show_peaks

    return show_peaks(
        args.gpu_name, args.compute_capability, args.sm_count, args.max_clock_mhz, as_json=args.json
    )


COMMANDS = {
    "run": cmd_run,
    "env": cmd_env,
    "list": cmd_list,
    "peaks": cmd_peaks,
    "ceiling": cmd_ceiling,
    "health": cmd_health,
    "project": cmd_project,
    "history": cmd_history,
}
COMMANDS.update(RESULT_COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"flopwatt: error: {exc}", file=sys.stderr)
        if "--nagios" in (sys.argv[1:] if argv is None else argv):
            print(f"FLOPWATT UNKNOWN - {exc}")
            return EXIT_NAGIOS_UNKNOWN
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flopwatt: interrupted", file=sys.stderr)
        return 130
    except RankFailure as exc:  # a rank died or hung outside a run's case loop (start-up)
        print(f"flopwatt: error: {exc}", file=sys.stderr)
        return EXIT_RANK_FAILURE


def entry() -> int:
    """The process' entry point (the `flopwatt` script, `python -m bench`): main, then the
    objects it made are frozen out of the garbage collector, whose last pass at exit would
    otherwise trace them all (a tenth of a second once pandas is loaded) just to free them.
    Only here: a process that calls main() again (a test) keeps its collector whole. Output
    piped into a reader that stops early (`| head`) ends quietly, as a shell tool does."""
    import gc

    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `flopwatt list | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        return EXIT_BROKEN_PIPE
    gc.freeze()
    return code
