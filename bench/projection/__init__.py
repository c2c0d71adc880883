"""Projection of measured single-node efficiency to 1k-16k GPU clusters (`flopwatt project`).

Pure functions over plain data: no torch, no files. `calibration` turns loaded runs into
constants (each marked measured or assumed), `collectives` and `iteration` are the model,
`project` evaluates it over N, `scaling_dp` is the pure data-parallel mode and `exports`
writes the same calibration in other tools' formats.
"""
