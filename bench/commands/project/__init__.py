"""`flopwatt project`: E(N), MFU and energy at 1k-16k GPUs from measured runs (bench.projection)."""
