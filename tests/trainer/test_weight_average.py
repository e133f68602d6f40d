"""The EMA of the weights (xraydesk/trainer/ema.py): its arithmetic on a toy network, and
in the full-mode loop: validated, kept in the checkpoints, restored on resume, shipped."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xraydesk.classifier import Classifier
from xraydesk.errors import Cancelled
from xraydesk.imaging import load_xray
from xraydesk.model.saving import load_network
from xraydesk.trainer import TrainConfig, train_model
from xraydesk.trainer import full as full_mode
from xraydesk.trainer.checkpoint import LAST, RunDir
from xraydesk.trainer.ema import WeightAverage, weight_average

LIVE = [0.5, -1.0, 2.0, 0.25, 3.0, -0.75]  # the toy weight after each optimiser step


class Toy(nn.Module):
    """One weight and a batch norm (floating buffers and the integer batch counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm1d(1)


def run_toy(average: WeightAverage, net: Toy, start: int = 0) -> None:
    for step, value in enumerate(LIVE, start=start):
        with torch.no_grad():
            net.w.fill_(value)
            net.bn.running_mean.fill_(10 * value)
            net.bn.num_batches_tracked.fill_(step + 1)
        average.update(net, step)


def test_constant_decay_equals_the_closed_form():
    net, d = Toy(), 0.9
    average = WeightAverage(net, d, warmup=False)
    run_toy(average, net)
    # the first update copies, then avg_k = d avg_(k-1) + (1 - d) p_k:
    # avg_K = d^(K-1) p_1 + sum_(k=2..K) (1 - d) d^(K-k) p_k
    k = len(LIVE)
    expected = d ** (k - 1) * LIVE[0] + sum(
        (1 - d) * d ** (k - i) * p for i, p in enumerate(LIVE, start=1) if i > 1
    )
    assert average.module.w.item() == pytest.approx(expected, rel=1e-6)
    assert average.module.bn.running_mean.item() == pytest.approx(10 * expected, rel=1e-6)
    assert average.module.bn.num_batches_tracked.item() == len(LIVE)  # copied, not averaged
    assert average.updates == len(LIVE)
    assert net.w.item() == LIVE[-1]  # the live network is left alone


def test_warm_up_is_the_plain_mean_until_the_horizon_then_the_decay():
    net = Toy()
    long = WeightAverage(net, 0.99)  # horizon 100 steps: six are simply averaged
    run_toy(long, net)
    assert long.module.w.item() == pytest.approx(float(np.mean(LIVE)), rel=1e-6)
    short = WeightAverage(Toy(), 0.75)  # horizon 4: the mean of the first four, then EMA
    run_toy(short, net)
    expected = float(np.mean(LIVE[:4]))
    for p in LIVE[4:]:
        expected = 0.75 * expected + 0.25 * p
    assert short.decay_at(2) == pytest.approx(2 / 3) and short.decay_at(5) == 0.75
    assert short.module.w.item() == pytest.approx(expected, rel=1e-6)


def test_nothing_is_averaged_before_the_start_step():
    net = Toy()
    average = weight_average(net, 0.9, start=0.5, total_steps=8)
    assert average is not None and average.start_step == 4
    run_toy(average, net)  # steps 0..5: two of them from the start step on
    assert average.updates == 2
    assert average.evaluated(net) is average.module
    fresh = weight_average(Toy(), 0.9, start=0.5, total_steps=8)
    assert fresh.evaluated(net) is net  # before the start the live network is validated
    assert weight_average(net, 0.0, 0.0, 8) is None  # decay 0: off


def test_state_round_trips():
    net = Toy()
    average = WeightAverage(net, 0.9)
    run_toy(average, net)
    other = WeightAverage(Toy(), 0.9)
    other.load_state_dict(average.state_dict())
    assert other.updates == average.updates
    assert other.module.w.item() == average.module.w.item()
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


# -- in the full-mode loop ---------------------------------------------------------------------


def ema_config(subset: Path, name: str) -> TrainConfig:
    return TrainConfig(
        data=[str(subset)], name=name, mode="full", epochs=2, size=32, batch=8,
        base="scratch", ema_decay=0.9,
    )  # fmt: skip


def test_ema_survives_a_cancel_and_resume_and_is_what_ships(subset, no_bundled, monkeypatch):
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
    averages: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    updates: dict[str, int] = {}
    checkpoint_epoch = full_mode._FullRun._checkpoint_epoch

    def record_average(run, epoch, record):  # the average each epoch validated and kept
        state = run.ema.state_dict()
        averages[run.cfg.name, epoch + 1] = {k: v.clone() for k, v in state["weights"].items()}
        updates[run.cfg.name] = state["updates"]
        return checkpoint_epoch(run, epoch, record)

    monkeypatch.setattr(full_mode._FullRun, "_checkpoint_epoch", record_average)
    reference = train_model(ema_config(subset, "ema-ref"))

    cancel = threading.Event()
    with pytest.raises(Cancelled):
        train_model(
            ema_config(subset, "ema-cut"),
            lambda p: p.epoch == 2 and p.step == 1 and cancel.set(),
            cancel,
        )
    saved = RunDir("ema-cut").load(LAST)
    assert (saved["epoch"], saved["step"]) == (1, 1)
    assert saved["ema"]["updates"] == reference.card.training["details"]["steps_per_epoch"] + 1
    resumed = train_model(ema_config(subset, "ema-cut"), resume=True)

    # the resumed run ends with the average of the run that was never stopped
    assert updates["ema-cut"] == updates["ema-ref"] == 2 * saved["ema"]["updates"] - 2
    for name, value in averages["ema-ref", 2].items():
        torch.testing.assert_close(averages["ema-cut", 2][name], value, rtol=0, atol=1e-6)
    for a, b in zip(reference.history, resumed.history, strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)

    # what ships is the best epoch's average, and the card says so
    details = resumed.card.training["details"]
    assert details["weight_average"]["kind"] == "ema" and details["weight_average"]["decay"] == 0.9
    assert resumed.card.training["settings"]["ema_decay"] == 0.9
    assert details["weight_average"]["shipped"] is True  # averaging began at the first step
    best = averages["ema-cut", details["best_epoch"]]
    for name, value in load_network(resumed.card).state_dict().items():
        torch.testing.assert_close(value, best[name].to(value.dtype), rtol=0, atol=1e-6)
    with open(subset, newline="") as fh:
        first = next(csv.DictReader(fh))["path"]
    prediction = Classifier.load(resumed.card_path, device="cpu").predict(load_xray(first))
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
