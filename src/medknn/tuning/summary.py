"""The end of a study: the best trial and the top trials' ensemble (each chosen on validation,
scored once on test), Optuna's importance and history plots, and ``DIR/summary.md``."""

from __future__ import annotations

import io
import shlex
import warnings
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from medknn.errors import TrainingError
from medknn.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from medknn.runs import TrainConfig
from medknn.tuning.budget import STOPPED_FOR_BUDGET, describe_seconds
from medknn.tuning.space import StudySettings
from medknn.tuning.storage import is_claimed_elsewhere
from medknn.tuning.worker import NOT_STARTED

ENSEMBLE_SIZE = 3
TEST_KEYS = ("accuracy", "mcr", "macro_f1", "auc")


def trial_state(trial: Any) -> str:
    """complete, pruned, failed, running, "not started" (it would not have fitted in the time
    left) or "stopped (budget)" (it would have overrun it; a rerun resumes it)."""
    from optuna.trial import TrialState

    if trial.user_attrs.get(NOT_STARTED):
        return "not started"
    if trial.state == TrialState.RUNNING and trial.user_attrs.get(STOPPED_FOR_BUDGET):
        return "stopped (budget)"
    return trial.state.name.lower()


def finish_study(
    study: Any, out: Path, settings: StudySettings, *, console: Console, storage: str
) -> Any:
    """Write the ensemble and the summary, unless trials of this folder still run in other
    processes (the last of them to finish writes them); return the ``TuneResult``."""
    from optuna.trial import TrialState

    from medknn.tuning.study import TuneResult

    trials = study.get_trials(deepcopy=False)
    running = [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING and is_claimed_elsewhere(out, t.number)
    ]
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and _is_finished_run(out / t.user_attrs["run"])
    ]
    if not complete:
        raise TrainingError(
            f"No trial of the study in {out} has finished yet"
            + (f" (trials {running} still run in other processes)." if running else ".")
            + " Rerun the command with a larger --budget to go on."
        )
    fingerprint = [[t.number, t.state.name, t.value] for t in trials]
    previous = out / "result.json"
    if not running and previous.exists() and (out / "summary.md").exists():
        saved = read_json(previous)
        if saved.get("fingerprint") == fingerprint:  # written for these very trials: reuse
            return _result_from(saved, out)
    ranked = sorted(complete, key=lambda t: (-t.value, t.number))
    best = ranked[0]
    best_run = out / best.user_attrs["run"]
    members = ranked[:ENSEMBLE_SIZE]
    metric = settings.metric
    validation = {"best": float(best.value)}
    test = {"best": _test_metrics(best_run)}
    ensemble_dir = None
    if len(members) >= 2 and not running:
        ensemble_dir = out / "ensemble"
        ensemble_val, test["ensemble"] = _ensemble(
            [out / t.user_attrs["run"] for t in members], ensemble_dir, metric
        )
        validation["ensemble"] = ensemble_val
    recommended = (
        ensemble_dir
        if ensemble_dir is not None and validation["ensemble"] > validation["best"]
        else best_run
    )
    counts: dict[str, int] = {}
    for t in trials:
        state = trial_state(t)
        counts[state] = counts.get(state, 0) + 1
    summary = out / "summary.md"
    if running:
        console.print(
            f"trials {running} still run in other processes; the last of them to finish writes "
            "the ensemble and summary.md.",
            markup=False,
        )
    else:
        plots = _plots(study, out)
        text = _summary(
            study,
            out,
            settings,
            best,
            members,
            ensemble_dir,
            recommended,
            validation,
            test,
            counts,
            plots,
            storage,
        )
        atomic_write_text(summary, text)
        atomic_write_json(
            out / "result.json",
            {
                "best_trial": best.number,
                "best_run": str(best_run),
                "ensemble": str(ensemble_dir) if ensemble_dir else None,
                "ensemble_members": [t.number for t in members] if ensemble_dir else [],
                "recommended": str(recommended),
                "metric": metric,
                "validation": validation,
                "test": test,
                "trials": counts,
                "fingerprint": fingerprint,
            },
        )
    return TuneResult(
        out, best.number, best_run, ensemble_dir, recommended, summary, counts, validation, test
    )


def _result_from(saved: dict[str, Any], out: Path) -> Any:
    from medknn.tuning.study import TuneResult

    ensemble = saved["ensemble"]
    return TuneResult(
        out,
        saved["best_trial"],
        Path(saved["best_run"]),
        Path(ensemble) if ensemble else None,
        Path(saved["recommended"]),
        out / "summary.md",
        saved["trials"],
        saved["validation"],
        saved["test"],
    )


def _is_finished_run(run: Path) -> bool:
    status = run / "status.json"
    return status.exists() and read_json(status).get("status") == "complete"


def _test_metrics(run: Path) -> dict[str, Any]:
    """The test score a run wrote once when it finished (never read to choose)."""
    metrics = read_json(run / "metrics.json")
    return {key: metrics.get(key) for key in TEST_KEYS}


def _ensemble(members: list[Path], out: Path, metric: str) -> tuple[float, dict[str, Any]]:
    """The members' ensemble (its decision rule chosen on validation), scored on test once: an
    existing ensemble of the same members is reused. Returns its validation metric and test
    metrics."""
    from medknn.prediction.ensemble_run import EnsembleRun
    from medknn.run_ensemble import create_ensemble, evaluate_ensemble

    same = False
    if EnsembleRun.is_ensemble(out) and (out / "metrics.json").exists():
        existing = EnsembleRun.load(out)
        same = [m.path.resolve() for m in existing.members] == [p.resolve() for p in members]
    if same:
        ensemble, test = existing, read_json(out / "metrics.json")
    else:
        ensemble, test = create_ensemble(members, out, progress=False)
    validation = evaluate_ensemble(ensemble, part="val", progress=False)
    return float(validation[metric]), {key: test.get(key) for key in TEST_KEYS}


def _plots(study: Any, out: Path) -> dict[str, str]:
    """Optuna's optimisation history and parameter importances (matplotlib backend) as PNGs;
    a plot that cannot be drawn yet (too few trials) is named with the reason."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    made = {}
    for name, draw in (
        ("history", optuna_plots.plot_optimization_history),
        ("importance", optuna_plots.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study)
            figure = axes.figure
            figure.set_size_inches(8, 4.5)
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            plt.close(figure)
            atomic_write_bytes(out / f"{name}.png", buffer.getvalue())
            made[name] = f"{name}.png"
        except Exception as error:  # noqa: BLE001 - e.g. too few finished trials for importances
            made[name] = f"not drawn: {str(error).strip().splitlines()[0][:200]}"
    return made


def train_command(run: Path) -> str:
    """The ``medknn train`` command line that trains ``run``'s config again."""
    config = TrainConfig.load_saved(run / "config.yaml")
    defaults = TrainConfig().to_dict()
    values = config.to_dict()
    words = ["medknn", "train", "--data", values["data"], "--method", values["method"]]
    for key, value in values.items():
        if key in ("data", "method") or value == defaults.get(key):
            continue
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")
        words += ["--set", f"{key}={text}"]
    words += ["--out", "runs/best"]
    return " ".join(shlex.quote(str(word)) for word in words)


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _summary(
    study: Any,
    out: Path,
    settings: StudySettings,
    best: Any,
    members: list[Any],
    ensemble_dir: Path | None,
    recommended: Path,
    validation: dict[str, float],
    test: dict[str, dict[str, Any]],
    counts: dict[str, int],
    plots: dict[str, str],
    storage: str,
) -> str:
    metric = settings.metric
    lines = [
        f"# medknn tune: {settings.base['data']}",
        "",
        f"Study `{study.study_name}` in `{storage}`; chosen by validation {metric}; "
        f"methods searched: {', '.join(settings.methods)}"
        + (
            f" (asked, but skipped as unable to run: "
            f"{', '.join(sorted(set(settings.asked) - set(settings.methods)))})"
            if set(settings.asked) - set(settings.methods)
            else ""
        )
        + ".",
        "Trials: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ".",
        "",
        "## Chosen on validation, scored once on test",
        "",
        f"| model | validation {metric} | test " + " | test ".join(TEST_KEYS) + " |",
        "|---|---|" + "---|" * len(TEST_KEYS),
    ]
    rows = [("best trial " + str(best.number) + f" (`{out.name}/trials/{best.number}`)", "best")]
    if ensemble_dir is not None:
        names = ", ".join(str(t.number) for t in members)
        rows.append((f"ensemble of trials {names} (`{out.name}/ensemble`)", "ensemble"))
    for label, key in rows:
        scores = test[key]
        lines.append(
            f"| {label} | {validation[key]:.4f} | "
            + " | ".join(_number(scores.get(k)) for k in TEST_KEYS)
            + " |"
        )
    lines += [
        "",
        f"Recommended (higher validation {metric}): `{recommended}`. The test split was read "
        "only to score these two, after the choice; every trial's own `metrics.json` holds its "
        "test score as any run does, and the study never reads it.",
        "",
        "Reproduce the best trial:",
        "",
        "```bash",
        train_command(out / best.user_attrs["run"]),
        "```",
        "",
        "## Trials",
        "",
        f"| trial | state | method | validation {metric} | epochs | time | settings | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in study.get_trials(deepcopy=False):
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(t.params.items()) if k != "method")
        epochs = len(t.intermediate_values) or "–"
        seconds = t.user_attrs.get("seconds")
        note = str(t.user_attrs.get("reason", "")).replace("|", "/")
        state = trial_state(t)
        lines.append(
            f"| {t.number} | {state} | {t.params.get('method', '–')} | {_number(t.value)} | "
            f"{epochs} | {describe_seconds(seconds) if seconds else '–'} | {params} | {note} |"
        )
    lines += ["", "## Plots", ""]
    for name, title in (("history", "Optimisation history"), ("importance", "Importances")):
        made = plots.get(name, "")
        lines.append(
            f"![{title}]({made})" if made.endswith(".png") else f"{title}: {made or 'not drawn'}"
        )
        lines.append("")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
