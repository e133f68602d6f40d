"""Average the weights of several runs of one recipe (a "model soup") and weigh it.

    python training/soup.py RUN1.json RUN2.json RUN3.json --data ../shared/data
    python training/soup.py RUN*.json --data ../shared/data --greedy
    python training/train_bundled.py NAME --soup RUN*.json --data ../shared/data --out OUT

Why: runs of one recipe that started from the same trained backbone (the campaign's
``base_from`` jobs, repeated with ``--run-seed``) end in the same basin, and the average
of their weights is often better than each run and steadier than any one of them
(Wortsman et al. 2022); on this CPU one run of the paediatric recipe moved its
bacterial-vs-viral AUROC by 0.04 between two runs, as much as a recipe change.

The ingredients must be one model: the same classes, preprocessing and split (the same
``split.csv``, so the same validation and test films). Each ingredient and the soup are
weighed on the validation split (what ``--greedy`` decides by: an ingredient joins the
soup, best first, only if the validation accuracy does not fall and the validation loss
does not rise) and reported on the test split, through the app's own classifier. The
soup's batch-norm statistics are the average of the ingredients' (they share a backbone
and a training distribution). This script only weighs; ``train_bundled --soup`` ships
a soup like a trained model (``staged_soup``: temperature, validation figures and
out-of-distribution statistics of the averaged network, then the test figures, the
shortcut audit and the operating rule as after any training).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from operating_rules import split_logits  # noqa: E402

from xraydesk.errors import XRayDeskError  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.model.device import select_device  # noqa: E402
from xraydesk.model.probabilities import softmax  # noqa: E402
from xraydesk.model.saving import load_network, save_model  # noqa: E402
from xraydesk.trainer.dataset import Sample  # noqa: E402
from xraydesk.trainer.metrics import evaluate, fit_temperature  # noqa: E402
from xraydesk.trainer.ood_stats import (  # noqa: E402
    network_features,
    statistics_from_features,
    training_sample,
)
from xraydesk.trainer.split import SPLIT_FILE, read_split, write_split  # noqa: E402
from xraydesk.trainer.trained_card import VALIDATION_KEYS  # noqa: E402
from xraydesk.trust.calibration import calibration_limitations  # noqa: E402
from xraydesk.trust.ood import OOD_KEY, OODStatistics  # noqa: E402

SPLITS = ("val", "test")  # split.csv's names


def split_csv(card_path: Path) -> Path:
    return card_path.with_suffix("") / SPLIT_FILE


def run_label(card_path: Path) -> str:
    """A run's name: its folder (the campaign job's ``out/JOB``), with the job for a card
    kept inside a job's work folder (``JOB/NAME/staged``)."""
    folder = card_path.parent
    if folder.name in ("staged", "handoff") and len(card_path.parents) > 2:
        return f"{card_path.parents[2].name}/{folder.name}"
    return folder.name


def split_key(path: Path) -> tuple[tuple[str, str, str, str], ...] | None:
    """Which film is in which split, whether the CSV holds absolute paths (a staged run)
    or paths relative to the data folder (a shipped one); None when there is no split."""
    if not path.is_file():
        return None
    samples, splits = read_split(path)
    return tuple(
        (s.source, s.label, s.path.name, sp)
        for s, sp in sorted(zip(samples, splits, strict=True), key=lambda x: str(x[0].path))
    )


def check_ingredients(paths: Sequence[Path]) -> list[ModelCard]:
    """The cards, refused (``SystemExit`` naming the card) unless they are one model."""
    if len(paths) < 2:
        raise SystemExit("soup: give two or more model cards")
    try:
        cards = [ModelCard.read(p) for p in paths]
    except XRayDeskError as exc:  # names the card and the cause
        raise SystemExit(f"soup: {exc}") from None
    first, first_split = cards[0], split_key(split_csv(paths[0]))
    if first_split is None:
        raise SystemExit(f"soup: {paths[0]}: no {SPLIT_FILE} beside the card")
    for path, card in zip(paths[1:], cards[1:], strict=True):
        problems = []
        if card.class_ids != first.class_ids:
            problems.append("other classes")
        if card.preprocessing != first.preprocessing:
            problems.append("other preprocessing")
        if card.architecture != first.architecture:
            problems.append("another architecture")
        if split_key(split_csv(path)) != first_split:
            problems.append("another split (other validation and test films)")
        if problems:
            raise SystemExit(f"soup: {path}: {', '.join(problems)} than {paths[0]}")
    return cards


def average_state(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each floating tensor; integer buffers (batch-norm step counts) are the
    first state's."""
    out = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            out[key] = sum(s[key].double() for s in states).div(len(states)).to(value.dtype)
        else:
            out[key] = value.clone()
    return out


def soup_card(cards: Sequence[ModelCard], paths: Sequence[Path], folder: Path) -> Path:
    """The averaged weights written as a card in ``folder`` (float16, as bundled), with the
    first ingredient's split beside it."""
    networks = [load_network(card) for card in cards]
    network = networks[0]
    network.load_state_dict(average_state([n.state_dict() for n in networks]))
    card = ModelCard.read(paths[0])
    card.training = {
        **card.training,
        "soup": {
            "ingredients": [
                {"run": run_label(p), "weights_sha256": c.weights_sha256}
                for p, c in zip(paths, cards, strict=True)
            ],
            "how": "uniform average of the weights and batch-norm statistics",
        },
    }
    card_path = save_model(network, card, folder, half=True)
    (folder / card.name).mkdir(exist_ok=True)
    shutil.copy2(split_csv(paths[0]), split_csv(card_path))
    return card_path


def staged_soup(
    paths: Sequence[Path], data: Path, folder: Path, device: str
) -> tuple[Path, list[dict[str, Any]], Path, float]:
    """The soup as a finished training stage, for ``train_bundled --soup`` to ship like a
    trained one: its card (temperature fitted on the soup's own validation logits, its
    validation figures), the ingredients' stages (the first one's record), the first
    one's history and the ingredients' wall time in all."""
    paths = [Path(p).resolve() for p in paths]
    cards = check_ingredients(paths)
    card_path = soup_card(cards, paths, folder)
    samples, splits = read_split(split_csv(paths[0]))  # absolute paths, as a staged run's
    samples = [
        s if s.path.is_absolute() else dataclasses.replace(s, path=data / s.path) for s in samples
    ]
    write_split(split_csv(card_path), samples, splits)
    logits, labels, _ = split_logits(card_path, split_csv(card_path), "val", None, device)
    card = ModelCard.read(card_path)
    card.temperature = fit_temperature(logits, labels)
    validation = evaluate(logits, labels, card.class_ids, card.temperature, intervals=False)
    card.metrics = {"validation": {k: validation[k] for k in VALIDATION_KEYS}}
    card.operating_rule = None  # the first run's: chosen anew when the soup ships
    stale = {note.split(":")[0] for note in calibration_limitations(cards[0].metrics)}
    card.limitations = [x for x in card.limitations if x.split(":")[0] not in stale]
    card.training.pop(OOD_KEY, None)  # the first run's: the soup's own, or none
    stats = soup_ood_statistics(card, samples, splits, device)
    if stats is not None:
        stats.store(card)
    card.write(card_path)
    stages = list(cards[0].training.get("stages") or [])
    if not stages:
        raise SystemExit(f"soup: {paths[0]}: the card records no stages (ship it first)")
    history = split_csv(paths[0]).parent / "history.json"
    wall = sum(float(c.training.get("wall_time_s", 0.0)) for c in cards)
    return card_path, stages, history, wall


def soup_ood_statistics(
    card: ModelCard, samples: list[Sample], splits: list[str], device: str
) -> OODStatistics | None:
    """The out-of-distribution statistics of the averaged network, as the trainer makes
    them for a trained one (``trainer.ood_stats``): its features, not any run's."""
    index = {cid: k for k, cid in enumerate(card.class_ids)}
    seed = int(card.training.get("settings", {}).get("seed", 0))
    train = training_sample([i for i, sp in enumerate(splits) if sp == "train"], seed)
    val = [i for i, sp in enumerate(splits) if sp == "val"]
    train_f, val_f = network_features(
        load_network(card), samples, (train, val), card.preprocessing, select_device(device), 32
    )
    labels = np.array([index[samples[i].label] for i in train])
    return statistics_from_features(
        train_f, labels, val_f, len(card.class_ids), "for the weight average (training/soup.py)"
    )


def weigh(card_path: Path, data: Path, device: str) -> dict[str, dict[str, Any]]:
    """Validation and test metrics at temperature 1 (the ranking ignores calibration; the
    loss is the raw log-loss) of one card, through the app's classifier."""
    card = ModelCard.read(card_path)
    out = {}
    for split in SPLITS:
        logits, labels, pools = split_logits(card_path, split_csv(card_path), split, data, device)
        metrics = evaluate(logits, labels, card.class_ids, sources=pools, intervals=False)
        probs = softmax(logits, 1.0)
        metrics["log_loss"] = float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12)))
        out[split] = metrics
    return out


def summary(metrics: dict[str, Any]) -> str:
    pairs = metrics.get("pairwise_auc", {})
    pair_text = ", ".join(f"{k} {v:.3f}" for k, v in pairs.items() if v is not None)
    recalls = ", ".join(f"{c} {m['recall']:.3f}" for c, m in metrics["per_class"].items())
    return (
        f"accuracy {metrics['accuracy']:.3f}, loss {metrics['log_loss']:.3f}, "
        f"macro AUROC {metrics['macro_auc']:.3f}; recall {recalls}; AUROC {pair_text}"
    )


def better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Greedy soup's test: validation accuracy not lower and validation loss not higher."""
    return new["accuracy"] >= old["accuracy"] and new["log_loss"] <= old["log_loss"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cards", nargs="+", type=Path, help="model cards of runs of one recipe")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--greedy", action="store_true", help="add runs only while they help")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.cards]
    cards = check_ingredients(paths)
    figures: dict[str, Any] = {"ingredients": {}}
    for path in paths:
        figures["ingredients"][str(path)] = weigh(path, args.data, args.device)
        for split in SPLITS:
            print(f"{run_label(path)} {split}: {summary(figures['ingredients'][str(path)][split])}")
    order = sorted(
        range(len(paths)),
        key=lambda i: (
            -figures["ingredients"][str(paths[i])]["val"]["accuracy"],
            figures["ingredients"][str(paths[i])]["val"]["log_loss"],
        ),
    )
    with tempfile.TemporaryDirectory(prefix="soup-") as tmp:
        chosen = [order[0]] if args.greedy else order
        best = figures["ingredients"][str(paths[order[0]])]
        steps = order[1:] if args.greedy else [None]
        for step, extra in enumerate(steps):
            trial = chosen + ([extra] if extra is not None else [])
            folder = Path(tmp) / f"trial-{step}"
            card_path = soup_card([cards[i] for i in trial], [paths[i] for i in trial], folder)
            result = weigh(card_path, args.data, args.device)
            names = ", ".join(run_label(paths[i]) for i in trial)
            for split in SPLITS:
                print(f"soup of {names} {split}: {summary(result[split])}")
            if extra is None or better(result["val"], best["val"]):
                chosen, best = trial, result
        figures["soup"] = {"ingredients": [str(paths[i]) for i in chosen], **best}
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
