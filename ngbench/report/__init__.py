"""Reports: turn a sweep directory (Parquet + JSON only) into CSV tables, the paper's figures, one HTML page and
a markdown page.

load (cells, and every failed or unreadable one by name) -> query (DuckDB aggregates over the ops.parquet
files) -> views (per-view shares with their CIs) -> one module per table or figure, listed in
sections.SECTIONS (the figures drawn by a child process forked at the start and, once its tables are done, by
this one: sections.Drawing, ngbench.report.elsewhere) -> page (HTML, markdown) and __main__ (CSV files, the
command line).
"""
