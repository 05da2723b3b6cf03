"""Reports: tables of metrics for runs and benchmarks."""

from medknn.reports.tables import csv_table, markdown_table, run_table, summarize

__all__ = ["csv_table", "markdown_table", "run_table", "summarize"]
