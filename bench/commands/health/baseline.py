"""The blessed health run a device is held to: results/baselines/<sku>/health/.

A baseline is an ordinary run folder (bench.results.blessed.runs), blessed from a `flopwatt health`
run on a known-good node. From it a device takes each rate's repeats, pooled over the devices
it measured, as a median and a spread (bench.commands.health.noise), and the canary digests per set
of versions. With no baseline for a SKU, its first health run is informational and says how
to bless it. A baseline of another SKU,
or one measured by another METHOD_VERSION, is ignored with a warning: holding an H100 to
an A100's numbers would pass a broken GPU or fail a good one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.commands.health.fleet import BaselineRef, repeats, signature
from bench.commands.health.noise import Repeat, summarize
from bench.versions import METHOD_VERSION

SUITE = "health"  # the suite name of a health run, and its folder under the SKU


def load_ref(path: Path) -> tuple[BaselineRef, str]:
    """The bounds and canaries of a baseline folder and its SKU; ValueError if unreadable."""
    from bench.results.blessed.runs import run_sku
    from bench.results.record import load_run
    from bench.results.frame import case_dicts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(path)
    sku = run_sku(run.meta)
    if run.meta.get("method_version") != METHOD_VERSION:
        raise ValueError(
            f"measured by METHOD_VERSION {run.meta.get('method_version')}, this flopwatt "
            f"measures by {METHOD_VERSION}: bless a new health run"
        )
    pooled: dict[str, list[Repeat]] = {}
    for case in case_dicts(run):
        if case.get("health_verdict") == "FAIL":
            continue  # measured on a GPU that failed its own check
        pooled.setdefault(signature(case), []).extend(repeats(case))
    rates = {key: s for key, reps in pooled.items() if (s := summarize(reps)) is not None}
    canaries = list((run.meta.get("health") or {}).get("canaries") or [])
    return BaselineRef(str(path), rates, canaries), sku


def first_run(sku: str, path: Path) -> str:
    """The reason on the baseline rows of a SKU nobody blessed a health run of yet."""
    return (
        f"first run on this SKU ({sku}): informational, nothing to compare with at {path}; "
        "bless it with `flopwatt baseline bless RUN_DIR` once the node is known good"
    )


def load_refs(
    skus: set[str], spec: str, root: Path
) -> tuple[dict[str, BaselineRef | str], list[str]]:
    """Each SKU's baseline, or the reason it has none; and warnings for the user.

    spec "auto" looks in root/<sku>/health; any other spec is a baseline folder given by
    the user (already checked to be a run folder), applied to the SKU it was measured on.
    """
    refs: dict[str, BaselineRef | str] = {}
    notes: list[str] = []
    given: tuple[BaselineRef, str] | str | None = None
    if spec != "auto":
        try:
            given = load_ref(Path(spec))
        except ValueError as exc:
            given = f"baseline {spec} ignored: {exc}"
            notes.append(given)
    for sku in sorted(skus):
        if isinstance(given, str):
            refs[sku] = given
            continue
        if given is not None:
            ref, base_sku = given
            if base_sku == sku:
                refs[sku] = ref
            else:
                refs[sku] = f"baseline {spec} is for {base_sku}, not {sku}: ignored"
                notes.append(refs[sku])
            continue
        path = root / sku / SUITE
        if not (path / "run.json").is_file():
            refs[sku] = first_run(sku, path)
            continue
        try:
            ref, base_sku = load_ref(path)
        except ValueError as exc:
            refs[sku] = f"baseline {path} ignored: {exc}"
            notes.append(refs[sku])
            continue
        if base_sku != sku:
            refs[sku] = f"baseline {path} is for {base_sku}, not {sku}: ignored"
            notes.append(refs[sku])
        else:
            refs[sku] = ref
    return refs, notes
