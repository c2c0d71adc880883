"""Measured ceilings: the best rates this very device sustains, as a second denominator.

A datasheet peak is a ceiling no kernel reaches (H100 bf16: 989 TFLOP/s spec, about 795
reached by the best matmul shapes), so "62% of peak" says little until it can be read as
"78% of achievable". This package finds the achievable rate the way MAMF finder does, with
flopwatt's own timing engine, and keeps it beside the results:

- search.py: a coarse-to-fine search over M, N, K with an injectable measurement (pure);
  presets.py: how widely and how long, per device kind and depth;
- measure.py: the torch side: one shape timed cold with the output re-randomised, the
  thermal warm-up, and the memory-bandwidth ceiling (copy and read-only reduction);
- model.py: what a ceiling is, as data; store.py: results/baselines/<sku>/ceiling.json;
- ratios.py: frac_of_measured_peak and frac_of_clock_peak for a CaseResult;
- command.py and render.py: `flopwatt ceiling`; session.py: the ceilings a run divides by.

Nothing here imports torch at import time; measure.py and command.py import it when called.
"""
