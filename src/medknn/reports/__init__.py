"""Reports: tables of metrics for runs and benchmarks, and plots."""

from medknn.reports.classification_plots import plot_confusion_matrix, plot_roc_curves
from medknn.reports.embedding_map import plot_embedding_map
from medknn.reports.run_plots import write_run_plots
from medknn.reports.tables import csv_table, markdown_table, run_table, summarize

__all__ = [
    "csv_table",
    "markdown_table",
    "plot_confusion_matrix",
    "plot_embedding_map",
    "plot_roc_curves",
    "run_table",
    "summarize",
    "write_run_plots",
]
