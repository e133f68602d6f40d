"""Full mode: every layer trained, with checkpoints that survive a kill at any moment.

AdamW (no weight decay on batch-norm and bias parameters), warm-up then cosine decay
or a one-cycle schedule, label smoothing, and class weights or class-balanced sampling
for imbalanced data. Mixed precision where the hardware has it (bf16 autocast on CPUs
with AVX-512 BF16/AMX and on CUDA; fp16 with loss scaling on older GPUs).

Determinism: the epoch's order comes from (seed, epoch) and each image's augmentation
from (seed, epoch, position in the epoch). A resumed run therefore sees exactly the
batches the killed run would have seen, from the first step it had not saved.

Checkpoints: ``last.pt`` (model, optimiser, position, history) at the end of every
epoch, every ``checkpoint_minutes`` within long epochs, and on cancel; ``best.pt``
(model only) whenever the validation loss improves. The final model is the best epoch.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from xraydesk.trainer.batches import batch_iterator
from xraydesk.trainer.checkpoint import BEST, LAST
from xraydesk.trainer.config import RunContext, Trained
from xraydesk.trainer.forward import run_module
from xraydesk.trainer.metrics import negative_log_likelihood, softmax
from xraydesk.trainer.progress import SmoothedRate, TrainingCancelled, TrainingError

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


def epoch_order(
    train_idx: list[int],
    labels: np.ndarray,
    epoch: int,
    seed: int,
    imbalance: str,
    sources: np.ndarray | None = None,
) -> list[int]:
    """The epoch's sample order: a seeded shuffle, or a balanced draw with replacement.

    ``sampling`` balances classes. ``groups`` also balances the pools within each class,
    tempered by a square root (pool share of a class proportional to sqrt of its size):
    when one pool holds nearly all of a class (all the children's pneumonia, say), a plain
    class balance lets the model learn "this hospital" for "this disease"; drawing the
    small pools more often takes part of that shortcut away without repeating a few
    hundred images until they are memorised.
    """
    rng = np.random.default_rng([seed, epoch])
    idx = np.asarray(train_idx)
    if imbalance == "sampling":
        counts = np.bincount(labels[idx])
        p = 1.0 / counts[labels[idx]]
        return idx[rng.choice(len(idx), size=len(idx), p=p / p.sum())].tolist()
    if imbalance == "groups":
        if sources is None:
            raise ValueError("balancing pools needs the pool of every sample")
        p = group_balanced_probabilities(labels[idx], sources[idx])
        return idx[rng.choice(len(idx), size=len(idx), p=p)].tolist()
    return idx[rng.permutation(len(idx))].tolist()


def group_balanced_probabilities(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Per-sample draw probabilities: classes equal, pools within a class by sqrt(size)."""
    p = np.zeros(len(labels), dtype=np.float64)
    classes = np.unique(labels)
    for c in classes:
        in_class = labels == c
        pools, counts = np.unique(sources[in_class], return_counts=True)
        shares = np.sqrt(counts) / np.sqrt(counts).sum()
        for pool, count, share in zip(pools, counts, shares, strict=True):
            p[in_class & (sources == pool)] = share / count / len(classes)
    return p / p.sum()


def class_weights(train_labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (K * n_c): each class contributes equally to the loss."""
    counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(train_labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.as_tensor(weights, dtype=torch.float32)


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
    cfg, dev, reporter = ctx.config, ctx.device, ctx.reporter
    net = ctx.network.to(dev.device, memory_format=dev.memory_format)
    labels = ctx.labels
    n_classes = len(ctx.classes)
    train_idx, val_idx = ctx.indices("train"), ctx.indices("val")
    batch = max(2, min(cfg.batch, len(train_idx)))
    steps = len(train_idx) // batch  # drop the ragged last batch: one input shape, steady BN
    total_steps = steps * cfg.epochs
    warmup = min(round(cfg.warmup_epochs * steps), total_steps // 2)
    peak_lr = cfg.learning_rate(ctx.scratch)

    optimizer = torch.optim.AdamW(param_groups(net, cfg.weight_decay), lr=peak_lr)
    weights = class_weights(labels[train_idx], n_classes) if cfg.imbalance == "weights" else None
    sources = np.array([s.source for s in ctx.samples])
    criterion = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(dev.device),
        label_smoothing=cfg.label_smoothing,
    )
    scaler = torch.amp.GradScaler(dev.type) if dev.autocast_dtype == torch.float16 else None

    start_epoch, start_step = 0, 0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    running = (0.0, 0, 0)  # loss sum, correct, seen in the interrupted epoch
    state = ctx.run.load(LAST)
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_step = int(state["epoch"]), int(state["step"])
        history, best = list(state["history"]), state["best"]
        running = tuple(state["running"])  # type: ignore[assignment]
        reporter.emit(
            "training",
            message=f"Resuming at epoch {start_epoch + 1}, step {start_step + 1}",
            epoch=min(start_epoch + 1, cfg.epochs),
            epochs=cfg.epochs,
        )

    def save_last(epoch: int, step: int, run_stats: tuple[float, int, int]) -> None:
        ctx.run.save(
            LAST,
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "history": history,
                "best": best,
                "running": list(run_stats),
            },
        )

    failed: list[tuple[str, str]] = []
    meter = SmoothedRate()
    eval_rate: float | None = None
    last_save = time.monotonic()
    if ctx.finish_early:
        if not ctx.run.has(BEST):
            raise TrainingError("No epoch has finished yet, so there is no best epoch to keep.")
        start_epoch = cfg.epochs  # finish now with the best epoch so far
    for epoch in range(start_epoch, cfg.epochs):
        first = start_step if epoch == start_epoch else 0
        loss_sum, correct, seen = running if (epoch == start_epoch and first > 0) else (0.0, 0, 0)
        order = epoch_order(train_idx, labels, epoch, cfg.seed, cfg.imbalance, sources)
        batches = [order[k * batch : (k + 1) * batch] for k in range(steps)]
        epoch_started = time.perf_counter()
        step = first
        try:
            net.train()
            meter.restart()
            for b in batch_iterator(
                ctx.samples, batches[first:], ctx.prep, cfg.augment, cfg.seed, epoch, first * batch
            ):
                reporter.check_cancel()
                failed.extend((str(p), c) for p, c in b.failed)
                global_step = epoch * steps + step
                lr = peak_lr * lr_factor(global_step, total_steps, warmup, cfg.schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if b.indices:
                    loss, hits = _step(net, b, labels, criterion, optimizer, scaler, dev)
                    loss_sum += loss * len(b.indices)
                    correct += hits
                    seen += len(b.indices)
                step += 1
                rate = meter.update(len(b.indices))
                reporter.emit(
                    "training",
                    message=f"Epoch {epoch + 1} of {cfg.epochs}",
                    done=global_step + 1,
                    total=total_steps,
                    epoch=epoch + 1,
                    epochs=cfg.epochs,
                    step=step,
                    steps=steps,
                    loss=loss_sum / max(seen, 1),
                    acc=correct / max(seen, 1),
                    images_per_s=rate,
                    eta_s=_eta(
                        rate,
                        eval_rate,
                        total_steps - global_step - 1,
                        batch,
                        cfg.epochs - epoch,
                        len(val_idx),
                        len(ctx.indices("test")),
                    ),
                )
                if time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
                    save_last(epoch, step, (loss_sum, correct, seen))
                    last_save = time.monotonic()

            reporter.emit(
                "evaluating",
                message=f"Validating epoch {epoch + 1}",
                epoch=epoch + 1,
                epochs=cfg.epochs,
            )
            val_started = time.perf_counter()
            val_logits, ok = run_module(net, ctx.samples, val_idx, ctx.prep, dev, batch, reporter)
            eval_rate = len(val_idx) / max(time.perf_counter() - val_started, 1e-6)
        except TrainingCancelled:
            save_last(epoch, step, (loss_sum, correct, seen))
            raise TrainingCancelled(
                f"Training was cancelled in epoch {epoch + 1} of {cfg.epochs}; the checkpoint "
                "is kept, resume continues from there."
            ) from None

        y_val = labels[val_idx][ok]
        probs = softmax(val_logits[ok])
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_loss": negative_log_likelihood(probs, y_val),
            "val_acc": float((probs.argmax(axis=1) == y_val).mean()) if len(y_val) else 0.0,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - epoch_started,
            "images_per_s": meter.rate,
        }
        history.append(record)
        if best is None or record["val_loss"] < best["val_loss"]:
            best = {
                "epoch": epoch + 1,
                "val_loss": record["val_loss"],
                "val_acc": record["val_acc"],
            }
            ctx.run.save(BEST, {"model": net.state_dict(), "epoch": epoch + 1})
        save_last(epoch + 1, 0, (0.0, 0, 0))
        last_save = time.monotonic()
        reporter.emit(
            "training",
            message=f"Epoch {epoch + 1}: validation loss {record['val_loss']:.3f}, "
            f"accuracy {record['val_acc']:.1%}",
            done=(epoch + 1) * steps,
            total=total_steps,
            epoch=epoch + 1,
            epochs=cfg.epochs,
            step=steps,
            steps=steps,
            loss=record["train_loss"],
            acc=record["train_acc"],
            images_per_s=meter.rate,
            record=record,
        )

    best_state = ctx.run.load(BEST)
    if best_state is None:
        raise TrainingCancelled("No epoch has finished yet, so there is no model to keep.")
    net.load_state_dict(best_state["model"])
    reporter.emit("evaluating", message=f"Evaluating the best epoch ({best_state['epoch']})")
    val_logits, _ = run_module(net, ctx.samples, val_idx, ctx.prep, dev, batch, reporter)
    test_logits, _ = run_module(
        net, ctx.samples, ctx.indices("test"), ctx.prep, dev, batch, reporter
    )
    return Trained(
        network=net,
        val_logits=val_logits,
        test_logits=test_logits,
        history=history,
        details={
            "best_epoch": int(best_state["epoch"]),
            "epochs_trained": len(history),
            "learning_rate": peak_lr,
            "batch": batch,
            "steps_per_epoch": steps,
            "warmup_steps": warmup,
            "class_weights": None if weights is None else weights.tolist(),
        },
        failed=failed,
    )


def _step(net, batch, labels, criterion, optimizer, scaler, dev) -> tuple[float, int]:
    x = batch.inputs.to(dev.device, non_blocking=True).contiguous(memory_format=dev.memory_format)
    y = torch.as_tensor(labels[batch.indices], device=dev.device)
    with dev.autocast():
        logits = net(x)
    loss = criterion(logits.float(), y)
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
