"""pytest-benchmark: a projection over 20 values of N with its three bands in under 1 s
(excluding loading the runs), on the GPU fixture's calibration."""

from pathlib import Path

from bench.projection import setup
from bench.projection.from_runs import calibrate
from bench.projection.iteration import Parallel
from bench.projection.models import PRESETS
from bench.projection.project import project
from bench.results.record import load_run

ROOT = Path(__file__).resolve().parents[1]


def test_projection_of_20_n_three_bands(benchmark):
    cal = calibrate([load_run(ROOT / "tests/data/gpu-run")])
    comp, (fab, _) = setup.compute(cal), setup.fabric(cal.fits, {})
    ns = [512 * k for k in range(1, 21)]
    par = Parallel(tp=8, pp=8, global_batch=8192, vp=2)
    out = benchmark(project, ns, PRESETS["gpt3-175b"], par, comp, fab, cal.max_world_size)
    assert len(out["rows"]) == 60
    assert benchmark.stats.stats.median < 1.0
