"""The batched segmentation against the library it stands in for: ruptures' KernelCPD with
its linear kernel (exact penalised least squares) must find the same change points."""

import numpy as np
import pytest

from bench.history.segmentation import segment_many

ruptures = pytest.importorskip("ruptures")


def _fleet(seed: int, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Series of 4-70 points: noise, steps up and down, drifts, each with its own penalty."""
    rng = np.random.default_rng(seed)
    series, penalties = [], []
    for i in range(count):
        n = int(rng.integers(4, 71))
        x = 1 + rng.normal(0, 0.02, n)
        for _ in range(int(rng.integers(0, 4))):
            k = int(rng.integers(1, n))
            x[k:] *= 1 + rng.normal(0, 0.06)
        if i % 5 == 0:
            x += np.linspace(0, rng.normal(0, 0.1), n)
        series.append(x)
        penalties.append(3.5 * 0.02**2 * np.log(n) * rng.uniform(0.2, 3))
    return series, np.array(penalties)


@pytest.mark.parametrize("min_size", [2, 3, 5])
def test_same_change_points_as_ruptures_kernelcpd(min_size: int) -> None:
    series, penalties = _fleet(min_size, 300)
    edges = np.r_[0, np.cumsum([len(x) for x in series])]
    found = segment_many(np.concatenate(series), edges, penalties, min_size)
    segmented = 0
    for x, penalty, starts in zip(series, penalties, found, strict=True):
        if len(x) < 2 * min_size:
            assert starts == []
            continue
        algo = ruptures.KernelCPD(kernel="linear", min_size=min_size, jump=1)
        expected = algo.fit(x.reshape(-1, 1)).predict(pen=penalty)[:-1]
        assert starts == expected
        segmented += bool(starts)
    assert segmented > 100  # most series have a change point: the comparison is not vacuous


def test_a_quiet_series_is_one_segment_and_a_step_is_found_where_it_is() -> None:
    rng = np.random.default_rng(7)
    quiet = 1 + rng.normal(0, 0.01, 60)
    step = quiet.copy()
    step[41:] *= 0.95
    edges = np.array([0, 60, 120])
    found = segment_many(np.r_[quiet, step], edges, np.full(2, 3.5 * 0.01**2 * np.log(60)), 3)
    assert found == [[], [41]]
