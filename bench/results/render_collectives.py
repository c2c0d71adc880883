"""The table every NCCL user knows, printed from flopwatt's collective results.

Same columns and units as nccl-tests (size in bytes, time in us, GB/s = 1e9 B/s), one row
per size with the out-of-place and in-place figures side by side, and the average bus
bandwidth over all sizes at the bottom. Pure: results in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.results.record import CaseResult

_TYPES = {"fp32": "float", "bf16": "bfloat16"}
_HEADER = (
    f"{'size':>12} {'count':>12} {'type':>8} {'redop':>6} {'root':>5} |"
    f" {'time':>9} {'algbw':>7} {'busbw':>7} {'#wrong':>6} |"
    f" {'time':>9} {'algbw':>7} {'busbw':>7} {'#wrong':>6}\n"
    f"{'(B)':>12} {'(elements)':>12} {'':>8} {'':>6} {'':>5} |"
    f" {'(us)':>9} {'(GB/s)':>7} {'(GB/s)':>7} {'':>6} |"
    f" {'(us)':>9} {'(GB/s)':>7} {'(GB/s)':>7} {'':>6}"
)


def _cells(r: CaseResult | None) -> str:
    if r is None:
        return f" {'—':>9} {'—':>7} {'—':>7} {'—':>6}"
    if r.identity.status != "ok":
        wrong = "—" if r.collective.wrong_elements is None else r.collective.wrong_elements
        return f" {r.identity.status:>9} {'':>7} {'':>7} {wrong:>6}"
    return (
        f" {r.timing.time_mean_s * 1e6:>9.1f} {r.collective.algbw_bytes_per_s / 1e9:>7.3f}"
        f" {r.collective.busbw_bytes_per_s / 1e9:>7.3f} {r.collective.wrong_elements:>6}"
    )


def nccl_tests_lines(results: Iterable[CaseResult]) -> list[str]:
    """nccl-tests' table per collective, as lines of text."""
    groups: dict[tuple[str, str], dict[int, dict[str, CaseResult]]] = {}
    for r in results:
        key = (r.identity.params["collective"], r.identity.dtype)
        size = r.work.bytes or 0
        groups.setdefault(key, {}).setdefault(size, {})[r.identity.params["place"]] = r
    lines: list[str] = []
    for (collective, dtype), sizes in groups.items():
        world = next(iter(next(iter(sizes.values())).values())).identity.world_size
        lines.append(f"# {collective}, {dtype}, {world} ranks; out-of-place | in-place")
        lines.extend(_HEADER.splitlines())
        busbws = []
        for size in sorted(sizes):
            by_place = sizes[size]
            any_result = next(iter(by_place.values()))
            count = (any_result.work.kernel_details or {}).get("count_per_rank_in", "—")
            redop = "none" if collective == "allgather" else "sum"
            lines.append(
                f"{size:>12} {count!s:>12} {_TYPES.get(dtype, dtype):>8} {redop:>6}"
                f" {-1:>5} |{_cells(by_place.get('out'))} |{_cells(by_place.get('in'))}"
            )
            busbws += [
                r.collective.busbw_bytes_per_s
                for r in by_place.values()
                if r.identity.status == "ok" and r.collective.busbw_bytes_per_s is not None
            ]
        wrong = sum(r.collective.wrong_elements or 0 for p in sizes.values() for r in p.values())
        avg = sum(busbws) / len(busbws) / 1e9 if busbws else float("nan")
        lines.append(f"# Out of bounds values : {wrong} {'OK' if wrong == 0 else 'FAILED'}")
        lines.append(f"# Avg bus bandwidth    : {avg:.3f} GB/s")
    return lines


def nccl_tests_table(results: Iterable[CaseResult]) -> Any:  # -> rich.text.Text
    from rich.text import Text

    return Text("\n".join(nccl_tests_lines(results)))


def scaling_lines(results: Iterable[CaseResult]) -> list[str]:
    """One block per scaling case: a row per N with E(N) and where the step's time went."""
    lines: list[str] = []
    for r in results:
        params = r.identity.params
        formula = "X(N)/(N X(1))" if params["scaling"] == "weak" else "T(1)/(N T(N))"
        lines.append(f"# scaling {params['shape_label']} ({r.identity.dtype}): E(N) = {formula}")
        lines.append(
            f"{'N':>4} {'step (ms)':>10} {'TFLOP/s':>9} {'E(N)':>6} {'slowest':>8} "
            f"{'fastest':>8} {'spread':>7} {'comm share':>10} {'busbw (GB/s)':>12}"
        )
        for row in r.collective.scaling:
            eff = "—" if row["efficiency"] is None else f"{row['efficiency']:.3f}"
            share = "—" if row["comm_share"] is None else f"{row['comm_share']:.0%}"
            spread = "—" if row["rank_spread"] is None else f"{row['rank_spread']:.1%}"
            busbw = row["busbw_bytes_per_s"]
            busbw_text = "—" if busbw is None else f"{busbw / 1e9:.3f}"
            lines.append(
                f"{row['n']:>4} {row['step_time_s'] * 1e3:>10.3f} "
                f"{(row['throughput_ops_per_s'] or 0) / 1e12:>9.3f} {eff:>6} "
                f"{'rank ' + str(row['slowest_rank']):>8} {'rank ' + str(row['fastest_rank']):>8} "
                f"{spread:>7} {share:>10} {busbw_text:>12}"
            )
    return lines


def scaling_table(results: Iterable[CaseResult]) -> Any:  # -> rich.text.Text
    from rich.text import Text

    return Text("\n".join(scaling_lines(results)))
