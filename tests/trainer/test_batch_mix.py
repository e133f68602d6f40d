"""Mixup and CutMix (xraydesk/trainer/mix.py): the mixed pixels and soft targets, seeded
draws, the loss on soft targets, and a tiny full-mode run with both on."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.paths import REPO_ROOT
from xraydesk.classifier import Classifier
from xraydesk.imaging import load_xray
from xraydesk.trainer import TrainConfig, TrainingError, train_model
from xraydesk.trainer.card_figures import run_options
from xraydesk.trainer.mix import BatchMix, batch_mix, cut_box, cutmix, mixup

sys.path.insert(0, str(REPO_ROOT / "training"))

from model_card_md import render_model_card

K = 3


def batch(n: int = 6, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n * size * size, dtype=torch.float32).reshape(n, 1, size, size)
    return x, torch.tensor([k % K for k in range(n)])


def test_mixup_blends_pixels_and_labels_by_the_same_weight():
    x, y = batch()
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    mixed, target = mixup(x, y, 0.3, perm, K)
    torch.testing.assert_close(mixed, 0.3 * x + 0.7 * x[perm])
    torch.testing.assert_close(target.sum(dim=1), torch.ones(6))
    assert target[0].tolist() == pytest.approx([0.3, 0.7, 0.0])  # class 0 with class 1


def test_cutmix_pastes_the_box_and_weighs_labels_by_area():
    x, y = batch()
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    mixed, target = cutmix(x, y, (2, 6, 0, 4), perm, K)  # 4 x 4 of 8 x 8: a quarter
    torch.testing.assert_close(mixed[:, :, 2:6, 0:4], x[perm][:, :, 2:6, 0:4])
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[2:6, 0:4] = False
    torch.testing.assert_close(mixed[:, :, outside], x[:, :, outside])
    torch.testing.assert_close(target.sum(dim=1), torch.ones(6))
    assert target[0].tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert torch.equal(x, batch()[0])  # the input batch is left alone


def test_cut_boxes_stay_inside_and_match_the_weight_away_from_edges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, bottom, left, right = cut_box(rng, float(rng.uniform(0.1, 0.9)), 32, 40)
        assert 0 <= top <= bottom <= 32 and 0 <= left <= right <= 40

    class Centre:  # the box centred in the image
        def integers(self, n: int) -> int:
            return n // 2

    top, bottom, left, right = cut_box(Centre(), 0.75, 32, 32)  # a quarter of the area
    assert (bottom - top, right - left) == (16, 16)


def test_batches_mix_the_same_way_on_every_run_and_differently_per_step():
    mix = BatchMix(mixup_alpha=0.4, cutmix_alpha=1.0, p=1.0, n_classes=K, seed=3)
    x, y = batch(8, 16)
    a = mix.apply(x, y, epoch=2, step=5)
    b = mix.apply(x, y, epoch=2, step=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    outputs = [mix.apply(x, y, epoch=2, step=s)[0] for s in range(8)]
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])
    for step in range(20):
        _, target = mix.apply(x, y, epoch=0, step=step)
        torch.testing.assert_close(target.sum(dim=1), torch.ones(8))
    rarely = BatchMix(mixup_alpha=0.4, cutmix_alpha=0.0, p=0.3, n_classes=K, seed=3)
    plain = [torch.equal(rarely.apply(x, y, 0, s)[0], x) for s in range(40)]
    assert 10 < sum(plain) < 40  # about 70 % of the batches left as they were
    _, target = next(rarely.apply(x, y, 0, s) for s in range(40) if plain[s])
    assert torch.equal(target, nn.functional.one_hot(y, K).float())
    assert batch_mix(0.0, 0.0, 1.0, K, 0) is None  # both alphas 0: off


def test_the_loss_takes_soft_targets_with_class_weights_and_smoothing():
    logits = torch.randn(6, K, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    weights = torch.tensor([0.5, 1.0, 2.0])
    plain = nn.CrossEntropyLoss(label_smoothing=0.05)
    onehot = nn.functional.one_hot(y, K).float()
    assert plain(logits, onehot).item() == pytest.approx(plain(logits, y).item(), rel=1e-6)
    weighted = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    _, soft = mixup(torch.zeros(6, 1, 2, 2), y, 0.6, torch.tensor([1, 2, 0, 4, 5, 3]), K)
    loss = weighted(logits, soft)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None


def test_mixing_settings_are_checked():
    with pytest.raises(TrainingError, match="mixup/CutMix"):
        TrainConfig(data=["x"], name="m", mode="full", mixup_alpha=-1.0).validate()
    with pytest.raises(TrainingError, match="full mode"):
        TrainConfig(data=["x"], name="m", mode="quick", cutmix_alpha=1.0).validate()


def test_a_tiny_run_with_mixup_and_cutmix_ships_a_loadable_card(
    subset: Path, no_bundled: Path, tmp_path: Path, monkeypatch
):
    config = TrainConfig(
        data=[str(subset)], name="mixed", mode="full", epochs=1, size=32, batch=8,
        base="scratch", imbalance="sampling", mixup_alpha=0.4, cutmix_alpha=1.0, mix_p=0.8,
    )  # fmt: skip
    mixed_steps = []
    apply = BatchMix.apply

    def count(self, x, y, epoch, step):
        mixed_steps.append((epoch, step))
        return apply(self, x, y, epoch, step)

    monkeypatch.setattr(BatchMix, "apply", count)
    result = train_model(config)
    training = result.card.training
    assert mixed_steps == [(0, s) for s in range(training["details"]["steps_per_epoch"])]
    assert training["details"]["mix"] == {"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "p": 0.8}
    assert training["details"]["weight_average"] is None
    assert np.isfinite(result.history[0]["train_loss"])
    assert run_options(training["settings"]) == [
        "Batch mixing: mixup (alpha 0.4) or CutMix (alpha 1) on 80% of the training "
        "batches, with soft targets."
    ]
    recipe = json.loads((REPO_ROOT / "training" / "configs" / "chest-3class.json").read_text())
    md = render_model_card(result.card, {**recipe, "pools": [], "tried": []}, tmp_path)
    tried = md.split("### What was tried")[1].split("###")[0]
    assert "- This model's run: Batch mixing: mixup (alpha 0.4) or CutMix" in tried
    with open(subset, newline="") as fh:
        first = next(csv.DictReader(fh))["path"]
    prediction = Classifier.load(result.card_path, device="cpu").predict(load_xray(first))
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
