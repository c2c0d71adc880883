"""The commands that read results: `report`, `compare` and `baseline bless`.

Kept apart from bench/cli.py (which measures) so each stays small. The module level imports
only the standard library: `flopwatt --help` must not load torch, pandas or matplotlib. Every
problem with the input (a missing or corrupt run folder, a newer schema, mixed method
versions, nothing in common) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from bench.errors import UsageError

DEFAULT_BASELINES = Path("results/baselines")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1), e.g. 0.03 for 3%")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _sku_price(text: str) -> tuple[str, float]:
    sku, sep, price = text.rpartition("=")
    if not sep or not sku.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not SKU=PRICE, e.g. MI300X=2.10")
    return sku.strip(), _positive(price)


def add_result_commands(sub: Any) -> None:
    """Add report, compare and baseline to the subparsers of the main parser."""
    report = sub.add_parser("report", help="Markdown and HTML report with plots of runs")
    report.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR")
    report.add_argument(
        "--history", type=Path, metavar="DIR", help="add the trends of a history folder"
    )
    report.add_argument(
        "--testbed", action="extend", nargs="+", default=[], metavar="ID", help="trends of these"
    )
    report.add_argument(
        "--out", type=Path, help="folder for report.md, report.html, plots/ (default: the run)"
    )
    report.add_argument("--pue", type=_positive, help="facility PUE, for joules at the wall")
    report.add_argument("--usd-per-kwh", type=_positive, help="price, for cost per 10^18 ops")
    report.add_argument(
        "--usd-per-gpu-hour",
        type=_sku_price,
        action="append",
        default=[],
        metavar="SKU=PRICE",
        help="price per device-hour of a SKU, for the hardware-time cost (repeatable)",
    )
    report.add_argument("--trace-case", metavar="CASE_ID", help="case whose power trace to plot")
    report.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib)")
    report.add_argument(
        "--projection",
        type=Path,
        metavar="DIR",
        help="flopwatt project's folder (default: RUN_DIR/projection when it exists)",
    )

    compare = sub.add_parser("compare", help="verdict per case: baseline vs candidate")
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    compare.add_argument(
        "--baseline",
        metavar="auto|DIR",
        help="auto: the blessed baseline of the candidate's SKU and suite; or a run folder",
    )
    compare.add_argument(
        "--baselines-root", type=Path, default=DEFAULT_BASELINES, help=argparse.SUPPRESS
    )
    compare.add_argument(
        "--min-effect", type=_fraction, default=0.03, help="smallest change (0.03)"
    )
    compare.add_argument("--strict", action="store_true", help="AMBIGUOUS fails too (exit 1)")
    compare.add_argument("--format", choices=("md", "json"), default="md")

    baseline = sub.add_parser("baseline", help="manage blessed per-SKU baselines")
    actions = baseline.add_subparsers(
        dest="baseline_command", metavar="ACTION", parser_class=type(baseline)
    )
    bless = actions.add_parser("bless", help="copy a run into results/baselines/<sku>/<suite>/")
    bless.add_argument("run", type=Path, metavar="RUN_DIR")
    bless.add_argument("--root", type=Path, default=DEFAULT_BASELINES, help="baselines folder")


def _load(path: Path, role: str = "run") -> Any:
    """load_run with every problem as a one-line UsageError; warnings kept in run.problems."""
    from bench.results.record import load_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run = load_run(path)
        except (ValueError, OSError) as exc:
            raise UsageError(f"{role} {path}: {exc}") from None
    for problem in run.problems:
        print(f"flopwatt: warning: {path}: {problem}", file=sys.stderr)
    return run


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from bench.commands.report.chain import Costs
    from bench.commands.report.pytest_benchmark import to_pytest_benchmark

    started = time.perf_counter()
    if not args.runs and args.history is None:
        raise UsageError("give RUN_DIR..., or --history DIR for the trends")
    if args.testbed and args.history is None:
        raise UsageError("--testbed chooses the trends of --history DIR; give --history")
    runs = [_load(p) for p in args.runs]
    if args.out is None and len(runs) != 1:
        raise UsageError("several runs or a history: give --out DIR for the report")
    out: Path = args.out or args.runs[0]
    costs = Costs(args.pue, args.usd_per_kwh, dict(args.usd_per_gpu_hour))
    _check_comparison(runs, costs)
    report = _report(args, runs, costs)
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
        for plot in report.plots:
            (out / "plots" / f"{plot.name}.png").write_bytes(plot.png or b"")
        (out / "report.md").write_text(report.markdown(), encoding="utf-8")
        (out / "report.html").write_text(report.html(), encoding="utf-8")
        export = out / "pytest-benchmark"
        export.mkdir(exist_ok=True)
        for i, run in enumerate(runs, 1):
            name = f"{i:04d}_{run.meta.get('run_id') or run.path.name}.json"
            _write_json(export / name, to_pytest_benchmark(run))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    took = time.perf_counter() - started
    print(f"report of {len(runs)} run(s) -> {out / 'report.html'} ({took:.1f} s)")
    return 0


def _report(args: argparse.Namespace, runs: list[Any], costs: Any) -> Any:
    """The report of the runs, with the history's trends after them (or alone)."""
    from bench.commands.report.build import Report, build_report
    from bench.results.document import Heading

    plots = not args.no_plots
    if runs:
        report = build_report(runs, costs, args.trace_case, plots, _projection(args))
    else:
        report = Report(f"flopwatt trends: {args.history}", [Heading("flopwatt report", 1)])
    if args.history is not None:
        from bench.commands.report.trends import trends_section

        blocks, figures = trends_section(args.history, args.testbed or None, plots)
        report.blocks += blocks
        report.plots += [p for p in figures if p.png is not None]
    return report


def _check_comparison(runs: list[Any], costs: Any) -> None:
    """Prices must name SKUs of the runs; runs of several devices must share a case."""
    from bench.commands.report.vendor import applies, common_keys, devices_of, resolve_prices

    devices = devices_of(runs)
    try:
        resolve_prices(devices, costs.usd_per_gpu_hour)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if applies(devices) and not common_keys(devices):
        skus = ", ".join(dict.fromkeys(d.sku for d in devices))
        raise UsageError(
            f"the runs ({skus}) have no case in common (same kernel, dtype, shape, devices): "
            "run the same suite and shapes on each, or report them one at a time"
        )


def _projection(args: argparse.Namespace) -> dict[str, Any] | None:
    from bench.commands.report import projection

    path = projection.find(args.runs, args.projection)
    if path is None:
        return None
    try:
        return projection.load(path)
    except ValueError as exc:
        raise UsageError(f"--projection: {exc}") from None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    import json

    path.write_text(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n")


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.commands.compare import CompareError, compare_runs
    from bench.commands.report.compare_view import to_json, to_markdown

    if args.baseline is None:
        if len(args.runs) != 2:
            raise UsageError("give BASELINE CANDIDATE, or --baseline auto|DIR CANDIDATE")
        base_path, cand_path = args.runs
    else:
        if len(args.runs) != 1:
            raise UsageError("with --baseline, give one candidate RUN_DIR")
        (cand_path,) = args.runs
        base_path = None if args.baseline == "auto" else Path(args.baseline)
    cand = _load(cand_path, "candidate")
    if base_path is None:
        from bench.results.blessed.runs import find

        try:
            base_path = find(cand.meta, args.baselines_root)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    base = _load(base_path, "baseline")
    try:
        comparison = compare_runs(base, cand, args.min_effect)
    except CompareError as exc:
        raise UsageError(str(exc)) from None
    render = to_json if args.format == "json" else to_markdown
    sys.stdout.write(render(comparison, args.strict))
    return comparison.exit_code(args.strict)


def cmd_baseline(args: argparse.Namespace) -> int:
    from bench.results.blessed.runs import bless

    if args.baseline_command != "bless":
        raise UsageError("baseline needs an action: bless RUN_DIR")
    run = _load(args.run)
    if run.meta.get("status") not in ("complete", None):
        raise UsageError(f"{args.run}: status {run.meta.get('status')!r}; bless a complete run")
    if len(run.cases) == 0:
        raise UsageError(f"{args.run}: no cases to bless")
    unhealthy = frozenset()
    if "identity.health_verdict" in run.cases:
        failed = run.cases["identity.health_verdict"] == "FAIL"
        unhealthy = frozenset(run.cases.loc[failed, "identity.case_id"])
    if len(unhealthy) == len(run.cases):
        raise UsageError(f"{args.run}: every case ran on a GPU that failed its health check")
    if unhealthy:
        print(
            f"left out {len(unhealthy)} cases measured on GPUs that failed their health "
            f"check: {', '.join(sorted(unhealthy))}"
        )
    try:
        target = bless(args.run, run.meta, args.root, unhealthy)
    except ValueError as exc:
        raise UsageError(f"{args.run}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot bless into {args.root}: {exc.strerror or exc}") from None
    print(f"blessed {args.run} -> {target}")
    return 0


RESULT_COMMANDS = {"report": cmd_report, "compare": cmd_compare, "baseline": cmd_baseline}
