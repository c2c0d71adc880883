"""How long and how widely `flopwatt ceiling` searches, per device kind and depth.

GPU values follow MAMF finder: dimensions up to 20480 on a 256 lattice, a 30 s thermal
warm-up ("a cold accelerator gives a higher score than the same shape run after a dozen
others"), and about 100 measured calls per shape when thorough. `quick` spends 40 s per
dtype on a GPU (about 85 s for bf16 with the warm-up and the memory ceiling) and stays
within 60 s in all on a CPU. CPU shapes are smaller: a 2-core CPU does ~1e11 FLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.commands.ceiling.search import SearchSpace
from bench.measuring.timing import Policy

DEPTHS = ("quick", "thorough")
GiB = 1024**3
MiB = 1024**2

# Published MAMF-finder best shapes (H100 SXM bf16; A100 SXM bf16): good regions to start in.
GPU_SEEDS = ((8192, 8192, 8192), (2048, 2048, 13312), (1024, 10240, 5120), (4096, 4096, 4096))
CPU_SEEDS = ((1024, 1024, 1024), (512, 512, 512))


@dataclass(frozen=True)
class Preset:
    """One search depth on one device kind."""

    name: str
    space: SearchSpace
    budget_s: float  # search seconds per dtype
    point: Policy  # how each shape is timed (cold: flushed, output re-randomised)
    warmup_s: float  # thermal warm-up before the first dtype
    warmup_shape: tuple[int, int, int]
    memory: Policy  # how each memory kernel is timed
    memory_floor_bytes: int  # smallest memory-ceiling buffer, whatever the cache size
    memory_cache_multiple: int = 8  # buffer at least this many last-level caches


def _gpu(depth: str) -> Preset:
    memory = Policy(mode="hot", warmup_min_s=0.2, warmup_max_s=1.0, timeout_s=2.0)
    if depth == "thorough":
        space = SearchSpace(
            coarse=(512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 20480),
            lo=256,
            hi=20480,
            min_step=128,
            refine_step=1024,
            starts=4,
            sweeps=3,
            seeds=GPU_SEEDS,
            max_call_s=0.05,
        )
        point = Policy(
            mode="cold",
            min_samples=100,
            min_time_s=0.2,
            max_noise=0.005,
            timeout_s=3.0,
            warmup_min_s=0.1,
            warmup_max_s=1.0,
        )
        return Preset("thorough", space, 600.0, point, 30.0, (8192, 8192, 8192), memory, GiB)
    space = SearchSpace(
        coarse=(1024, 2048, 4096, 8192, 12288, 16384),
        lo=256,
        hi=20480,
        min_step=256,
        refine_step=1024,
        starts=1,
        sweeps=2,
        seeds=GPU_SEEDS,
        max_call_s=0.03,
    )
    point = Policy(
        mode="cold",
        min_samples=20,
        min_time_s=0.05,
        max_noise=0.01,
        timeout_s=1.0,
        warmup_min_s=0.05,
        warmup_max_s=0.3,
        trend_window=4,
    )
    return Preset("quick", space, 40.0, point, 30.0, (8192, 8192, 8192), memory, GiB)


def _cpu(depth: str) -> Preset:
    memory = Policy(mode="hot", min_time_s=0.2, warmup_min_s=0.1, warmup_max_s=0.3, timeout_s=1.0)
    if depth == "thorough":
        space = SearchSpace(
            coarse=(128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096),
            lo=64,
            hi=4096,
            min_step=32,
            refine_step=256,
            starts=3,
            sweeps=3,
            seeds=CPU_SEEDS,
            max_call_s=0.5,
        )
        point = Policy(
            mode="cold",
            min_samples=20,
            min_time_s=0.2,
            max_noise=0.01,
            timeout_s=2.0,
            warmup_min_s=0.05,
            warmup_max_s=0.5,
        )
        return Preset("thorough", space, 120.0, point, 2.0, (1024, 1024, 1024), memory, 256 * MiB)
    space = SearchSpace(
        coarse=(256, 512, 1024, 2048),
        lo=64,
        hi=2048,
        min_step=64,
        refine_step=256,
        starts=1,
        sweeps=2,
        seeds=CPU_SEEDS,
        max_call_s=0.1,
    )
    point = Policy(
        mode="cold",
        min_samples=10,
        min_time_s=0.1,
        max_noise=0.02,
        timeout_s=0.8,
        warmup_min_s=0.02,
        warmup_max_s=0.2,
        trend_window=4,
    )
    return Preset("quick", space, 25.0, point, 1.0, (1024, 1024, 1024), memory, 256 * MiB)


def get_preset(kind: str, depth: str, budget_s: float | None = None) -> Preset:
    """The preset for a device kind ("cpu" or "cuda") and depth, with an optional budget."""
    if depth not in DEPTHS:
        raise ValueError(f"unknown search depth {depth!r}; choose {' or '.join(DEPTHS)}")
    preset = _cpu(depth) if kind == "cpu" else _gpu(depth)
    return preset if budget_s is None else replace(preset, budget_s=budget_s)


def capped(preset: Preset, max_dim: int) -> Preset:
    """The preset searching no dimension above max_dim (`flopwatt ceiling --max-dim`): for a
    device whose memory holds no 20480-wide matrices, or a quick look at small shapes. The
    lattice, coarse values, seeds and warm-up shape are clipped to it. ValueError below the
    lattice's smallest dimension."""
    space = preset.space
    if max_dim < space.lo:
        raise ValueError(f"--max-dim {max_dim}: at least {space.lo} on this device")
    if max_dim >= space.hi:
        return preset
    hi = max(space.lo, max_dim // space.min_step * space.min_step)  # on the lattice
    coarse = tuple(v for v in space.coarse if v <= hi) or (hi,)
    seeds = tuple(dict.fromkeys(tuple(min(d, hi) for d in seed) for seed in space.seeds))
    warmup = tuple(min(d, hi) for d in preset.warmup_shape)
    return replace(
        preset,
        space=replace(space, coarse=coarse, hi=hi, seeds=seeds),  # type: ignore[arg-type]
        warmup_shape=warmup,  # type: ignore[arg-type]
    )
