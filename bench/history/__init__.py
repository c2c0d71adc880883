"""The nightly history: every run of every node in one folder of parquet files, queried with
DuckDB, judged per (testbed, case) against its own recent past (docs/history.md)."""
