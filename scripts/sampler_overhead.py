"""Sampler overhead: is a kernel slower while the 20 Hz power sampler runs beside it?

Measures the same kernel with and without an open power window, in interleaved pairs
(A/B/A/B) in one process, and prints the ratio of median per-call times (with / without);
the target is at most 1.01. On a CUDA device the real NVML source samples the real GPU. On
a CPU the sampler thread is the real one, reading a scripted NVML (tests/fake_pynvml.py) at
the same rate, because no power sensor is readable here. On a GPU the kernel is a bf16 matmul
sized to about 1 ms per call (the check's figure: a short kernel is where a sampler thread that
steals the launching thread's time would show).

    python scripts/sampler_overhead.py [--device auto|cpu|cuda] [--pairs 10] [--rate-hz 20]
        [--json PATH]       # exit 0 within the 1% budget, 1 over it
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

from bench.devices import get_backend
from bench.devices.base import DeviceFacts, GpuIdentity
from bench.measuring.timing import Policy, measure
from bench.power.nvml_source import NvmlPowerSource


def cpu_power_source(rate_hz: float) -> NvmlPowerSource:
    """The real NvmlPowerSource and sampler thread over the scripted fake pynvml."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_pynvml import EnergyCounter, FakeGpu, FakePynvml

    sys.modules["pynvml"] = FakePynvml([FakeGpu(total_energy_mj=EnergyCounter(100.0))])
    identity = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    facts = DeviceFacts("cuda", "cuda:0", identity, {"uuid": FakeGpu().uuid})
    return NvmlPowerSource.open(facts, {}, rate_hz=rate_hz)


def size_for(per_call_s: float, n: int, target_s: float = 1e-3) -> int:
    """The square matmul size whose call takes about target_s, from one measured at size n
    (time grows as n^3), on the 256 lattice tensor cores like."""
    scaled = n * (target_s / per_call_s) ** (1 / 3)
    return max(256, round(scaled / 256) * 256)


def calibrated_size(backend, dtype: torch.dtype, n: int = 8192) -> int:
    """A size near 1 ms per call on this device, from 20 timed calls at n."""
    device = backend.torch_device()
    a = torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty_like(a)
    torch.mm(a, a, out=c)
    backend.synchronize()
    start = backend.mark()
    for _ in range(20):
        torch.mm(a, a, out=c)
    end = backend.mark()
    backend.synchronize()
    return size_for(backend.elapsed_s(start, end) / 20, n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--rate-hz", type=float, default=20.0)
    parser.add_argument(
        "--size", type=int, default=0, help="matmul size (default: ~1 ms per call on a GPU)"
    )
    parser.add_argument("--json", type=Path, help="write the figure here")
    args = parser.parse_args(argv)

    backend = get_backend(args.device)
    on_gpu = backend.kind == "cuda"
    facts = backend.facts()
    amd = on_gpu and isinstance(facts.identity, GpuIdentity) and facts.identity.vendor == "amd"
    library = "amdsmi" if amd else "NVML"
    if amd:
        from bench.power.amdsmi_source import AmdsmiPowerSource

        power = AmdsmiPowerSource.open(facts, os.environ, rate_hz=args.rate_hz)
    elif on_gpu:
        power = NvmlPowerSource.open(facts, {}, rate_hz=args.rate_hz)
    else:
        power = cpu_power_source(args.rate_hz)
    dtype = torch.bfloat16 if on_gpu else torch.float32
    n = args.size or (calibrated_size(backend, dtype) if on_gpu else 512)
    device = backend.torch_device()
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    c = torch.empty(n, n, device=device, dtype=dtype)
    policy = Policy(warmup_min_s=0.2, warmup_max_s=0.5, min_time_s=0.5, timeout_s=1.0)

    def run() -> None:
        torch.mm(a, b, out=c)

    ratios, per_call = [], []
    print(
        f"{n}^3 {dtype} matmul on {backend.label}, sampler at {args.rate_hz:g} Hz "
        f"({f'real {library}' if on_gpu else 'scripted NVML'})"
    )
    for pair in range(args.pairs):
        without = measure(run, backend, policy).summary.median_s
        window = power.start_window()
        with_sampler = measure(run, backend, policy).summary.median_s
        reading = window.stop(1.0)
        ratios.append(with_sampler / without)
        per_call.append(without)
        print(
            f"{pair:>3}  without {without * 1e3:8.3f} ms  with {with_sampler * 1e3:8.3f} ms  "
            f"ratio {ratios[-1]:.4f}  ({len(reading.samples)} samples)"
        )
    power.close()
    backend.close()
    ratio = statistics.median(ratios)
    if args.json:
        figure = {
            "ratio": ratio,
            "ratios": ratios,
            "per_call_s": statistics.median(per_call),
            "size": n,
            "dtype": str(dtype).removeprefix("torch."),
            "rate_hz": args.rate_hz,
            "source": f"real {library}" if on_gpu else "scripted NVML (no sensor on a CPU)",
        }
        args.json.write_text(json.dumps(figure, indent=2) + "\n", encoding="utf-8")
    print(
        f"median ratio with/without sampler = {ratio:.4f} "
        f"({'within' if ratio <= 1.01 else 'OVER'} the 1% budget)"
    )
    return 0 if ratio <= 1.01 else 1


if __name__ == "__main__":
    sys.exit(main())
