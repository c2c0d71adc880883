"""Reports: pure writers of loaded runs (DataFrame views, Markdown, self-contained HTML).

Nothing here reads or writes files: the CLI loads the runs (bench.results.record.load_run), calls
these functions and writes what they return. matplotlib is imported only by the plot
functions, so tables and comparisons render without it.
"""
