"""flopwatt's Python API: `bench.measure`, `bench.power_window`, `bench.run`, `bench.load_runs`.

Import the functions from `bench` (its `__all__` is the public surface); the modules here
are how they are built: `inputs` checks what the caller passed, `measurement` times a
callable, `window` measures energy around a block of code, `runs` runs and loads run folders.
"""
