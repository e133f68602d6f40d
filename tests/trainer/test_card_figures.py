"""Issue 29 #5: per-class sensitivity/specificity and per-pool accuracy from a card's
stored metrics (no Qt)."""

from __future__ import annotations

import pytest

from xraydesk.trainer.card_figures import class_figures, percent, pool_figures, run_options

TEST = {
    "n": 10,
    "classes": ["normal", "pneumonia"],
    # rows true, columns predicted
    "confusion_matrix": [[5, 1], [2, 2]],
    "per_class": {"normal": {"recall": 0.0, "support": 6}, "pneumonia": {"support": 4}},
    "per_source": {"small-pool": {"n": 3, "accuracy": 0.5}, "big-pool": {"n": 7, "accuracy": 0.8}},
}


def test_sensitivity_and_specificity_from_the_confusion_matrix():
    normal, pneumonia = class_figures(TEST, {"normal": "Normal"})
    assert normal.name == "Normal" and normal.support == 6
    assert normal.sensitivity == pytest.approx(5 / 6)
    assert normal.specificity == pytest.approx(2 / 4)  # 4 pneumonia, 2 called normal
    assert pneumonia.sensitivity == pytest.approx(2 / 4)
    assert pneumonia.specificity == pytest.approx(5 / 6)


def test_without_a_matrix_recall_is_used_and_specificity_unknown():
    figures = class_figures({"per_class": {"a": {"recall": 0.9, "support": 3}}})
    assert figures[0].sensitivity == 0.9 and figures[0].specificity is None
    assert percent(None) == "–" and percent(0.9406) == "94.1 %"


def test_pools_largest_first():
    assert [(p.pool, p.n, p.accuracy) for p in pool_figures(TEST)] == [
        ("big-pool", 7, 0.8),
        ("small-pool", 3, 0.5),
    ]
    assert pool_figures({}) == [] and class_figures({}) == []


def test_the_run_options_a_card_records():
    settings = {"ema_decay": 0.998, "ema_start": 0.5, "mixup_alpha": 0.0, "cutmix_alpha": 0.0}
    (line,) = run_options(settings)
    assert line.startswith("Weight averaging: EMA of the weights (decay 0.998) from 50%")
    assert line.endswith("the averaged weights were validated, chosen and shipped.")
    early = run_options(settings, {"weight_average": {"kind": "ema", "shipped": False}})
    assert "the best epoch came before the average began" in early[0]
    assert run_options({}) == []  # a card from before the options: nothing to say
    both = run_options({"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "mix_p": 0.5})
    assert both == [
        "Batch mixing: mixup (alpha 0.2) or CutMix (alpha 1) on 50% of the training batches, "
        "with soft targets."
    ]
