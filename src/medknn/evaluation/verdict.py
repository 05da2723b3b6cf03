"""The results' one rule for a verdict: two configurations compared seed by seed.

Given the per-seed values of a metric for configurations A and B (same seed = same split and, in
the few-shot protocol, the same draw), the seeds both have are paired and the differences
``A − B`` taken:

- **held** (A better, or B better): at least ``MIN_SEEDS`` (5) paired seeds, every difference
  points the same way (a tie breaks the run), and ``|mean difference| > std of the differences``
  (sample std, ddof = 1);
- **same within noise**: any other outcome of two or more paired seeds;
- **indicative (n seeds)**: 2–4 paired seeds that would meet the held test — a direction, not a
  verdict;
- **indicative (one seed)**: one paired seed, whatever its difference; never held.

Seeds present on one side only are left out and reported. :func:`seed_values` reads a
benchmark's run folders (``OUT/<label>/seed<k>/metrics.json``), :func:`record_values` the
records of its ``results.json``; :func:`verdict_lines` prints a script's comparisons.
:func:`summary_verdict` decides what the rule can from means and standard deviations alone, for
results whose per-seed values were not kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medknn.io import read_json

MIN_SEEDS = 5
Kind = Literal["held", "same within noise", "indicative", "no paired seeds"]
# A metric is a key of metrics.json or a function of the whole metrics dict (e.g. one class's
# specificity).
Metric = str | Callable[[Mapping], float | None]


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`; ``mean_diff`` and the differences are ``a − b``."""

    kind: Kind
    a: str
    b: str
    metric: str
    seeds: tuple[int, ...]  # the paired seeds
    differences: tuple[float, ...]
    unpaired: tuple[int, ...] = ()  # seeds on one side only, left out
    higher_is_better: bool = True

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean_diff(self) -> float:
        return _mean(self.differences)

    @property
    def std_diff(self) -> float:
        """Sample standard deviation of the differences (NaN below two seeds)."""
        return _std(self.differences)

    @property
    def better(self) -> str | None:
        """The better configuration when the verdict has a direction (held or indicative)."""
        if self.kind not in ("held", "indicative") or self.mean_diff == 0:
            return None
        a_higher = self.mean_diff > 0
        return self.a if a_higher == self.higher_is_better else self.b

    @property
    def label(self) -> str:
        """``held``, ``same within noise``, ``indicative (3 seeds)``, ``indicative (one seed)``."""
        if self.kind == "indicative":
            return f"indicative ({_seeds_text(self.n)})"
        return self.kind

    def line(self) -> str:
        """One line, e.g. ``held: A > B on MCR (5 seeds, mean Δ 0.031 ± 0.012)``; the better
        side first, ``<`` between them where lower is better."""
        if self.kind == "no paired seeds":
            return f"no paired seeds: {self.a} vs {self.b} on {self.metric}" + self._left_out()
        first, second, relation = _better_first(
            self.a, self.b, self.mean_diff, self.higher_is_better
        )
        if self.kind == "same within noise":
            relation = "≈"
        size = abs(self.mean_diff)
        spread = "" if self.n < 2 else f" ± {self.std_diff:.3f}"
        delta = f"Δ {size:.3f}" if self.n == 1 else f"mean Δ {size:.3f}{spread}"
        lower = "" if self.higher_is_better else ", lower is better"
        return (
            f"{self.label}: {first} {relation} {second} on {self.metric} "
            f"({_seeds_text(self.n)}, {delta}{lower})" + self._left_out()
        )

    def _left_out(self) -> str:
        if not self.unpaired:
            return ""
        return "; unpaired seed(s) " + ", ".join(map(str, self.unpaired)) + " left out"


def _better_first(a: str, b: str, delta: float, higher_is_better: bool) -> tuple[str, str, str]:
    """``(better, worse, relation)`` for a difference ``delta = a − b``: the better side is named
    first, so that a line reads the same way whichever direction the metric runs (``<`` when
    lower is better)."""
    a_higher = delta >= 0
    if a_higher == higher_is_better:
        first, second = a, b
    else:
        first, second = b, a
    if delta == 0:
        return first, second, "="
    return first, second, ">" if higher_is_better else "<"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return math.nan
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _seeds_text(n: int) -> str:
    return "one seed" if n == 1 else f"{n} seeds"


def compare(
    a_values: Mapping[int, float],
    b_values: Mapping[int, float],
    *,
    a: str = "A",
    b: str = "B",
    metric: str = "metric",
    higher_is_better: bool = True,
    min_seeds: int = MIN_SEEDS,
) -> Verdict:
    """The rule of the module docstring, on ``{seed: value}`` of A and of B."""
    paired = sorted(set(a_values) & set(b_values))
    unpaired = tuple(sorted(set(a_values) ^ set(b_values)))
    differences = tuple(float(a_values[s]) - float(b_values[s]) for s in paired)
    if not paired:
        kind: Kind = "no paired seeds"
    elif len(paired) == 1:
        kind = "indicative"
    else:
        one_way = all(d > 0 for d in differences) or all(d < 0 for d in differences)
        separated = abs(_mean(differences)) > _std(differences)
        if not (one_way and separated):
            kind = "same within noise"
        else:
            kind = "held" if len(paired) >= min_seeds else "indicative"
    return Verdict(
        kind, a, b, metric, tuple(paired), differences, unpaired, higher_is_better=higher_is_better
    )


def summary_verdict(
    a: tuple[float, float],
    b: tuple[float, float],
    n: int,
    *,
    a_label: str = "A",
    b_label: str = "B",
    metric: str = "metric",
    higher_is_better: bool = True,
    min_seeds: int = MIN_SEEDS,
) -> str:
    """The rule's verdict where only ``(mean, sample std)`` over the same ``n`` paired seeds of
    A and B are known, when these decide it; else ``undetermined``.

    The std of the differences lies between ``|std_a − std_b|`` and ``std_a + std_b``. When
    ``|Δ mean|`` is at most the lower bound, the differences are not separated: same within
    noise. When it exceeds ``(std_a + std_b) · max(1, (n − 1)/√n)`` (no value of a sample lies
    further than ``std · (n − 1)/√n`` from its mean), every difference has the sign of the mean
    and exceeds the std: held (``n`` ≥ ``min_seeds``) or indicative. Between the two only the
    per-seed values decide."""
    (mean_a, std_a), (mean_b, std_b) = a, b
    delta = mean_a - mean_b
    first, second, relation = _better_first(a_label, b_label, delta, higher_is_better)
    lower = "" if higher_is_better else ", lower is better"
    seeds = f"{_seeds_text(n)}, from means ± std, mean Δ {abs(delta):.3f}{lower}"
    if n < 2:
        return f"indicative (one seed): {first} {relation} {second} on {metric} ({seeds})"
    if abs(delta) <= abs(std_a - std_b):
        return f"same within noise: {a_label} ≈ {b_label} on {metric} ({seeds})"
    if abs(delta) > (std_a + std_b) * max(1.0, (n - 1) / math.sqrt(n)):
        kind = "held" if n >= min_seeds else f"indicative ({_seeds_text(n)})"
        return f"{kind}: {first} {relation} {second} on {metric} ({seeds})"
    return (
        f"undetermined from means ± std: {a_label} vs {b_label} on {metric} ({seeds}; "
        f"held {'is possible' if n >= min_seeds else 'is not, below ' + str(min_seeds)})"
    )


def metric_value(metrics: Mapping, metric: Metric) -> float | None:
    value = metric(metrics) if callable(metric) else metrics.get(metric)
    return None if value is None else float(value)


def record_values(records: Iterable[Mapping], label: str, metric: Metric) -> dict[int, float]:
    """``{seed: value}`` of ``label`` from ``{"label", "seed", "metrics"}`` records (a
    benchmark's ``results.json``), runs without the metric left out."""
    values = {}
    for record in records:
        if record["label"] == label:
            value = metric_value(record["metrics"], metric)
            if value is not None:
                values[int(record["seed"])] = value
    return values


def folder_name(label: str) -> str:
    """The folder a benchmark gives a label: characters other than letters, digits, - _ + become
    ``_`` (``CE+BST (DM)`` → ``CE+BST__DM_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_+" else "_" for ch in label)


def seed_values(out: str | Path, label: str, metric: Metric) -> dict[int, float]:
    """``{seed: value}`` from a benchmark folder's finished runs ``OUT/<label>/seed<k>/
    metrics.json`` (``label`` as in the spec or as its folder name)."""
    folder = Path(out) / folder_name(label)
    values = {}
    for path in sorted(folder.glob("seed*/metrics.json")):
        match = re.fullmatch(r"seed(\d+)", path.parent.name)
        if match is None:
            continue
        value = metric_value(read_json(path), metric)
        if value is not None:
            values[int(match.group(1))] = value
    return values


def verdict_lines(
    records: Sequence[Mapping],
    comparisons: Iterable[tuple[str, str]],
    metrics: Iterable[tuple[Metric, str]],
    *,
    lower_is_better: Iterable[str] = (),
) -> list[str]:
    """One :meth:`Verdict.line` per comparison (A, B) and metric (key or function, name) whose
    labels are both in ``records``; comparisons with a missing label are skipped. Metrics named
    (by key or name) in ``lower_is_better`` count a lower value as better."""
    labels = {r["label"] for r in records}
    lower = set(lower_is_better)
    metrics = list(metrics)
    lines = []
    for a, b in comparisons:
        if a not in labels or b not in labels:
            continue
        for metric, name in metrics:
            verdict = compare(
                record_values(records, a, metric),
                record_values(records, b, metric),
                a=a,
                b=b,
                metric=name,
                higher_is_better=name not in lower and metric not in lower,
            )
            if verdict.kind != "no paired seeds":
                lines.append(verdict.line())
    return lines


def verdict_section(lines: Sequence[str]) -> str:
    """A Markdown block of verdict lines under the rule's name (empty without lines)."""
    if not lines:
        return ""
    rule = (
        f"Verdicts (docs/results/README.md: held = ≥ {MIN_SEEDS} paired seeds, every difference "
        "the same way, |mean Δ| > std Δ):"
    )
    return "\n" + rule + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
