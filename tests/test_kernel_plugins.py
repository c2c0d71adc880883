"""Kernels declare themselves: a third-party kernel installed through the `flopwatt.kernels`
entry point group is listed and runs, a broken one is a warning, and every declared op count
is what torch's FlopCounterMode counts for the call that runs."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch.utils.flop_counter import FlopCounterMode

from kernels import attention, get_spec, matmul, specs
from kernels.spec import AxisError

ROOT = Path(__file__).resolve().parents[1]

TINY_SPEC = '''
"""A batched square matmul, declared without torch."""
import re

from kernels.spec import Axis, AxisError, KernelSpec


def parse(text):
    match = re.fullmatch(r"(\\d+)x(\\d+)", text.strip())
    if match is None or min(int(g) for g in match.groups()) <= 0:
        raise AxisError(f"shape {text!r} is not BxN with positive integers")
    return {"b": int(match.group(1)), "n": int(match.group(2))}


def ops(case):
    p = case.params
    return 2 * p["b"] * p["n"] ** 3


def ops_convention(case):
    return "2*B*N^3 (B square N x N matmuls)"


def bytes_moved(case):
    p = case.params
    return 3 * p["b"] * p["n"] ** 2 * 4


SPEC = KernelSpec(
    name="tiny",
    module="tinykernel",
    description="tiny batched matmul from a plugin",
    dtypes=("fp32",),
    shape=Axis("shape", "--tiny-shape", "BxN batched matmuls", "BxN", parse=parse, default="2x16"),
    ops=ops,
    bytes_moved=bytes_moved,
    ops_convention=ops_convention,
)
'''

TINY_KERNEL = '''
"""The tiny kernel's torch half: inputs, the call, its check."""
import contextlib

import torch

from kernels.base import Correctness, Prepared
from tinykernel_spec import SPEC, bytes_moved, ops, ops_convention

NAME, DTYPES = SPEC.name, SPEC.dtypes


def unsupported_reason(case, facts):
    return None


def memory_bytes(case):
    return 2 * bytes_moved(case)


def math_mode(case):
    return case.dtype


def precision(case):
    return contextlib.nullcontext()


def prepare(case, device):
    p = case.params
    gen = torch.Generator(device=device).manual_seed(p["seed"])
    a = torch.randn(p["b"], p["n"], p["n"], generator=gen, device=device)
    b = torch.randn(p["b"], p["n"], p["n"], generator=gen, device=device)
    c = torch.empty_like(a)

    def run():
        return torch.bmm(a, b, out=c)

    def check():
        run()
        ref = torch.bmm(a.double(), b.double())
        error = float((c.double() - ref).norm() / ref.norm())
        return Correctness(error < 1e-4, "normwise relative error vs fp64", error, 1e-4)

    return Prepared(run=run, check=check)
'''


def install(folder: Path, name: str, entry: str, modules: dict[str, str]) -> None:
    """A distribution without pip: a *.dist-info folder with entry_points.txt, on sys.path."""
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[flopwatt.kernels]\n{entry}\n")
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    install(
        folder,
        "tinykernel",
        "tiny = tinykernel_spec:SPEC",
        {"tinykernel_spec": TINY_SPEC, "tinykernel": TINY_KERNEL},
    )
    install(folder, "brokenkernel", "broken = brokenkernel_spec:SPEC", {})  # no module
    install(
        folder,
        "rudekernel",
        "rude = rudekernel_spec:SPEC",
        {"rudekernel_spec": TINY_SPEC.replace('name="tiny"', 'name="rude"')},
    )  # its flag --tiny-shape is not its own
    return folder


def flopwatt(site: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    argv = ["-c", code] if code else ["-m", "bench", *args]
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_an_installed_kernel_is_listed_without_torch_and_a_broken_one_is_a_warning(site):
    listed = flopwatt(site, "list")
    assert listed.returncode == 0, listed.stderr
    assert "tiny       tiny batched matmul from a plugin" in listed.stdout
    assert "flags: --tiny-shape BxN" in listed.stdout
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 2 and "Traceback" not in listed.stderr
    assert warnings[0].startswith("warning: kernel plugin 'broken' (brokenkernel_spec:SPEC)")
    assert "No module named 'brokenkernel_spec'" in warnings[0]
    assert "flag --tiny-shape must be --rude or --rude-..." in warnings[1]
    probe = (
        "import sys\nfrom bench.cli import main\nmain(['list'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'CLEAN')"
    )
    assert flopwatt(site, code=probe).stdout.strip().endswith("CLEAN")


def test_an_installed_kernel_runs_with_its_own_flag_and_its_default(site, tmp_path):
    fast = ["--device", "cpu", "--timeout-s", "1", "--min-time-s", "0.05", "--warmup-s", "0"]
    ran = flopwatt(
        site, "run", *fast, "--idle-s", "0", "--tiny-shape", "3x8", "--out", str(tmp_path)
    )
    assert ran.returncode == 0, ran.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (case,) = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    who, work = case["identity"], case["work"]  # a schema-2 record, in parts
    assert who["kernel"] == "tiny" and who["status"] == "ok"
    assert work["ops"] == 2 * 3 * 8**3 and who["params"]["shape_label"] == "3x8"
    out = tmp_path / "default"
    ran = flopwatt(site, "run", *fast, "--idle-s", "0", "--kernel", "tiny", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    (case,) = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    assert case["identity"]["params"]["shape_label"] == "2x16"  # the declared default shape
    bad = flopwatt(site, "run", "--device", "cpu", "--tiny-shape", "3", "--out", str(tmp_path))
    assert bad.returncode == 2
    assert (
        bad.stderr == "flopwatt: error: --tiny-shape: shape '3' is not BxN with positive integers\n"
    )


def test_the_tiny_kernels_declared_ops_are_what_flop_counter_counts(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    import tinykernel
    import tinykernel_spec

    spec = tinykernel_spec.SPEC
    case = spec.case(spec.shape.read("3x8"), "fp32", "cpu")
    assert counted(tinykernel.prepare(case, "cpu").run) == spec.ops(case) == 2 * 3 * 8**3


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize(("shape", "dtype"), [("32x48x64", "fp32"), ("17x5x3", "bf16")])
def test_matmul_declared_ops_are_what_flop_counter_counts(shape, dtype):
    spec = get_spec("matmul")
    case = spec.case(spec.shape.read(shape), dtype, "cpu")
    with matmul.precision(case):
        run = matmul.prepare(case, "cpu").run
        assert counted(run) == spec.ops(case)


@pytest.mark.parametrize("shape", ["2,4,2,32,16", "1,2,2,16,48,8", "1,4,4,24,16"])
def test_attention_forward_declared_ops_are_what_flop_counter_counts_without_a_mask(shape):
    """The math backend runs QK^T and PV as bmm, which FlopCounterMode counts: 4*B*Hq*Sq*Skv*D,
    what the declaration says for `mask none` (CPU's fused flash operator has no counting rule;
    the CUDA fused operators' rule is the same formula, see test_attention). With `causal`
    the math backend still multiplies the full score matrix and FlopCounterMode counts it,
    while the declaration counts only the visible pairs (FlashAttention's convention): there
    the count is the full one scaled by the visible fraction."""
    spec = get_spec("attention")
    options = {"mask": "none", "pass": "fwd", "backend": "math"}
    case = spec.case(spec.shape.read(shape), "fp32", "cpu", options=options)
    with attention.precision(case):
        assert counted(attention.prepare(case, "cpu").run) == spec.ops(case)
    causal = spec.case(spec.shape.read(shape), "fp32", "cpu", options={**options, "mask": "causal"})
    with attention.precision(causal):
        full = counted(attention.prepare(causal, "cpu").run)
    p = causal.params
    assert full == spec.ops(case)
    assert spec.ops(causal) == full * attention.visible_pairs(p["sq"], p["skv"], True) // (
        p["sq"] * p["skv"]
    )


def test_every_declaration_is_torch_free_and_complete():
    probe = (
        "import sys\nfrom kernels import specs\nfrom bench.execution.plan import RunPlan\n"
        "plan = RunPlan(axes={'attention': {'shape': ('1,8,2,64,32',), 'mask': ('causal',)}})\n"
        "plan.validate()\nassert len(plan.cases('cpu', 'cpu')) == 4\n"
        "print(sorted(specs()), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "['allreduce', 'attention', 'matmul', 'scaling'] False"
    for spec in specs().values():
        flags = [a.flag for a in spec.axes]
        assert len(set(flags)) == len(flags) and spec.dtypes
        assert all(a.default in a.choices for a in spec.options)
        assert spec.load().DTYPES is spec.dtypes  # the one list, not a copy
    with pytest.raises(AxisError, match="attention has no axis 'window'"):
        get_spec("attention").axis("window")
