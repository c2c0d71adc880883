from bench.results.blessed.paths import sku_key
from bench.devices.base import CpuIdentity, GpuIdentity


def test_table_skus_name_the_folder_whatever_the_driver_calls_them():
    h100 = GpuIdentity("nvidia", "NVIDIA H100 80GB HBM3", "9.0", 132)
    bare = GpuIdentity("nvidia", "NVIDIA H100", "9.0", 132)
    assert sku_key(h100) == sku_key(bare) == "h100-sxm5-80gb"
    assert sku_key(GpuIdentity("nvidia", "NVIDIA H200", "9.0", 132)) == "h200-sxm-141gb"


def test_unknown_gpus_and_cpus_get_a_slug_of_their_name():
    assert sku_key(GpuIdentity("nvidia", "NVIDIA H800", "9.0", 132)) == "nvidia-h800"
    cpu = CpuIdentity("AMD EPYC 7B13", "x86_64", frozenset(), 2, 2, None, "none")
    assert sku_key(cpu) == "cpu-amd-epyc-7b13"
