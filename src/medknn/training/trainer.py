"""One training loop for every method: progress, validation, best checkpoint, resume, NaN guard;
weight EMA, early stopping and linear probing before fine-tuning."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.utils.data import DataLoader

from medknn.errors import TrainingError
from medknn.io import atomic_save_tensors, atomic_write_json
from medknn.methods.objectives import Objective
from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir
from medknn.training.checkpoint import load_checkpoint, save_checkpoint
from medknn.training.distributed import DistributedContext
from medknn.training.ema import WeightAverage
from medknn.training.optim import LearningRateSchedule, build_optimizer

Validator = Callable[[nn.Module], dict[str, float]]
# Called after each epoch's checkpoint is saved with (epoch, record); it may raise to stop
# training there (e.g. a pruned hyper-parameter trial): the run stays resumable.
EpochHook = Callable[[int, dict[str, float]], None]
SELECTION_METRIC = "mcr"


class Trainer:
    """Trains ``network`` with ``objective`` on batches from ``loader``.

    ``validate(network) -> metrics`` is injected by the caller (the layers that know how to
    predict); the checkpoint with the best validation MCR becomes ``model.safetensors``. Every
    epoch ends with an atomic ``checkpoints/last.safetensors``, from which ``fit`` resumes.

    With ``config.ema_decay`` an exponential moving average of the weights is validated beside
    the raw weights, and whichever scores better at an epoch is what that epoch offers as the
    best model. ``config.patience`` stops training after that many validations without a new
    best; ``config.lp_epochs`` trains with the backbone frozen first (linear probing, then
    fine-tuning: LP-FT). ``pretrained_backbone`` lets the backbone learn at
    ``lr * backbone_lr_scale``.

    ``on_epoch_end(epoch, record)``, when given, is called on the main process after each
    epoch's record and checkpoint are written (a hyper-parameter search reports the validation
    metric from there and may raise to stop the run; rerunning resumes it).

    With ``distributed`` (one process of a torchrun job, ``loader`` yielding this rank's share of
    each global batch), the network trains in DistributedDataParallel and the objective sees the
    global batch; rank 0 alone validates, logs and writes the run directory.
    """

    def __init__(
        self,
        network: nn.Module,
        objective: Objective,
        config: TrainConfig,
        run_dir: RunDir,
        *,
        device: torch.device,
        validate: Validator | None = None,
        progress: bool = True,
        console: Console | None = None,
        distributed: DistributedContext | None = None,
        pretrained_backbone: bool = False,
        on_epoch_end: EpochHook | None = None,
    ) -> None:
        self.network = network.to(device)
        self.backbone_always_frozen = bool(getattr(network, "backbone_frozen", False))
        self.objective = objective.to(device)
        self.distributed = distributed
        self.is_main = distributed is None or distributed.is_main
        self.training_network = self.network
        if distributed is not None:
            unused_classifier = getattr(network, "classifier", None) is not None and not getattr(
                objective, "needs_classifier", False
            )
            self.training_network = distributed.wrap(
                self.network, find_unused_parameters=unused_classifier
            )
        self.config = config
        self.run_dir = run_dir.create()
        self.device = device
        self.validate = validate
        self.on_epoch_end = on_epoch_end
        self.progress = progress
        self.console = console or Console(stderr=True)
        self.optimizer = build_optimizer(
            config, self.network, pretrained_backbone=pretrained_backbone
        )
        self.schedule: LearningRateSchedule | None = None  # built when the epoch length is known
        self.ema = WeightAverage(self.network, config.ema_decay) if config.ema_decay else None
        self.history: list[dict[str, float]] = []
        self.restored_seconds = 0.0  # training time of epochs resumed from a checkpoint
        self.best_score = -math.inf
        self.start_epoch = 0
        self.updates = 0  # optimiser steps so far, over all epochs
        self.validations_since_best = 0
        self.stopped_after: int | None = None  # the epoch after which early stopping ended it

    def fit(self, loader: DataLoader) -> list[dict[str, float]]:
        self.config = self.config.replace(epochs=self.config.resolved_epochs(len(loader)))
        self.schedule = LearningRateSchedule(self.config, self.optimizer, self._batches(loader))
        self._resume_if_possible()
        for epoch in range(self.start_epoch, self.config.epochs):
            if self.stopped_after is not None:
                break
            record = self._train_one_epoch(loader, epoch)
            if (
                self.validate is not None
                and self.is_main
                and (
                    (epoch + 1) % self.config.validate_every == 0 or epoch + 1 == self.config.epochs
                )
            ):
                record.update(self._validated(self.network))
                if self.ema is not None:
                    averaged = self._validated(self.ema.module)
                    record.update({f"ema_{k}": v for k, v in averaged.items()})
            self.schedule.after_epoch()
            self._end_epoch(epoch, record)
            if self.on_epoch_end is not None and self.is_main:
                self.on_epoch_end(epoch, record)
        if not self.is_main:
            return self.history
        if not self.run_dir.model.exists():  # zero epochs, or resumed after the last one
            atomic_save_tensors(self.network.state_dict(), self.run_dir.model)
        atomic_write_json(self.run_dir.history, self.history)
        return self.history

    def _validated(self, network: nn.Module) -> dict[str, float]:
        network.eval()
        with torch.no_grad():
            scores = self.validate(network)
        # "train_*" scores describe the training set; the rest the validation set.
        return {_score_name(k): v for k, v in scores.items()}

    def _batches(self, loader: DataLoader) -> int:
        total = len(loader)
        if self.config.max_batches_per_epoch is not None:
            total = min(total, self.config.max_batches_per_epoch)
        return total

    def _set_backbone_frozen_for(self, epoch: int) -> None:
        """Linear probing first: the backbone is frozen during the first ``lp_epochs`` epochs
        (a method that always freezes it, such as the linear probe, keeps it frozen)."""
        if self.config.lp_epochs == 0 or self.backbone_always_frozen:
            return
        frozen = epoch < self.config.lp_epochs
        self.network.backbone.requires_grad_(not frozen)
        self.network.backbone_frozen = frozen

    def _train_one_epoch(self, loader: DataLoader, epoch: int) -> dict[str, float]:
        self._set_backbone_frozen_for(epoch)
        self.network.train()
        if self.distributed is not None:
            self.distributed.seed_epoch(self.config.seed, epoch)
        batch_sampler = loader.batch_sampler
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(epoch)
        if hasattr(self.objective, "set_epoch"):  # schedules such as deferred re-weighting
            self.objective.set_epoch(epoch)
        total_batches = self._batches(loader)
        loss_sum, images, batches, stat_sums = 0.0, 0, 0, {}
        started = time.perf_counter()
        # E.g. re-embedding the training set into a bank: part of the epoch's time.
        if hasattr(self.objective, "on_epoch_start"):
            self.objective.on_epoch_start(self.network)
        with self._progress_bar() as bar:
            task = bar.add_task(
                f"epoch {epoch + 1}/{self.config.epochs}", total=total_batches, loss=0.0, rate=0.0
            )
            for step, (inputs, labels, table_indices) in enumerate(loader):
                if step >= total_batches:
                    break
                inputs, labels, table_indices = stack_views(
                    inputs.to(self.device), labels.to(self.device), table_indices.to(self.device)
                )
                with self._autocast():
                    embeddings, logits = self.training_network(inputs)
                # The objective (and its distances, logs, softmax) in float32 either way.
                embeddings = embeddings.float()
                logits = logits.float() if logits is not None else None
                if self.distributed is not None:
                    embeddings, logits, labels = self._global_batch(embeddings, logits, labels)
                loss, stats = self.objective(
                    embeddings, logits, labels, **self._table_rows(table_indices)
                )
                if not torch.isfinite(loss):
                    self._stop_on_nan(epoch, step)
                self.optimizer.zero_grad(set_to_none=True)
                self._backward(loss)
                if self.config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
                self.optimizer.step()
                self.updates += 1
                self.schedule.after_update(self.updates)
                if self.ema is not None:
                    self.ema.update(self.network, self.updates)
                loss_sum += loss.item() * len(labels)
                images += len(labels)
                batches += 1
                for name, value in stats.items():
                    stat_sums[name] = stat_sums.get(name, 0.0) + value
                rate = images / (time.perf_counter() - started)
                bar.update(task, advance=1, loss=loss_sum / images, rate=rate)
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(images, 1),
            "lr": self.optimizer.param_groups[-1]["lr"],  # the new layers' rate
            "seconds": seconds,
            "images_per_second": images / seconds if seconds > 0 else 0.0,
        }
        # Counters ("num_*", e.g. skipped anchors) are epoch totals; other terms, batch means.
        record.update(
            {k: v if k.startswith("num_") else v / max(batches, 1) for k, v in stat_sums.items()}
        )
        return record

    def _table_rows(self, table_indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """``table_indices=`` (of the global batch under DDP) for an objective that asks for
        the batch images' table rows, e.g. to find them in an embedding bank; else nothing."""
        if not getattr(self.objective, "needs_table_indices", False):
            return {}
        if self.distributed is not None:
            table_indices = self.distributed.gather(table_indices)
        return {"table_indices": table_indices}

    def _global_batch(
        self, embeddings: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        gather = self.distributed.gather
        return gather(embeddings), None if logits is None else gather(logits), gather(labels)

    def _autocast(self) -> AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _backward(self, loss: torch.Tensor) -> None:
        if self.distributed is None:
            loss.backward()
            return
        # Each rank's gradient is the global loss's through its own rows only: the ranks' sum is
        # the single-process gradient, and DDP averages, so scale by the number of ranks.
        with self.distributed.failures("averaging the gradients"):
            (loss * self.distributed.world_size).backward()

    def _end_epoch(self, epoch: int, record: dict[str, float]) -> None:
        self.history.append(record)
        if not self.is_main:
            return
        score, weights = self._epoch_score(record)
        # Without a validation set the final weights are kept (the average's, with EMA); with
        # one, only a validated epoch that beats the best so far replaces model.safetensors.
        if self.validate is None or (score is not None and score > self.best_score):
            self.best_score = score if score is not None else self.best_score
            record["best"] = 1.0
            record["best_is_ema"] = float(weights is not self.network)
            self.validations_since_best = 0
            atomic_save_tensors(weights.state_dict(), self.run_dir.model)
        elif score is not None:
            self.validations_since_best += 1
            patience = self.config.patience
            if patience is not None and self.validations_since_best >= patience:
                self.stopped_after = epoch + 1
                record["stopped_early"] = 1.0
        state = {
            "epoch": epoch + 1,
            "updates": self.updates,
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "rng": torch.get_rng_state(),
            "history": self.history,
            "best_score": None if math.isinf(self.best_score) else self.best_score,
            "validations_since_best": self.validations_since_best,
            "stopped_after": self.stopped_after,
        }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        save_checkpoint(self.run_dir.last_checkpoint, state)
        atomic_write_json(self.run_dir.history, self.history)
        self._log(_describe(record))
        if self.stopped_after is not None:
            self._log(
                f"stopping early after epoch {epoch + 1}: no better validation "
                f"{SELECTION_METRIC} in {self.validations_since_best} validations "
                f"(patience {self.config.patience}); the best was {self.best_score:.4f}"
            )

    def _epoch_score(self, record: dict[str, float]) -> tuple[float | None, nn.Module]:
        """The epoch's validation score and the weights that reached it: the average's only
        when it validated better than the raw weights (unvalidated, the raw ones are kept)."""
        raw = record.get(f"val_{SELECTION_METRIC}")
        averaged = record.get(f"ema_val_{SELECTION_METRIC}")
        if self.ema is not None and raw is not None and averaged is not None and averaged > raw:
            return averaged, self.ema.module
        return raw, self.network

    def _resume_if_possible(self) -> None:
        if not self.run_dir.last_checkpoint.exists():
            return
        state = load_checkpoint(self.run_dir.last_checkpoint)
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and "ema" in state:
            self.ema.module.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"])
        self.history = list(state["history"])
        self.restored_seconds = float(sum(r.get("seconds", 0.0) for r in self.history))
        best = state["best_score"]
        self.best_score = -math.inf if best is None else best
        self.start_epoch = int(state["epoch"])
        self.updates = int(state.get("updates", 0))
        self.schedule.resume(state["scheduler"], self.updates)
        self.validations_since_best = int(state.get("validations_since_best", 0))
        self.stopped_after = state.get("stopped_after")
        if self.start_epoch < self.config.epochs and self.stopped_after is None:
            self._log(
                f"resuming after epoch {self.start_epoch} from {self.run_dir.last_checkpoint}"
            )

    def _stop_on_nan(self, epoch: int, step: int) -> None:
        kept = (
            f"the checkpoint of epoch {epoch} is kept in {self.run_dir.last_checkpoint}"
            if self.run_dir.last_checkpoint.exists()
            else "no checkpoint had been written yet"
        )
        message = (
            f"The loss became NaN/inf at epoch {epoch + 1}, step {step + 1}; training stopped and "
            f"{kept}. Start again with a lower learning rate (--lr) and a new --out."
        )
        self._log(message)
        raise TrainingError(message)

    def _log(self, line: str) -> None:
        if not self.is_main:
            return
        stamp = datetime.now().isoformat(timespec="seconds")
        with open(self.run_dir.log, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")
        if self.progress:
            self.console.print(line, markup=False)  # paths in it are the user's, not markup

    def _progress_bar(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.0f} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not (self.progress and self.is_main),
            transient=True,
        )


def stack_views(inputs: torch.Tensor, *per_image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """B×V×C×H×W batches (V augmented views of each image, e.g. for SupCon) become (V·B)×C×H×W,
    view-major, with each per-image tensor (labels, table indices) repeated to match; ordinary
    B×C×H×W batches pass unchanged."""
    if inputs.ndim != 5:
        return (inputs, *per_image)
    views = inputs.shape[1]
    return (inputs.transpose(0, 1).flatten(0, 1), *(values.repeat(views) for values in per_image))


def _score_name(key: str) -> str:
    return key if key.startswith("train_") else f"val_{key}"


def _describe(record: dict[str, float]) -> str:
    parts = [f"epoch {int(record['epoch'])}"]
    for key, value in record.items():
        if key in ("epoch", "best"):
            continue
        parts.append(f"{key} {value:.4g}")
    if record.get("best"):
        parts.append("(best)")
    return " ".join(parts)
