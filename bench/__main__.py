"""`python -m bench` is the same entry point as the `flopwatt` console script."""

from bench.cli import entry

raise SystemExit(entry())
