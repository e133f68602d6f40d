"""Full mode: every layer trained, with checkpoints that survive a kill at any moment.

AdamW (no weight decay on batch-norm and bias parameters), warm-up then cosine decay
or a one-cycle schedule, label smoothing, and class weights or class-balanced sampling
for imbalanced data. Mixed precision where the hardware has it (bf16 autocast on CPUs
with AVX-512 BF16/AMX and on CUDA; fp16 with loss scaling on older GPUs).

Determinism: the epoch's order comes from (seed, epoch) and each image's augmentation
from (seed, epoch, position in the epoch), ``seed`` being the config's ``training_seed``
(its ``run_seed``, else the split's seed). A resumed run therefore sees exactly the
batches the killed run would have seen, from the first step it had not saved.

Checkpoints: ``last.pt`` (model, optimiser, position, history, the weight average) at
the end of every epoch, every ``checkpoint_minutes`` within long epochs, and on cancel;
``best.pt`` (model only) whenever the validation loss improves. The final model is the
best epoch. With ``ema_decay`` the model validated, kept in ``best.pt`` and shipped is the
EMA of the weights (trainer/ema.py); ``mixup_alpha``/``cutmix_alpha`` mix each training
batch with soft targets (trainer/mix.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from xraydesk.errors import Cancelled
from xraydesk.progress import Rate
from xraydesk.trainer.batches import batch_iterator
from xraydesk.trainer.checkpoint import BEST, LAST
from xraydesk.trainer.config import RunContext, Trained
from xraydesk.trainer.ema import weight_average
from xraydesk.trainer.epoch_record import EpochRecord
from xraydesk.trainer.forward import run_module
from xraydesk.trainer.metrics import negative_log_likelihood, softmax
from xraydesk.trainer.mix import batch_mix
from xraydesk.trainer.progress import TrainingError, TrainingStage
from xraydesk.trainer.sampling import (  # noqa: F401 (tests import epoch_order here)
    class_weights,
    epoch_order,
    group_balanced_probabilities,
)

GRAD_CLIP = 5.0
EVAL_SPEEDUP = 3.0  # forward-only vs training images/s, until measured


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at a 0-based optimiser step."""
    total = max(total, 1)
    if schedule == "onecycle":
        peak = max(1, int(0.3 * total))
        if step < peak:
            return _cos_between(1 / 25, 1.0, step / peak)
        return _cos_between(1.0, 1e-4, (step - peak) / max(1, total - peak))
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return _cos_between(1.0, 0.01, min(progress, 1.0))


def _cos_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * t))


def param_groups(network: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for param in network.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def train_full(ctx: RunContext) -> Trained:
    """Train every layer for the configured epochs (resuming from ``last.pt`` when it exists)
    and hand back the best epoch's network with its validation and test logits."""
    run = _FullRun(ctx)
    run.resume()
    if ctx.finish_early:
        if not ctx.run.has(BEST):
            raise TrainingError("No epoch has finished yet, so there is no best epoch to keep.")
        run.start_epoch = ctx.config.epochs  # finish now with the best epoch so far
    for epoch in range(run.start_epoch, ctx.config.epochs):
        run.epoch(epoch)
    return run.finish()


@dataclass
class _Plan:
    """What a full run fixes before its first step: batch, steps and learning rates."""

    train_idx: list[int]
    val_idx: list[int]
    n_test: int
    batch: int
    steps: int  # per epoch: the ragged last batch is dropped (one input shape, steady BN)
    total_steps: int
    warmup: int
    peak_lr: float

    @classmethod
    def of(cls, ctx: RunContext) -> _Plan:
        cfg = ctx.config
        train_idx = ctx.indices("train")
        batch = max(2, min(cfg.batch, len(train_idx)))
        steps = len(train_idx) // batch
        total_steps = steps * cfg.epochs
        return cls(
            train_idx=train_idx,
            val_idx=ctx.indices("val"),
            n_test=len(ctx.indices("test")),
            batch=batch,
            steps=steps,
            total_steps=total_steps,
            warmup=min(round(cfg.warmup_epochs * steps), total_steps // 2),
            peak_lr=cfg.learning_rate(ctx.scratch),
        )


@dataclass
class _Running:
    """The interrupted epoch's position and sums: what a checkpoint within an epoch keeps."""

    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0

    @property
    def sums(self) -> tuple[float, int, int]:
        return (self.loss_sum, self.correct, self.seen)


class _FullRun:
    """One full-mode run, in named steps: resume, train an epoch, validate it, checkpoint
    it, and finish with the best epoch. Holds the state a checkpoint must capture."""

    def __init__(self, ctx: RunContext) -> None:
        cfg, dev = ctx.config, ctx.device
        self.ctx, self.cfg, self.dev, self.reporter = ctx, cfg, dev, ctx.reporter
        self.net = ctx.network.to(dev.device, memory_format=dev.memory_format)
        self.labels = ctx.labels
        self.plan = _Plan.of(ctx)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.net, cfg.weight_decay), lr=self.plan.peak_lr
        )
        n_classes = len(ctx.classes)
        train_labels = self.labels[self.plan.train_idx]
        self.weights = (
            class_weights(train_labels, n_classes) if cfg.imbalance == "weights" else None
        )
        self.sources = np.array([s.source for s in ctx.samples])
        self.criterion = nn.CrossEntropyLoss(
            weight=None if self.weights is None else self.weights.to(dev.device),
            label_smoothing=cfg.label_smoothing,
        )
        self.scaler = torch.amp.GradScaler(dev.type) if dev.precision == "fp16" else None
        self.ema = weight_average(self.net, cfg.ema_decay, cfg.ema_start, self.plan.total_steps)
        self.mix = batch_mix(
            cfg.mixup_alpha, cfg.cutmix_alpha, cfg.mix_p, n_classes, cfg.training_seed
        )
        self.start_epoch, self.start_step = 0, 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.running = (0.0, 0, 0)  # loss sum, correct, seen in the interrupted epoch
        self.failed: list[tuple[str, str]] = []
        self.meter = Rate()
        self.eval_rate: float | None = None
        self.last_save = time.monotonic()

    # -- checkpoints ------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from ``last.pt`` when a killed or cancelled run left one."""
        state = self.ctx.run.load(LAST)
        if state is None:
            return
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch, self.start_step = int(state["epoch"]), int(state["step"])
        self.history, self.best = list(state["history"]), state["best"]
        self.running = tuple(state["running"])  # type: ignore[assignment]
        if self.ema is not None:  # a checkpoint without one: the average starts afresh
            self.ema.load_state_dict(state.get("ema") or self.ema.state_dict())
        self.reporter.emit(
            TrainingStage.TRAINING,
            message=f"Resuming at epoch {self.start_epoch + 1}, step {self.start_step + 1}",
            epoch=min(self.start_epoch + 1, self.cfg.epochs),
            epochs=self.cfg.epochs,
        )
        self.last_save = time.monotonic()

    def save_last(self, epoch: int, step: int, run_stats: tuple[float, int, int]) -> None:
        self.ctx.run.save(
            LAST,
            {
                "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "history": self.history,
                "best": self.best,
                "running": list(run_stats),
                "ema": None if self.ema is None else self.ema.state_dict(),
            },
        )

    @property
    def evaluated(self) -> nn.Module:
        """What is validated and kept: the weight average once it has begun, else the net."""
        return self.net if self.ema is None else self.ema.evaluated(self.net)

    # -- one epoch --------------------------------------------------------------------------
    def epoch(self, epoch: int) -> None:
        """Train, validate and checkpoint one epoch; a cancel saves where it stopped."""
        first = self.start_step if epoch == self.start_epoch else 0
        pos = _Running(first)
        if epoch == self.start_epoch and first > 0:
            pos.loss_sum, pos.correct, pos.seen = self.running
        epoch_started = time.perf_counter()
        try:
            self._train_steps(epoch, pos)
            val_logits, ok = self._validate(epoch)
        except Cancelled:
            self.save_last(epoch, pos.step, pos.sums)
            raise Cancelled(
                f"Training was cancelled in epoch {epoch + 1} of {self.cfg.epochs}; the "
                "checkpoint is kept, resume continues from there."
            ) from None
        record = self._record(epoch, pos, val_logits, ok, epoch_started)
        self._checkpoint_epoch(epoch, record)
        self._emit_epoch_end(epoch, record)

    def _train_steps(self, epoch: int, pos: _Running) -> None:
        cfg, plan, ctx = self.cfg, self.plan, self.ctx
        order = epoch_order(
            plan.train_idx, self.labels, epoch, cfg.training_seed, cfg.imbalance, self.sources
        )
        batches = [order[k * plan.batch : (k + 1) * plan.batch] for k in range(plan.steps)]
        first = pos.step
        self.net.train()
        self.meter.restart()
        for b in batch_iterator(
            ctx.samples,
            batches[first:],
            ctx.prep,
            cfg.augment,
            cfg.training_seed,
            epoch,
            first * plan.batch,
        ):
            self.reporter.check_cancel()
            self.failed.extend((str(p), c) for p, c in b.failed)
            global_step = epoch * plan.steps + pos.step
            lr = plan.peak_lr * lr_factor(global_step, plan.total_steps, plan.warmup, cfg.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if b.indices:
                mix = self.mix and partial(self.mix.apply, epoch=epoch, step=pos.step)
                loss, hits = _step(
                    self.net,
                    b,
                    self.labels,
                    self.criterion,
                    self.optimizer,
                    self.scaler,
                    self.dev,
                    mix,
                )
                if self.ema is not None:
                    self.ema.update(self.net, global_step)
                pos.loss_sum += loss * len(b.indices)
                pos.correct += hits
                pos.seen += len(b.indices)
            pos.step += 1
            self._emit_step(epoch, global_step, pos, self.meter.add(len(b.indices)))
            if time.monotonic() - self.last_save > cfg.checkpoint_minutes * 60:
                self.save_last(epoch, pos.step, pos.sums)
                self.last_save = time.monotonic()

    def _emit_step(self, epoch: int, global_step: int, pos: _Running, rate: float | None) -> None:
        cfg, plan = self.cfg, self.plan
        eta = _eta(
            rate,
            self.eval_rate,
            plan.total_steps - global_step - 1,
            plan.batch,
            cfg.epochs - epoch,
            len(plan.val_idx),
            plan.n_test,
        )
        self.reporter.emit(
            TrainingStage.TRAINING,
            message=f"Epoch {epoch + 1} of {cfg.epochs}",
            done=global_step + 1,
            total=plan.total_steps,
            epoch=epoch + 1,
            epochs=cfg.epochs,
            step=pos.step,
            steps=plan.steps,
            loss=pos.loss_sum / max(pos.seen, 1),
            acc=pos.correct / max(pos.seen, 1),
            rate=rate,
            eta=eta,
        )

    def _validate(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation logits (and which rows are finite); measures the forward-only rate."""
        self.reporter.emit(
            TrainingStage.EVALUATING,
            message=f"Validating epoch {epoch + 1}",
            epoch=epoch + 1,
            epochs=self.cfg.epochs,
        )
        plan, ctx = self.plan, self.ctx
        started = time.perf_counter()
        val_logits, ok = run_module(
            self.evaluated, ctx.samples, plan.val_idx, ctx.prep, self.dev, plan.batch, self.reporter
        )
        self.eval_rate = len(plan.val_idx) / max(time.perf_counter() - started, 1e-6)
        return val_logits, ok

    def _record(
        self,
        epoch: int,
        pos: _Running,
        val_logits: np.ndarray,
        ok: np.ndarray,
        epoch_started: float,
    ) -> EpochRecord:
        y_val = self.labels[self.plan.val_idx][ok]
        probs = softmax(val_logits[ok])
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=pos.loss_sum / max(pos.seen, 1),
            train_acc=pos.correct / max(pos.seen, 1),
            val_loss=negative_log_likelihood(probs, y_val),
            val_acc=float((probs.argmax(axis=1) == y_val).mean()) if len(y_val) else 0.0,
            lr=self.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - epoch_started,
            images_per_s=self.meter.rate,
        )
        self.history.append(record.to_dict())  # dicts: what last.pt and history.json hold
        return record

    def _checkpoint_epoch(self, epoch: int, record: EpochRecord) -> None:
        """``best.pt`` when the validation loss improved, ``last.pt`` at the epoch's end."""
        if self.best is None or record.val_loss < self.best["val_loss"]:
            self.best = {
                "epoch": epoch + 1,
                "val_loss": record.val_loss,
                "val_acc": record.val_acc,
            }
            kept = self.evaluated  # the weight average once it has begun
            averaged = kept is not self.net
            self.ctx.run.save(
                BEST, {"model": kept.state_dict(), "epoch": epoch + 1, "averaged": averaged}
            )
        self.save_last(epoch + 1, 0, (0.0, 0, 0))
        self.last_save = time.monotonic()

    def _emit_epoch_end(self, epoch: int, record: EpochRecord) -> None:
        steps = self.plan.steps
        self.reporter.emit(
            TrainingStage.TRAINING,
            message=f"Epoch {epoch + 1}: validation loss {record.val_loss:.3f}, "
            f"accuracy {record.val_acc:.1%}",
            done=(epoch + 1) * steps,
            total=self.plan.total_steps,
            epoch=epoch + 1,
            epochs=self.cfg.epochs,
            step=steps,
            steps=steps,
            loss=record.train_loss,
            acc=record.train_acc,
            rate=self.meter.rate,
            record=record.to_dict(),
        )

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> Trained:
        """Reload the best epoch and compute its validation and test logits."""
        best_state = self.ctx.run.load(BEST)
        if best_state is None:
            raise Cancelled("No epoch has finished yet, so there is no model to keep.")
        ctx, plan, net = self.ctx, self.plan, self.net
        net.load_state_dict(best_state["model"])
        self.reporter.emit(
            TrainingStage.EVALUATING, message=f"Evaluating the best epoch ({best_state['epoch']})"
        )

        def logits(indices: list[int]) -> np.ndarray:
            out, _ = run_module(
                net, ctx.samples, indices, ctx.prep, self.dev, plan.batch, self.reporter
            )
            return out

        val_logits = logits(plan.val_idx)
        test_logits = logits(ctx.indices("test"))
        return Trained(
            network=net,
            val_logits=val_logits,
            test_logits=test_logits,
            history=self.history,
            details={
                "best_epoch": int(best_state["epoch"]),
                "epochs_trained": len(self.history),
                "learning_rate": plan.peak_lr,
                "batch": plan.batch,
                "steps_per_epoch": plan.steps,
                "warmup_steps": plan.warmup,
                "class_weights": None if self.weights is None else self.weights.tolist(),
                "weight_average": None
                if self.ema is None
                else {**self.ema.details(), "shipped": bool(best_state.get("averaged"))},
                "mix": None if self.mix is None else self.mix.details(),
            },
            failed=self.failed,
        )


def _step(net, batch, labels, criterion, optimizer, scaler, dev, mix=None) -> tuple[float, int]:
    """One optimiser step; ``mix(x, y)`` gives mixed inputs and soft targets (the hits
    still count each image's own label)."""
    x = batch.inputs.to(dev.device, non_blocking=True).contiguous(memory_format=dev.memory_format)
    y = torch.as_tensor(labels[batch.indices], device=dev.device)
    x, target = mix(x, y) if mix else (x, y)
    with dev.autocast():
        logits = net(x)
    loss = criterion(logits.float(), target)
    if not torch.isfinite(loss):
        raise TrainingError(
            "Training diverged (the loss is not a finite number); lower the learning rate. "
            "The best checkpoint so far is kept."
        )
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        optimizer.step()
    hits = int((logits.argmax(dim=1) == y).sum())
    return float(loss.detach()), hits


def _eta(
    rate: float | None,
    eval_rate: float | None,
    steps_left: int,
    batch: int,
    epochs_left: int,
    n_val: int,
    n_test: int,
) -> float | None:
    if not rate:
        return None
    forward = eval_rate or rate * EVAL_SPEEDUP
    return steps_left * batch / rate + (epochs_left * n_val + n_val + n_test) / forward
