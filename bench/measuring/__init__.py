"""Measuring: the timing engine, the energy window, statistics and formulas."""
