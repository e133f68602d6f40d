"""Issue 27's targets through the whole verdict, on sources the model never saw.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_verdict_held_out.py --data ../shared/data
        [--limit 600] [--in-source 300] [--held-out FOLDER ...] [--seed 0]

``bench_indeterminate`` judges the operating rule from the held-out logits alone; the
issue's targets count "results shown without warning and not indeterminate", which
also depend on the input gate, the out-of-distribution score, the estimated age group
against the card's population, the mirrored check and the attention check. Those need
the images, so this script classifies them again, through the batch pipeline every front
door uses (``batch.run.classify_paths``, hence ``trust.verdict``), with each
leave-one-source-out model of the training campaign (``held-out/POOL/NAME-without-POOL``
folders, read only) on a seeded, label-stratified sample of the pool it never saw, and
on a sample of its own test split (the in-source row).

A fold's card is read as trained, with one change made here in memory: its population is
stated from the pools it was trained on (the campaign's fold cards leave it unstated; the
shipped card states the recipe's), so that a model trained on adults alone is judged as a
model that says so. ``POOL_AGES`` gives each pool's ages from ../shared/data/README.md.

Per fold and source, three rows (answered share, accuracy of answered, share of all
images answered wrongly at p >= 0.9):

- before: every image answered with its top class;
- checks: the verdict's warnings withhold (any warning; the operating rule's own
  ``indeterminate`` not counted);
- checks + rule: what a front door shows as an answer: a class named and no warning.

Targets (issue 27): on held-out sources, checks + rule accuracy >= 0.92 at >= 60 %
answered, wrong at p >= 0.9 <= 2 %; in-source test films withheld or flagged <= 15 %.
``--signals N`` also ranks the wrong answers on N held-out films by each per-image signal
the verdict has (a low top probability, a high OOD score, a low share of the heat map in
the lung fields): the AUROC says whether any threshold on it could catch them.
Runs the exported runtime the app picks, on one thread by default (a training shares
the machine); its data folder is a temporary one. The CPU is named with the output.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402

CAMPAIGN = Path.home() / ".cache" / "xraydesk" / "campaign" / "work"
# Each pool's ages (../shared/data/README.md): a fold's population is its pools' union.
POOL_AGES = {
    "kermany-pediatric": (1.0, 5.0),
    "covid19-radiography": (18.0, None),
    "ozturk-nih": (18.0, None),
    "covid-cxnet": (18.0, None),
}
LABEL_MAP = {"bacterial": "pneumonia", "viral": "pneumonia"}  # the 3-class recipe's


@dataclass(frozen=True)
class Film:
    path: Path
    label: str  # card class id


@dataclass(frozen=True)
class Outcome:
    """One film's verdict as the rows below count it."""

    label: str
    top: str | None  # the top class, shown or withheld (None: an error row)
    p_top: float
    shown: bool  # a class named and no warning: what a front door presents as an answer
    checks_clear: bool  # no warning but the operating rule's own ``indeterminate``
    codes: tuple[str, ...]


def fold_folders(given: Sequence[Path]) -> list[Path]:
    """``held-out/POOL`` folders holding a fold model (``NAME-without-POOL.json``)."""
    found = list(given) or sorted(CAMPAIGN.glob("*/*/held-out/*"))
    return [f for f in found if list(f.glob("*-without-*.json"))]


def stratified(films: list[Film], limit: int, seed: int) -> list[Film]:
    """At most ``limit`` films, each label drawn in proportion, seeded."""
    if len(films) <= limit:
        return films
    rng = np.random.default_rng(seed)
    labels = sorted({f.label for f in films})
    chosen: list[Film] = []
    for label in labels:
        of_label = [f for f in films if f.label == label]
        take = max(1, round(limit * len(of_label) / len(films)))
        picks = rng.choice(len(of_label), min(take, len(of_label)), replace=False)
        chosen.extend(of_label[i] for i in sorted(picks))
    return chosen


def pool_films(data: Path, pool: str) -> list[Film]:
    with open(data / pool / "manifest.csv", newline="", encoding="utf-8") as handle:
        return [
            Film(data / pool / row["path"], LABEL_MAP.get(row["label"], row["label"]))
            for row in csv.DictReader(handle)
        ]


def test_films(split_csv: Path, data: Path) -> list[Film]:
    """The fold's own test split, re-rooted at ``data`` (the split names absolute paths)."""
    films = []
    with open(split_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["split"] != "test":
                continue
            path = Path(row["path"])
            parts = path.parts
            if row["source"] in parts:
                path = data.joinpath(*parts[parts.index(row["source"]) :])
            films.append(Film(path, row["label"]))
    return films


def fold_card(card_path: Path, trained_on: Sequence[str]):
    from xraydesk.model.card import AgeRange, ModelCard, Population

    card = ModelCard.read(card_path)
    ranges = sorted({POOL_AGES[p] for p in trained_on}, key=lambda r: r[0])
    card.population = Population(
        tuple(AgeRange(low, high) for low, high in ranges),
        f"stated here from the pools trained on: {', '.join(trained_on)}",
    )
    return card


def classify(classifier, films: list[Film]) -> list[Outcome]:
    from xraydesk.batch.run import classify_paths
    from xraydesk.trust.codes import INDETERMINATE

    outcomes = []
    for film, row in zip(films, classify_paths([f.path for f in films], classifier), strict=True):
        codes = tuple(w.code for w in row.warnings)
        probs = row.probabilities or {}
        top = max(probs, key=probs.__getitem__) if probs and row.error is None else None
        outcomes.append(
            Outcome(
                label=film.label,
                top=top,
                p_top=probs.get(top, 0.0) if top else 0.0,
                shown=row.prediction is not None and not codes,
                checks_clear=top is not None and not (set(codes) - {INDETERMINATE}),
                codes=codes,
            )
        )
    return outcomes


def row_figures(outcomes: list[Outcome], answered: list[bool]) -> tuple[float, float | None, float]:
    """(share answered, accuracy of the answered, share of all answered wrongly at p >= 0.9)."""
    n = len(outcomes)
    picked = [o for o, a in zip(outcomes, answered, strict=True) if a]
    right = sum(o.top == o.label for o in picked)
    wrong_confident = sum(o.top != o.label and o.p_top >= 0.9 for o in picked)
    accuracy = right / len(picked) if picked else None
    return len(picked) / n if n else 0.0, accuracy, wrong_confident / n if n else 0.0


def cells(figures: tuple[float, float | None, float]) -> str:
    share, accuracy, wrong = figures
    acc = "-" if accuracy is None else f"{accuracy:.3f}"
    return f"{share:8.3f} {acc:>8} {wrong:8.3f}"


def code_counts(outcomes: list[Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        for code in set(o.codes):
            counts[code] = counts.get(code, 0) + 1
    n = len(outcomes)
    return ", ".join(f"{c} {k / n:.0%}" for c, k in sorted(counts.items(), key=lambda x: -x[1]))


def report(name: str, outcomes: list[Outcome]) -> list[str]:
    before = row_figures(outcomes, [o.top is not None for o in outcomes])
    checks = row_figures(outcomes, [o.checks_clear for o in outcomes])
    shown = row_figures(outcomes, [o.shown for o in outcomes])
    return [
        f"{name:34.34s} {len(outcomes):5d} | {cells(before)} | {cells(checks)} | {cells(shown)}",
        f"{'':34s}       warnings: {code_counts(outcomes) or 'none'}",
    ]


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties half: how well a score ranks wrong
    answers (positive) above right ones; 0.5 is chance."""
    if not positive or not negative:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def signals(classifier, films: list[Film]) -> str:
    """How well each per-image signal the verdict has ranks the wrong answers above the
    right ones (AUROC): a low top probability, a high OOD score, a low share of the
    heat map in the lung fields. One film at a time, through ``TrustCheck``."""
    from xraydesk.imaging import load_xray
    from xraydesk.trust.attention import lung_shares
    from xraydesk.trust.check import TrustCheck

    check = TrustCheck.of(classifier)
    ids = classifier.class_ids
    scores: dict[str, dict[bool, list[float]]] = {
        k: {True: [], False: []} for k in ("low top probability", "high OOD", "low lung share")
    }
    for film in films:
        xray = load_xray(film.path)
        result = check.classify(xray, activations=True)
        probs = np.array([result.prediction.probabilities[c] for c in ids])
        wrong = ids[int(probs.argmax())] != film.label
        share = lung_shares(classifier, result.forward.activations, probs[None], [xray.shape])
        scores["low top probability"][wrong].append(-float(probs.max()))
        scores["low lung share"][wrong].append(-float(share[0]))
        if result.ood_score is not None:
            scores["high OOD"][wrong].append(result.ood_score)
    cells = []
    for name, split in scores.items():
        value = auroc(split[True], split[False])
        cells.append(f"{name} {'-' if value is None else f'{value:.3f}'}")
    wrong = len(scores["low top probability"][True])
    return f"wrong {wrong} of {len(films)}; AUROC as error detectors: " + ", ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--held-out", type=Path, action="append", default=[])
    parser.add_argument("--limit", type=int, default=600, help="held-out films per fold")
    parser.add_argument("--in-source", type=int, default=300, help="own test films per fold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--signals",
        type=int,
        default=0,
        metavar="N",
        help="also rank wrong answers by each per-image signal on N held-out films (AUROC)",
    )
    args = parser.parse_args(argv)
    data = args.data.resolve()
    folds = fold_folders(args.held_out)
    if not folds:
        print("no leave-one-source-out model found under", CAMPAIGN)
        return 1
    os.environ["XRAYDESK_DATA_DIR"] = tempfile.mkdtemp(prefix="xraydesk-bench-verdict-")
    from xraydesk.classifier import Classifier

    print(f"CPU: {cpu_name()}; load {load_average()}; threads {args.threads}")
    columns = f"{'answered':>8} {'accuracy':>8} {'wrong.9':>8}"
    print(f"{'':40s} | {'before':26s} | {'checks':26s} | {'checks + rule (shown)':26s}")
    print(f"{'films':34s} {'n':>5} | {columns} | {columns} | {columns}")
    for folder in folds:
        pool = folder.name
        card_path = next(folder.glob("*-without-*.json"))
        trained_on = [p for p in POOL_AGES if p != pool]
        card = fold_card(card_path, trained_on)
        started = time.perf_counter()
        classifier = Classifier.load(card, device="cpu", threads=args.threads)
        held = stratified(pool_films(data, pool), args.limit, args.seed)
        split = next(folder.glob("*-without-*/split.csv"))
        own = stratified(test_films(split, data), args.in_source, args.seed)
        lines = report(f"{pool} held out", classify(classifier, held))
        lines += report("  its model, own test split", classify(classifier, own))
        print("\n".join(lines))
        if args.signals:
            sample = stratified(held, args.signals, args.seed)
            print(f"{'':34s}       held out: {signals(classifier, sample)}")
        rule = card.operating_rule
        print(
            f"{'':34s}       rule: {rule.line if rule else 'none'}; runtime "
            f"{classifier.backend.runtime}; {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    print(
        "answered: share of films given a class; accuracy: of those; wrong.9: share of all "
        "films answered wrongly at p >= 0.9. checks: withheld on any warning but the rule's; "
        "checks + rule: a class named with no warning (what the app shows as an answer)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
