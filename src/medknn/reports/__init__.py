"""Reports: tables of metrics for runs and benchmarks, plots, and HTML report pages."""

from medknn.reports.benchmark_report import write_benchmark_report
from medknn.reports.classification_plots import plot_confusion_matrix, plot_roc_curves
from medknn.reports.embedding_map import plot_embedding_map
from medknn.reports.html_report import (
    EvidenceCase,
    RunReportInputs,
    choose_cases,
    write_run_report,
)
from medknn.reports.per_class_plot import plot_per_class_f1
from medknn.reports.run_plots import write_run_plots
from medknn.reports.tables import (
    csv_table,
    markdown_table,
    per_seed_table,
    run_table,
    summarize,
)

__all__ = [
    "EvidenceCase",
    "RunReportInputs",
    "choose_cases",
    "csv_table",
    "markdown_table",
    "per_seed_table",
    "plot_confusion_matrix",
    "plot_embedding_map",
    "plot_per_class_f1",
    "plot_roc_curves",
    "run_table",
    "summarize",
    "write_benchmark_report",
    "write_run_plots",
    "write_run_report",
]
