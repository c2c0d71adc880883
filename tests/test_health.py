"""Health verdicts across devices (bench.commands.health.fleet) from scripted records, and the canary."""

from __future__ import annotations

import torch

from bench.commands.health.fleet import BaselineRef, canary_rows, peer_rows, version_rows
from bench.commands.health.model import FAIL, NA, PASS, WARN, Check, DeviceRecord, Thresholds, exit_code
from bench.commands.health.probe import digest

SKU = "h100-sxm5-80gb"
VERSIONS = {"torch": "2.13.0", "cuda": "12.8", "cublas": "12.8.4", "driver": "570.86"}


def matmul_case(rate: float) -> dict:
    ops = 2 * 8192**3
    return {
        "kernel": "matmul",
        "dtype": "bf16",
        "params": {"shape_label": "8192x8192x8192"},
        "status": "ok",
        "ops": ops,
        "time_median_s": ops / rate,
        "time_ci95_high_s": ops / rate * 1.01,
        "world_size": 1,
    }


def record(rank: int, rate: float = 700e12, sha: str = "a" * 64, **versions: str) -> DeviceRecord:
    return DeviceRecord(
        rank=rank,
        host="node1",
        device=f"cuda:{rank}",
        sku=SKU,
        versions={**VERSIONS, **versions},
        cases=[matmul_case(rate)],
        samples=[None],
        canary={"sha256": sha, "first_sha256": sha},
    )


def verdicts(rows: list[Check], name: str) -> dict[int | None, str]:
    return {r.rank: r.verdict for r in rows if r.name == name}


def test_a_peer_12_percent_slower_fails_and_7_percent_warns():
    records = [record(0), record(1), record(2, rate=700e12 * 0.88), record(3, rate=700e12 * 0.93)]
    rows = peer_rows(records, Thresholds())
    assert verdicts(rows, "matmul vs peers") == {0: PASS, 1: PASS, 2: FAIL, 3: WARN}
    slow = next(r for r in rows if r.rank == 2 and r.name == "matmul vs peers")
    assert "12.0% below" in slow.reason and "median of 3" in slow.expected
    # the median is of the *other* devices: with two GPUs, one 12% slower still FAILs
    rows = peer_rows([record(0), record(1, rate=700e12 * 0.88)], Thresholds())
    assert verdicts(rows, "matmul vs peers") == {0: PASS, 1: FAIL}
    # thresholds are the user's
    rows = peer_rows(records, Thresholds(peer_warn=0.15, peer_fail=0.2))
    assert set(verdicts(rows, "matmul vs peers").values()) == {PASS}


def test_one_device_has_no_peers_and_other_skus_are_not_peers():
    rows = peer_rows([record(0)], Thresholds())
    assert verdicts(rows, "matmul vs peers") == {0: NA}
    other = record(1, rate=300e12)
    other.sku = "a100-sxm4-80gb"
    rows = peer_rows([record(0), other], Thresholds())
    assert verdicts(rows, "matmul vs peers") == {0: NA, 1: NA}


def test_a_driver_mismatch_fails_the_odd_device_and_a_vbios_mismatch_warns():
    records = [record(0), record(1), record(2, driver="550.54")]
    rows = version_rows(records)
    assert verdicts(rows, "driver version") == {0: PASS, 1: PASS, 2: FAIL}
    odd = next(r for r in rows if r.rank == 2 and r.name == "driver version")
    assert odd.expected == "570.86" and "differs from 2 of 2" in odd.reason
    records = [
        record(0, vbios="96.00.74"),
        record(1, vbios="96.00.74"),
        record(2, vbios="96.00.61"),
    ]
    assert verdicts(version_rows(records), "vbios version") == {0: PASS, 1: PASS, 2: WARN}
    # two devices that disagree: nobody can tell which one is odd, both are flagged
    rows = version_rows([record(0), record(1, torch="2.12.0")])
    assert verdicts(rows, "libraries") == {0: FAIL, 1: FAIL}


def test_the_canary_names_the_device_that_differs_from_the_majority():
    records = [record(0), record(1, sha="b" * 64), record(2)]
    rows = canary_rows(records, {})
    assert verdicts(rows, "canary vs peers") == {0: PASS, 1: FAIL, 2: PASS}
    bad = next(r for r in rows if r.rank == 1 and r.name == "canary vs peers")
    assert "silent data corruption" in bad.reason
    # two devices that disagree: both FAIL (no majority)
    rows = canary_rows([record(0), record(1, sha="b" * 64)], {})
    assert verdicts(rows, "canary vs peers") == {0: FAIL, 1: FAIL}
    # devices with other library versions are not compared with each other
    rows = canary_rows([record(0), record(1, sha="b" * 64, cublas="12.9.0")], {})
    assert verdicts(rows, "canary vs peers") == {0: NA, 1: NA}


def test_the_canary_against_the_baseline_golden_for_identical_versions():
    golden = [{"versions": dict(VERSIONS), "sha256": "a" * 64}]
    ref = BaselineRef("base", {}, golden)
    rows = canary_rows([record(0), record(1, sha="c" * 64)], {SKU: ref})
    assert verdicts(rows, "canary vs baseline") == {0: PASS, 1: FAIL}
    rows = canary_rows([record(0, torch="2.14.0")], {SKU: ref})
    assert verdicts(rows, "canary vs baseline") == {0: NA}


def test_a_flipped_bit_changes_the_digest():
    c = torch.randn(64, 64).to(torch.bfloat16)
    assert digest(c) == digest(c.clone())
    assert digest(c, flip_bit=True) != digest(c)


def test_exit_code_is_1_only_when_something_failed():
    rows = [Check("cuda:0", "x", 1, "", PASS, ""), Check("cuda:0", "y", 1, "", WARN, "")]
    assert exit_code(rows) == 0
    assert exit_code([*rows, Check("cuda:0", "z", None, "", NA, "")]) == 0
    assert exit_code([*rows, Check("cuda:1", "z", 1, "", FAIL, "")]) == 1


def test_the_baseline_rows_judge_repeats_with_the_noise_model():
    from bench.commands.health.fleet import baseline_rows
    from bench.commands.health.noise import Repeat, summarize

    base = summarize([Repeat(700e12 * f, 0.01) for f in (1.0, 1.002, 0.998, 1.001, 0.999)])
    assert base is not None
    refs = {SKU: BaselineRef("base", {"matmul bf16 8192x8192x8192": base})}
    rows = baseline_rows([record(0, rate=680e12), record(1, rate=600e12)], refs, Thresholds())
    assert verdicts(rows, "matmul vs baseline") == {0: PASS, 1: FAIL}
    assert verdicts(rows, "copy bandwidth vs baseline") == {0: NA, 1: NA}  # nothing measured
    slow = next(r for r in rows if r.rank == 1 and r.name == "matmul vs baseline")
    assert "85.7% of the baseline median" in slow.reason and "beyond the noise" in slow.reason
    # repeats of the candidate: the busy ones are left out, the median of the rest is judged
    busy = record(2, rate=700e12)
    ops = busy.cases[0]["ops"]
    busy.cases[0]["repeats"] = [
        {"time_median_s": ops / 350e12, "cpu_pressure": 0.6},
        {"time_median_s": ops / 690e12, "cpu_pressure": 0.01},
        {"time_median_s": ops / 700e12, "cpu_pressure": 0.01},
        {"time_median_s": ops / 360e12, "cpu_pressure": 0.5},
        {"time_median_s": ops / 705e12, "cpu_pressure": 0.0},
    ]
    (row,) = [r for r in baseline_rows([busy], refs, Thresholds()) if r.name.startswith("matmul")]
    assert row.verdict == PASS and row.value == 700e12 and "2 of 5 busy" in row.reason
    rows = baseline_rows([record(0)], {SKU: "first run on this SKU"}, Thresholds())
    assert verdicts(rows, "matmul vs baseline") == {0: NA}
