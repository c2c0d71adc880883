"""Blessed artefacts: per-SKU baselines and ceilings."""
