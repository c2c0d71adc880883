"""The projection on the terminal: one line per N, then the knee, the fits and every input
with its source (measured, assumed, user)."""

from __future__ import annotations

from typing import Any

from bench.results.render import percent, seconds, si


def _by(rows: list[dict[str, Any]], band: str) -> dict[int, dict[str, Any]]:
    return {r["n_gpus"]: r for r in rows if r["band"] == band}


def _band(lo: float, mid: float, hi: float, pct: bool = False) -> str:
    if pct:
        return f"{percent(mid)} [{percent(lo)}-{percent(hi)}]"
    return f"{mid:.3f} [{lo:.3f}-{hi:.3f}]"


def _shares(row: dict[str, Any]) -> str:
    """The three largest losses as shares of the step, e.g. "5.5/2.1/0.3%"."""
    dp = row["t_dp_bandwidth_s"] + row["t_dp_latency_s"]
    parts = (row["t_bubble_s"], row["t_tp_s"], dp)
    return "/".join(f"{100 * p / row['step_s']:.1f}" for p in parts) + "%"


def projection_lines(doc: dict[str, Any]) -> list[str]:
    rows = doc["rows"]
    nom, pes, opt = (_by(rows, b) for b in ("nominal", "pessimistic", "optimistic"))
    lines = [
        f"{doc['model']['name']}: TP {doc['parallel']['tp']} x PP {doc['parallel']['pp']} "
        f"(VP {doc['parallel']['vp']}), global batch {doc['parallel']['global_batch']}, "
        f"{doc['dtype']} peak {si(doc['peak_ops_per_s'], 'FLOP/s')}",
        f"{'N':>7} {'DP':>5} {'m':>5} {'E nominal [pess-opt]':>22} {'MFU [pess-opt]':>22} "
        f"{'HFU':>6} {'step':>9} {'bubble/TP/DP':>14} {'dominant loss':>14} {'DP alg':>13} "
        f"{'J/1e18':>9}",
    ]
    for n, r in nom.items():
        flag = " *" if r["extrapolated"] else ""
        lines.append(
            f"{n:>7} {r['dp']:>5} {r['microbatches']:>5} "
            f"{_band(pes[n]['efficiency'], r['efficiency'], opt[n]['efficiency']):>22} "
            f"{_band(pes[n]['mfu'], r['mfu'], opt[n]['mfu'], pct=True):>22} {percent(r['hfu']):>6} "
            f"{seconds(r['step_s']):>9} {_shares(r):>14} {r['dominant_loss']:>14} "
            f"{r['dp_algorithm']:>13} "
            f"{si(r['j_per_1e18_ops'], 'J'):>9}{flag}"
        )
    knee = doc["knee"]
    lines.append(
        "knee (2N keeps < 90% per GPU): "
        + ", ".join(f"{b} {'none in range' if v is None else v}" for b, v in knee.items())
    )
    if doc["extrapolated"]:
        lines.append(
            f"* extrapolated beyond what was measured ({doc['measured_max_world_size']} "
            f"rank(s) on {doc['measured_max_nodes']} node(s)): read the pessimistic band"
        )
    last = list(nom.values())[-1]
    if last["cluster_power_w"] is not None:
        usd = f", {last['usd_per_step']:.3g} USD per step" if last["usd_per_step"] else ""
        lines.append(
            f"at N={last['n_gpus']}: {si(last['cluster_power_w'], 'W')} cluster, "
            f"{si(last['energy_per_step_j'], 'J')} per step{usd}"
        )
    for f in doc["collective_fits"]:
        res = ", ".join(f"{r:+.1%}" for r in f["residuals"])
        lines.append(
            f"fit {f['collective']} n={f['world_size']}: alpha {seconds(f['alpha_s'])}, "
            f"B {si(f['busbw'], 'B/s')}; residuals {res}"
        )
    return lines + input_lines(doc["inputs"])


def input_lines(inputs: list[dict[str, Any]]) -> list[str]:
    lines = ["inputs (measured / assumed / user):"]
    for i in inputs:
        value = i["value"]
        shown = (
            f"{len(value)} points"
            if isinstance(value, list)
            else f"{value:.4g}"
            if isinstance(value, float)
            else str(value)
        )
        lines.append(f"  {i['source']:>8}  {i['name']} = {shown}  {i['detail']}")
    return lines


def print_projection(doc: dict[str, Any]) -> None:
    print("\n".join(projection_lines(doc)))


def dp_lines(doc: dict[str, Any]) -> list[str]:
    lines = []
    for c in doc["curves"]:
        fit = c["fit"]
        lines.append(
            f"{c['case_id']}: T_c {seconds(c['compute_time_s'])}, "
            f"gradient {si(c['grad_bytes'], 'B')}; alpha {seconds(fit['alpha_s_per_step'])}"
            f"/step, busbw {si(fit['busbw'], 'B/s')} ({fit['how']})"
        )
        lines.append(
            "  measured: "
            + ", ".join(
                f"N={m['n']} E={m['efficiency']:.3f}"
                for m in c["measured"]
                if m["efficiency"] is not None
            )
        )
        for p in c["projected"]:
            flag = " *extrapolated" if p["extrapolated"] else ""
            lines.append(
                f"  N={p['n']:>6} E={p['efficiency']:.3f} "
                f"allreduce {seconds(p['allreduce_s'])} {p['algorithm']}{flag}"
            )
    return lines + input_lines(doc["inputs"])


def print_dp(doc: dict[str, Any]) -> None:
    print("\n".join(dp_lines(doc)))
