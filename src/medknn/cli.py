"""The ``medknn`` command: train, evaluate, report, predict, benchmark, demo, and listings."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medknn.errors import ConfigError, MedknnError

if TYPE_CHECKING:
    from medknn.runs import TrainConfig

# Each command imports what it needs when it runs (torch, timm, faiss, scikit-learn take
# seconds to import): `medknn --help` and the listings start in well under a second.

app = typer.Typer(
    help="Medical image classification for scarce, imbalanced data, with kNN evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out_console = Console()
err_console = Console(stderr=True)

DEMO_CONFIG = {
    "data": "breastmnist",
    "method": "deepknn",
    "epochs": 8,  # a quick look: the default (epochs null) would take about 86 here
    "batch_size": 20,  # 2 classes × 10 images: enough steps per epoch on 546 training images
}


def friendly(command):
    """Turn medknn's own errors and the environment's (a full disk, a path that cannot be
    written) into a one-paragraph message and exit code 2, not a traceback. Anything else is a
    bug: one line and exit code 1 (``MEDKNN_DEBUG=1`` shows the traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except MedknnError as error:
            _print_error(str(error))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: rerun the same command to resume from the last epoch")
            raise typer.Exit(130) from None
        except OSError as error:
            _print_error(_os_error_message(error))
            raise typer.Exit(2) from None
        except Exception as error:
            if os.environ.get("MEDKNN_DEBUG"):
                raise
            _print_error(
                f"unexpected {type(error).__name__}: {_first_line(error)}. This is a bug in "
                "medknn: rerun with MEDKNN_DEBUG=1 for the traceback and please report it."
            )
            raise typer.Exit(1) from None

    return wrapper


def _print_error(message: str) -> None:
    # One line even when a library's message has several (YAML's points at the position).
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    # escape: a file name or label such as "x[/].png" is printed as it is, never as markup.
    # soft_wrap: one line that the terminal folds, never a newline inside a path.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


def _os_error_message(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    reason = error.strerror or _first_line(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{reason}{where}: the disk is full. Free some space and rerun the same command: "
            "a run resumes from its last saved epoch, no finished file was harmed."
        )
    return f"{reason}{where}. Check the path and its permissions, then rerun."


# Options shared by train and benchmark; None means "keep the config file's value".
Data = Annotated[
    str | None, typer.Option(help="ham10000, pneumoniamnist, breastmnist, a folder, .csv or .npz")
]
Method = Annotated[str | None, typer.Option(help="See `medknn methods`.")]
Backbone = Annotated[str | None, typer.Option(help="Any timm name, see `medknn backbones`.")]
ImageSize = Annotated[int | None, typer.Option("--image-size", help="Input size in px (28–224).")]
Epochs = Annotated[
    int | None,
    typer.Option(help="Training epochs (default: enough for 600 optimiser steps, 12–100)."),
]
Pretrained = Annotated[
    bool | None,
    typer.Option(
        "--pretrained/--no-pretrained", help="ImageNet weights (offline: tf_efficientnet_lite0)."
    ),
]
Weights = Annotated[str | None, typer.Option(help="A local .safetensors/.pth backbone state dict.")]
Split = Annotated[str | None, typer.Option(help="auto, official, grouped, stratified, dermamnist.")]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Any config option as key=value (YAML value), repeatable."),
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="A YAML config file.")]
NoProgress = Annotated[bool, typer.Option("--quiet", help="No progress bars or epoch lines.")]


def _build_config(
    config_file: Path | None,
    sets: list[str] | None,
    defaults: dict[str, Any] | None = None,
    **flags: Any,
) -> TrainConfig:
    """Layers, later winning: ``defaults`` (a benchmark spec's base), --config, flags, --set."""
    from medknn.runs.config import TrainConfig

    values = dict(defaults or {})
    if config_file:
        values.update(TrainConfig.from_yaml(config_file).to_dict())
    values.update({k: v for k, v in flags.items() if v is not None})
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set lr=0.001")
        try:
            values[key.strip().replace("-", "_")] = yaml.safe_load(raw)
        except yaml.YAMLError as error:  # malformed, or a tag such as !!python/object
            problem = getattr(error, "problem", None) or _first_line(error)
            raise ConfigError(
                f"--set {item!r}: the value is not plain YAML ({problem}); write e.g. "
                "--set lr=0.001 or --set 'data_options={label_column: dx}'."
            ) from None
    return TrainConfig.from_dict(values, source="options")


@app.command()
@friendly
def train(
    out: Annotated[Path, typer.Option(help="Run directory (rerun to resume).")],
    config: ConfigFile = None,
    data: Data = None,
    method: Method = None,
    backbone: Backbone = None,
    image_size: ImageSize = None,
    epochs: Epochs = None,
    pretrained: Pretrained = None,
    weights: Weights = None,
    init_from: Annotated[
        str | None, typer.Option(help="Run whose backbone deepknn-star / linear-probe start from.")
    ] = None,
    split: Split = None,
    download: Annotated[
        bool | None, typer.Option("--download", help="Fetch a missing MedMNIST file.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (split, sampling, init).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", help="Option num_positives: Deep kNN's K same-class neighbours."),
    ] = None,
    m: Annotated[
        int | None,
        typer.Option(
            "--m",
            help="Option num_negatives: Deep kNN's M, constellation's K. Every method's options: "
            "`medknn methods`; set them with --set 'method_options={name: value}'.",
        ),
    ] = None,
    k_predict: Annotated[
        int | None, typer.Option(help="K_p neighbours voting at prediction.")
    ] = None,
    sets: Sets = None,
    quiet: NoProgress = False,
) -> None:
    """Train a method and score it on the test split; an interrupted run resumes.
    Under torchrun (`torchrun --nproc-per-node N -m medknn train ...`) on N processes."""
    cfg = _build_config(
        config,
        sets,
        data=data,
        method=method,
        backbone=backbone,
        image_size=image_size,
        epochs=epochs,
        pretrained=pretrained,
        weights=weights,
        init_from=init_from,
        split=split,
        download=download,
        seed=seed,
        lr=lr,
        num_positives=k,
        num_negatives=m,
        k_predict=k_predict,
    )
    from medknn import api
    from medknn.io import read_json
    from medknn.training.distributed import is_main_process

    run = api.train(cfg, out, progress=not quiet)
    if is_main_process():  # under torchrun, once rather than once per process
        _print_metrics(read_json(run.run_dir.metrics), title=f"{cfg.method} on {cfg.data} (test)")
        out_console.print(f"run saved in {escape(str(out))}", highlight=False)


@app.command()
@friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="A finished run directory.")],
    part: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print all metrics as JSON.")] = False,
    plots: Annotated[
        bool,
        typer.Option("--plots", help="Write confusion matrix, ROC and t-SNE PNGs to RUN/plots/."),
    ] = False,
    thumbnails: Annotated[
        bool, typer.Option("--thumbnails", help="With --plots: a t-SNE map drawn with images.")
    ] = False,
    report: Annotated[
        bool, typer.Option("--report", help="Also write the HTML report (see `medknn report`).")
    ] = False,
    decide: Annotated[
        bool,
        typer.Option(
            "--decide",
            help="First choose the decision rule on the validation split (RUN/decision.json).",
        ),
    ] = False,
    tta: Annotated[
        str | None, typer.Option(help="Test-time augmentation: none, flips or crops.")
    ] = None,
    quiet: NoProgress = False,
) -> None:
    """Score a run on its own saved split."""
    from medknn import api

    metrics = api.evaluate(
        run,
        part=part,
        plots=plots,
        thumbnails=thumbnails,
        report=report,
        progress=not quiet,
        decide=decide,
        tta=tta,
    )
    if as_json:
        out_console.print_json(json.dumps(metrics))
    else:
        _print_metrics(metrics, title=f"{run} ({part})")
        for path in metrics.get("plots", []):
            out_console.print(f"plot: {escape(str(path))}", highlight=False)
        if report:
            out_console.print(f"report: {escape(str(metrics['report']))}", highlight=False)


@app.command()
@friendly
def report(
    run: Annotated[Path, typer.Argument(help="A finished run or a benchmark directory.")],
    part: Annotated[str, typer.Option(help="train, val or test (runs only).")] = "test",
    open_page: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
    quiet: NoProgress = False,
) -> None:
    """Write an HTML report (PNGs and report.json beside it) to RUN/report/index.html."""
    from medknn import api

    page = api.report(run, part=part, progress=not quiet)
    out_console.print(f"report: {escape(str(page))}", highlight=False)
    if open_page:
        typer.launch(page.resolve().as_uri())


@app.command()
@friendly
def predict(
    run: Annotated[Path, typer.Argument(help="A finished run directory.")],
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print predictions as JSON.")] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Images per forward pass (memory stays flat).")
    ] = 32,
) -> None:
    """Predict images: class, probability and the nearest training cases behind it."""
    from medknn.prediction import TrainedRun  # not medknn.api: no plots, reports or metrics
    from medknn.prediction.ensemble_run import EnsembleRun

    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: give a whole number >= 1, e.g. 32.")
    trained = EnsembleRun.load(run) if EnsembleRun.is_ensemble(run) else TrainedRun.load(run)
    predictions = trained.iter_predict_files(images, batch_size=batch_size)
    if as_json:
        # Streamed one prediction at a time, as plain JSON (no rich: it would wrap long lines).
        for i, p in enumerate(predictions):
            item = {
                "image": p.source,
                "label": p.label,
                "probability": p.probability,
                "probabilities": p.probabilities,
                "neighbours": [vars(n) for n in p.neighbours],
            }
            text = json.dumps(item, indent=2, ensure_ascii=False)
            sys.stdout.write(("[\n" if i == 0 else ",\n") + _indent(text))
            sys.stdout.flush()
        sys.stdout.write("\n]\n" if images else "[]\n")
        return
    for p in predictions:
        # File names and labels are the user's: escaped, so "[left]" prints as "[left]".
        out_console.print(
            f"[bold]{escape(p.source)}[/]: {escape(p.label)} (p = {p.probability:.2f})",
            highlight=False,
            soft_wrap=True,
        )
        members = getattr(p, "members", None)
        if members:  # an ensemble: each member's vote and evidence
            out_console.print(f"members agreeing: {p.agreement:.0%}")
            for index, member in enumerate(members, 1):
                out_console.print(
                    f"member {index}: {escape(member.label)} (p = {member.probability:.2f})",
                    highlight=False,
                )
                _print_neighbours(member.neighbours)
        else:
            _print_neighbours(p.neighbours)


def _print_neighbours(neighbours: list) -> None:
    table = Table("rank", "training case", "label", "distance", box=None, pad_edge=False)
    for rank, n in enumerate(neighbours, 1):
        table.add_row(str(rank), escape(n.id), escape(n.class_name), f"{n.distance:.4f}")
    out_console.print(table, highlight=False)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@app.command()
@friendly
def ensemble(
    runs: Annotated[list[Path], typer.Argument(help="Finished runs of one data set and split.")],
    out: Annotated[Path, typer.Option(help="The ensemble's run directory.")],
    quiet: NoProgress = False,
) -> None:
    """Average several runs' probabilities into one model (evaluate and predict accept it)."""
    from medknn import api

    metrics = api.ensemble(runs, out, progress=not quiet)
    _print_metrics(metrics, title=f"ensemble of {len(runs)} runs (test split)")
    out_console.print(f"members agreeing with the ensemble: {metrics['agreement']:.1%}")
    out_console.print(f"ensemble saved in {out}")


@app.command()
@friendly
def serve(
    run: Annotated[Path, typer.Argument(help="A finished run or ensemble directory.")],
    host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless needed.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDKNN_SERVE_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on the API (or set MEDKNN_SERVE_TOKEN).",
        ),
    ] = None,
) -> None:
    """Serve a web page and JSON API: an uploaded image's class and nearest training cases (an
    ensemble's class, with each member's label and nearest cases)."""
    from medknn.serve import CaseService, is_loopback, run_server  # FastAPI only when serving

    if not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/] binding {host}: other machines can reach this server"
            + ("" if token else "; set --token so that only those who know it can use it"),
            highlight=False,
        )
    service = CaseService.load(run, progress=True)
    err_console.print(f"medknn serve: http://{host}:{port}/  (Ctrl+C stops)", highlight=False)
    run_server(service, host=host, port=port, token=token)


@app.command()
@friendly
def benchmark(
    out: Annotated[Path, typer.Option(help="Directory for the runs and the results table.")],
    config: ConfigFile = None,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Benchmark YAML: base, methods, seeds.")
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated method names; with --spec, its entries by label or method "
            "(with their own options)."
        ),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    data: Data = None,
    backbone: Backbone = None,
    image_size: ImageSize = None,
    epochs: Epochs = None,
    pretrained: Pretrained = None,
    split: Split = None,
    shots: Annotated[
        int | None, typer.Option(help="Few-shot: train on N images per class of the train split.")
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(help="Few-shot repeats = seeds 0..R-1: a new draw each, one test split."),
    ] = None,
    sets: Sets = None,
    quiet: NoProgress = False,
) -> None:
    """Methods × seeds on one data set → mean ± std per metric (results.md/.csv in --out)."""
    from medknn.benchmark import load_benchmark_file, run_benchmark, select_entries

    base, entries, seed_list = ({}, [], [0])
    if spec is not None:
        base, entries, seed_list = load_benchmark_file(spec)
    base_cfg = _build_config(
        config,
        sets,
        base,
        data=data,
        backbone=backbone,
        image_size=image_size,
        epochs=epochs,
        pretrained=pretrained,
        split=split,
        shots=shots,
    )
    if methods:
        entries = select_entries(entries, [n.strip() for n in methods.split(",") if n.strip()])
    if not entries:
        raise ConfigError("Name the methods: --methods deepknn,triplet or a --spec file.")
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {seeds!r}: give whole numbers, e.g. 0,1,2.") from None
    if repeats is not None:
        seed_list = _repeat_seeds(repeats, base_cfg, seeds_given=bool(seeds))
    result = run_benchmark(base_cfg, entries, seed_list, out, progress=not quiet)
    out_console.print(result.markdown, markup=False, highlight=False)
    out_console.print(f"tables written to {out}/results.md and results.csv", markup=False)
    out_console.print(f"report: {out / 'report' / 'index.html'}", markup=False)


@app.command()
@friendly
def tune(
    out: Annotated[
        Path, typer.Option(help="Study folder: trials/N runs, summary.md (rerun to resume).")
    ],
    data: Annotated[
        str, typer.Option(help="ham10000, pneumoniamnist, breastmnist, a folder, .csv or .npz")
    ],
    budget: Annotated[
        str, typer.Option(help="Wall-clock time for this command: 90s, 60m, 2h, 1h30m.")
    ] = "60m",
    methods: Annotated[
        str | None,
        typer.Option(help="Comma-separated methods to search (default: every image method)."),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Validation metric to maximise: mcr, accuracy, macro_f1, auc.")
    ] = "mcr",
    split: Split = None,
    trials: Annotated[
        int | None, typer.Option(help="At most this many trials in the study (all workers).")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes on this machine, sharing the cores.")
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Shared study storage: a database URL (sqlite:///f.db, postgresql://...) or "
            "journal:PATH (default: OUT/study.journal)."
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name in the storage (default: OUT's name).")
    ] = None,
    config: ConfigFile = None,
    sets: Sets = None,
    quiet: NoProgress = False,
) -> None:
    """Search methods and settings within a time budget (Optuna), choose on validation, and
    end with the best trial and the top 3 trials' ensemble scored on test (OUT/summary.md)."""
    from medknn import api

    fixed = _fixed_options(config, sets)
    names = [name.strip() for name in methods.split(",") if name.strip()] if methods else None
    result = api.tune(
        data,
        out,
        budget=budget,
        methods=names,
        metric=metric,
        split=split,
        options=fixed,
        storage=storage,
        study_name=study,
        trials=trials,
        workers=workers,
        progress=not quiet,
    )
    rows = [("best trial", result.best_run, "best")]
    if result.ensemble is not None:
        rows.append(("ensemble", result.ensemble, "ensemble"))
    table = Table(title=escape(f"tune on {data}: chosen on validation {metric}, scored on test"))
    for column in ("model", f"val {metric}", "test Acc", "test MCR", "test macro F1", "test AUC"):
        table.add_column(escape(column))
    for label, path, key in rows:
        scores = result.test[key]
        table.add_row(
            escape(f"{label} ({path})"),
            _number(result.validation[key]),
            *[_number(scores.get(k)) for k in ("accuracy", "mcr", "macro_f1", "auc")],
        )
    out_console.print(table, highlight=False)
    out_console.print(f"summary: {escape(str(result.summary))}", highlight=False)


def _fixed_options(config_file: Path | None, sets: list[str] | None) -> dict[str, Any]:
    """The options a user fixed for every trial (--config file, then --set), checked."""
    from medknn.runs.config import TrainConfig

    values: dict[str, Any] = {}
    if config_file:
        values.update(_read_yaml_mapping(config_file))
    given = _build_config(None, sets).to_dict()  # parsed and checked as for medknn train
    for item in sets or []:
        key = item.partition("=")[0].strip().replace("-", "_")
        values[key] = given[key]
    TrainConfig.from_dict(values, source="options")
    return values


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    from medknn.runs.config import TrainConfig

    TrainConfig.from_yaml(path)  # checked, with its messages
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def _repeat_seeds(repeats: int, base: TrainConfig, *, seeds_given: bool) -> list[int]:
    """A few-shot repeat is a seed: its own draw of training images (and initialisation)."""
    if seeds_given:
        raise ConfigError("Give --seeds or --repeats, not both: --repeats 10 runs seeds 0..9.")
    if base.shots is None:
        raise ConfigError("--repeats repeats the few-shot draw: add --shots N, e.g. --shots 20.")
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: give a whole number >= 1, e.g. --repeats 10.")
    return list(range(repeats))


@app.command()
@friendly
def features(
    data: Annotated[
        str, typer.Option(help="ham10000, pneumoniamnist, breastmnist, a folder, .csv or .npz")
    ],
    out: Annotated[Path, typer.Option(help="The .npz to write; reused if made the same way.")],
    backbone: Annotated[
        str, typer.Option(help="Any timm name, see `medknn backbones`.")
    ] = "tf_efficientnet_lite0",
    image_size: Annotated[int, typer.Option("--image-size", help="Input size in px.")] = 64,
    pretrained: Pretrained = None,
    weights: Weights = None,
    quiet: NoProgress = False,
) -> None:
    """Embed every image once with a frozen backbone: features, labels, ids, groups in an .npz."""
    from medknn.features import extract_features

    feature_set = extract_features(
        data,
        out,
        backbone=backbone,
        image_size=image_size,
        pretrained=pretrained,
        weights=weights,
        progress=not quiet,
    )
    out_console.print(
        f"{len(feature_set)} × {feature_set.dim} features, "
        f"{len(feature_set.class_names)} classes: {out}",
        markup=False,
    )


@app.command("features-benchmark")
@friendly
def features_benchmark(
    features_file: Annotated[
        Path, typer.Argument(help="A feature .npz from `medknn features`, or your own.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the runs and the results table.")],
    methods: Annotated[
        str | None,
        typer.Option(help="Comma-separated; default: the paper's Table 3 methods."),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="Benchmark YAML: base, methods (with their options), seeds."),
    ] = None,
    epochs: Epochs = None,
    config: ConfigFile = None,
    sets: Sets = None,
    quiet: NoProgress = False,
) -> None:
    """kNN-basic, NCA, LMNN and the MLP trained with triplet / CE / deep kNN on feature vectors
    (the Deep kNN paper's Table 3) → results.md/.csv in --out."""
    from medknn.benchmark import load_benchmark_file
    from medknn.features import run_feature_benchmark, table3_methods

    base_values, entries, seed_list = ({}, [], [0])
    if spec is not None:
        base_values, entries, seed_list = load_benchmark_file(spec)
    if methods:
        entries = [name.strip() for name in methods.split(",") if name.strip()]
    if not entries:
        entries = table3_methods()
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {seeds!r}: give whole numbers, e.g. 0,1,2.") from None
    base = _build_config(config, sets, base_values, epochs=epochs)
    result = run_feature_benchmark(
        features_file, entries, seed_list, out, config=base, progress=not quiet
    )
    out_console.print(result.markdown, markup=False, highlight=False)
    out_console.print(f"tables written to {out}/results.md and results.csv", markup=False)


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    quiet: NoProgress = False,
) -> None:
    """Deep kNN on BreastMNIST with ImageNet EfficientNet-Lite0: real data, a few minutes on CPU."""
    from medknn import api
    from medknn.data.catalog import DATASETS, download_root, locate_dataset, looked_in
    from medknn.io import read_json
    from medknn.runs.config import TrainConfig

    cfg = TrainConfig.from_dict(DEMO_CONFIG)
    if locate_dataset(cfg.data) is None:  # a lone clone: fetch it, checksummed, into the cache
        target = download_root() / DATASETS[cfg.data].path
        err_console.print(
            f"demo: {cfg.data} is in no data folder (looked in {looked_in()}); downloading it "
            f"with its MD5 check into {target}",
            markup=False,
        )
        cfg = cfg.replace(download=True)
    err_console.print(
        f"demo: {cfg.method} on {cfg.data}, {cfg.backbone} at {cfg.image_size} px, "
        f"{cfg.epochs} epochs → {out}",
        markup=False,
    )
    run = api.train(cfg, out, progress=not quiet)
    _print_metrics(read_json(run.run_dir.metrics), title="deep kNN on BreastMNIST (test split)")
    first = run.run_dir.path
    out_console.print(
        f"next: medknn evaluate {first} · medknn predict {first} IMAGE.png", markup=False
    )


@app.command("methods")
def list_methods_command() -> None:
    """List the registered methods with their options (method_options; num_positives,
    num_negatives and margin also at the top level: --k, --m, --set margin=X)."""
    from medknn.methods import list_methods

    table = Table("method", "prediction", "summary", "options")
    for spec in list_methods():
        options = "\n".join(option.describe() for option in spec.options) or "none"
        table.add_row(spec.name, spec.prediction, spec.summary, options)
    out_console.print(table)


@app.command("datasets")
def list_datasets_command() -> None:
    """List the named data sets and where they are looked for."""
    from medknn.data import DATASETS

    table = Table("name", "kind", "description")
    for name, info in sorted(DATASETS.items()):
        table.add_row(name, info.kind, info.description)
    out_console.print(table)


@app.command("backbones")
def list_backbones_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'resnet*'.")] = "*",
) -> None:
    """List backbone names (timm models and 'mlp')."""
    from medknn.models import list_backbones

    for name in list_backbones(pattern):
        out_console.print(name, highlight=False)


def _print_metrics(metrics: dict, *, title: str) -> None:
    table = Table(title=escape(title))
    keys = ("accuracy", "mcr", "rs", "macro_f1", "auc", "ece")
    for label in ("Acc", "MCR", f"RS ({metrics.get('rs_class')})", "macro F1", "AUC", "ECE"):
        table.add_column(escape(label), justify="right")
    table.add_column("n", justify="right")
    table.add_row(*[_number(metrics.get(k)) for k in keys], str(metrics["n"]))
    if "plain" in metrics:  # the method's own rule, before the decision rule chosen on val
        table.add_row(*[_number(metrics["plain"].get(k)) for k in keys], "plain rule")
    out_console.print(table, highlight=False)
    per_class = Table("class", "precision", "recall", "F1", "support", title="per class")
    for name, s in metrics["per_class"].items():
        per_class.add_row(
            escape(name),
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['f1']:.3f}",
            str(s["support"]),
        )
    out_console.print(per_class, highlight=False)


@app.command()
@friendly
def repair(
    run: Annotated[Path, typer.Argument(help="A finished run directory.")],
) -> None:
    """Rebuild a run's approximate kNN index from its saved embeddings and record it in the run's
    manifest (a run from before manifests gets one for its files as they are)."""
    from medknn import api

    for line in api.repair(run):
        out_console.print(line, markup=False, highlight=False)


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message}\n"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    warnings.formatwarning = _format_warning  # one line, not the source line that warned
    app(prog_name="medknn")


if __name__ == "__main__":
    sys.exit(main())
