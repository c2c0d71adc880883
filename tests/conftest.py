"""Markers: @pytest.mark.gpu tests run only where torch sees a CUDA device."""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run scripts/gpu-check.sh on a GPU node)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
