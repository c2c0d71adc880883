"""The memory-bandwidth byte convention: a copy counts its read and its write (STREAM)."""

import torch

from bench.commands.health.probe import CopyKernel
from kernels import membw

GiB = 1024**3


def test_a_copy_counts_the_bytes_it_reads_and_the_bytes_it_writes():
    # an H200 copying a 4 GiB buffer in 2.0 ms moves 8 GiB: 4.29 TB/s, not 2.15
    assert membw.bytes_per_call("copy", 4 * GiB) == 8 * GiB
    assert 8 * GiB / 2.0e-3 / 1e12 == 4.294967296
    assert membw.bytes_per_call("read", 4 * GiB) == 4 * GiB  # a read-only sum reads once


def test_health_and_the_ceiling_count_a_copy_alike():
    case = CopyKernel().make_case(64 * 1024**2, "cpu")
    assert CopyKernel().memory_bytes(case) == membw.bytes_per_call("copy", 64 * 1024**2)
    assert "read" in membw.CONVENTION["copy"] and "write" in membw.CONVENTION["copy"]


def test_the_copy_really_reads_one_buffer_and_writes_another():
    prepared = membw.prepare("copy", 4096, "cpu")
    out = prepared.run()
    assert prepared.check().ok
    assert isinstance(out, torch.Tensor) and out.numel() * out.element_size() == 4096
