"""The report's "Scaling projection" section, from a projection.json (`flopwatt project`).

`flopwatt report` reads it from `--projection DIR`, else from `RUN_DIR/projection/` of each
run, where `flopwatt project` writes by default. The section continues the efficiency chain:
scaling -> facility -> cost, at cluster sizes nobody measured, with the band and the inputs
that were assumed printed next to the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.results.document import Block, Figure, Heading, Para, Plot, Table
from bench.results.render import percent, seconds, si

FILE = "projection.json"


def find(runs: list[Path], explicit: Path | None) -> Path | None:
    """The projection.json to show: --projection DIR (or file), else the first run's."""
    if explicit is not None:
        return explicit / FILE if explicit.is_dir() else explicit
    for run in runs:
        if (run / "projection" / FILE).is_file():
            return run / "projection" / FILE
    return None


def load(path: Path) -> dict[str, Any]:
    """The document; ValueError with the reason when it is not a flopwatt projection."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable projection ({exc})") from None
    if doc.get("kind") != "flopwatt projection":
        raise ValueError(f"{path}: not written by flopwatt project")
    return doc


def _band(rows: dict[str, dict[str, Any]], key: str, fmt: Any) -> str:
    lo, mid, hi = (rows[b][key] for b in ("pessimistic", "nominal", "optimistic"))
    return f"{fmt(mid)} ({fmt(lo)}-{fmt(hi)})"


def _model_blocks(doc: dict[str, Any]) -> list[Block]:
    par = doc["parallel"]
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for r in doc["rows"]:
        by_n.setdefault(r["n_gpus"], {})[r["band"]] = r
    body = []
    for n, bands in sorted(by_n.items()):
        nom = bands["nominal"]
        body.append(
            [
                f"{n}{' *' if nom['extrapolated'] else ''}",
                _band(bands, "efficiency", lambda v: f"{v:.3f}"),
                _band(bands, "mfu", percent),
                percent(nom["hfu"]),
                seconds(nom["step_s"]),
                nom["dominant_loss"],
                nom["dp_algorithm"],
                si(nom["j_per_1e18_ops"], "J"),
            ]
        )
    table = Table(
        [
            "N",
            "E nominal (pess.-opt.)",
            "MFU",
            "HFU",
            "step",
            "dominant loss",
            "DP algorithm",
            "J per 1e18 FLOP",
        ],
        body,
        "* extrapolated beyond what was measured; E relative to the smallest N",
    )
    knee = ", ".join(f"{b}: {'none in range' if v is None else v}" for b, v in doc["knee"].items())
    return [
        Para(
            f"{doc['model']['name']} on TP {par['tp']} x PP {par['pp']} (VP {par['vp']}), global "
            f"batch {par['global_batch']}, calibrated on measured {doc['dtype']} efficiency "
            f"(peak {si(doc['peak_ops_per_s'], 'FLOP/s')}). A model, not a measurement."
        ),
        table,
        Para(f"Knee (doubling N keeps under 90% of per-GPU throughput): {knee}."),
    ]


def _dp_blocks(doc: dict[str, Any]) -> list[Block]:
    body = [
        [
            c["case_id"],
            str(p["n"]),
            f"{p['efficiency']:.3f}",
            p["algorithm"],
            "yes" if p["extrapolated"] else "no",
        ]
        for c in doc["curves"]
        for p in c["projected"]
    ]
    return [
        Para(
            "Pure data parallelism: E(N) = T_c / (T_c + allreduce), fitted on the measured ranks."
        ),
        Table(["case", "N", "E(N)", "algorithm", "extrapolated"], body),
    ]


def projection_blocks(doc: dict[str, Any], png: bytes | None) -> tuple[list[Block], list[Plot]]:
    """The section's blocks and its figure."""
    blocks: list[Block] = [Heading("Scaling projection")]
    blocks += _dp_blocks(doc) if doc.get("mode") == "dp" else _model_blocks(doc)
    plot = Plot("projection", "Projected E(N) and MFU", png, "" if png else "plots off")
    blocks.append(Figure(plot))
    inputs = [[i["name"], str(i["value"]), i["source"], i["detail"]] for i in doc["inputs"]]
    blocks.append(
        Table(
            ["input", "value", "source", "detail"], inputs, "what was measured and what was assumed"
        )
    )
    return blocks, [plot] if png else []
