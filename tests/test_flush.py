"""The cold-mode GPU flush: its size from the device's properties, and the order of its passes.

The properties are plain objects shaped like torch.cuda.get_device_properties(); the flush
itself runs on a CPU tensor, with the device's synchronize and launch cover recorded.
"""

from types import SimpleNamespace

import pytest
import torch

from bench.devices.flush import CacheFlush, FlushSize, flush_size

MiB = 1024**2


@pytest.mark.parametrize(
    ("l2_bytes", "vendor", "expected"),
    [
        (50 * MiB, "nvidia", 100 * MiB),  # H100 SXM: 50 MiB L2
        (60 * MiB, "nvidia", 120 * MiB),  # H200: 60 MiB L2
        (40 * MiB, "nvidia", 80 * MiB),  # A100: 40 MiB L2
        (4 * MiB, "amd", 512 * MiB),  # MI300X: 4 MiB L2, 256 MiB Infinity Cache behind it
        (512 * MiB, "amd", 1024 * MiB),  # an L2 above the floor wins
        (0, "nvidia", 512 * MiB),  # not reported: the 256 MiB assumption, doubled
    ],
)
def test_the_flush_is_twice_the_last_level_cache(l2_bytes, vendor, expected):
    size = flush_size(SimpleNamespace(L2_cache_size=l2_bytes), vendor)
    assert size.nbytes == expected


def test_the_source_of_the_size_is_said():
    assert flush_size(SimpleNamespace(L2_cache_size=50 * MiB), "nvidia").source == (
        "2 x L2_cache_size"
    )
    assert "not reported" in flush_size(SimpleNamespace(), "nvidia").source
    assert "Infinity Cache" in flush_size(SimpleNamespace(L2_cache_size=4 * MiB), "amd").source


def test_the_flush_writes_then_reads_then_syncs_then_covers_the_launch():
    events = []
    flush = CacheFlush(
        FlushSize(4096, "test"),
        "cpu",
        synchronize=lambda: events.append("sync"),
        cover=lambda: events.append("cover"),
    )
    buf = flush._buf
    assert buf.numel() * buf.element_size() == 4096
    for round_no in (1, 2):
        total = flush()
        # written: every element holds this round's value; read: the sum saw all of them
        expected = round_no % 2
        assert torch.equal(buf, torch.full_like(buf, expected))
        assert int(total) == expected * buf.numel()
    assert events == ["sync", "cover", "sync", "cover"]
