"""The human-readable model card (models/NAME.md), written from the JSON card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xraydesk.model.card import ModelCard
from xraydesk.trainer.card_figures import run_options

POOL_INFO = {
    "kermany-pediatric": (
        "Children aged 1-5, Guangzhou Women and Children's Medical Center",
        "Kermany et al., Cell 2018 (Mendeley data v2/v3); CC BY 4.0",
    ),
    "covid19-radiography": (
        "Adults, many hospitals",
        "COVID-19 Radiography Database (Chowdhury et al. 2020; Rahman et al. 2021); "
        "cite the authors",
    ),
    "ozturk-nih": (
        "Adults; normal and pneumonia from NIH ChestX-ray8, COVID-19 from the Cohen collection",
        "Ozturk et al., Comput. Biol. Med. 2020 (DarkCovidNet)",
    ),
    "covid-cxnet": ("Adults", "COVID-CXNet (Haghanifar et al. 2020); CC BY 4.0"),
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _metrics_table(metrics: dict[str, Any], classes: list[str]) -> list[str]:
    lines = [
        "| class | precision | recall | F1 | ROC AUC (one-vs-rest) | n |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cid in classes:
        m = metrics["per_class"][cid]
        lines.append(
            f"| {cid} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} | "
            f"{_pct(m['auc'])} | {m['support']} |"
        )
    return lines


def _confusion(metrics: dict[str, Any], classes: list[str]) -> list[str]:
    lines = ["| true \\ predicted | " + " | ".join(classes) + " |"]
    lines.append("| --- " * (len(classes) + 1) + "|")
    for cid, row in zip(classes, metrics["confusion_matrix"], strict=True):
        lines.append(f"| {cid} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def _started_from(training: dict[str, Any]) -> str:
    """Where the weights started: random initialisation, or (``train_bundled --base``)
    another model this project trained, named with its pools."""
    stages = training.get("stages") or [{}]
    base = stages[0].get("base")
    if not base:
        return "from random initialisation"
    return f"started from {base['label']} (trained by this project on {base_pools(base)})"


def base_pools(base: dict[str, Any]) -> str:
    """The pools a base model was trained on, as the card's prose names them."""
    return ", ".join(base.get("pools", [])) or "its own pools"


def _soup_line(training: dict[str, Any]) -> list[str]:
    """For a weight average (``train_bundled --soup``): what it averaged."""
    soup = training.get("soup")
    if not soup:
        return []
    n = len(soup.get("ingredients", []))
    return [
        f"- the shipped weights are the {soup.get('how', 'average')} of {n} runs of this "
        "recipe on the same split (training/soup.py); the stages above are the first run's, "
        "the wall time all runs'"
    ]


def _stages(training: dict[str, Any]) -> str:
    """Each stage in one line, e.g. 8 epochs at 128 px (...), then 3 epochs at 160 px."""
    stages = training.get("stages") or [  # cards written before recipes had stages
        {
            **training.get("settings", {}),
            "seconds": training.get("wall_time_s", 0.0),
            "hardware": training.get("hardware"),
            "device": training.get("device"),
        }
    ]
    return ", then ".join(
        f"{st['epochs']} epochs at {st['size']} px (lr {st['lr']}, {st['schedule']} schedule, "
        f"{st['seconds'] / 60:.0f} min on {st['hardware']}, {st['device']})"
        for st in stages
    )


def _held_out(card: ModelCard, classes: list[str]) -> list[str]:
    """The leave-one-source-out table: each pool tested by a model that never saw it."""
    held = card.metrics.get("held_out_sources")
    if not held:
        return []
    out = ["", "### Held-out sources", ""]
    out.append(
        "Each row: a model trained with this recipe on the other pools only "
        f"({held.get('epochs')} epochs at {held.get('size')} px), tested on every image of "
        "the held-out pool. The in-source column is this model on the same pool's test "
        "split; 'own test' is the held-out model on the test split of the pools it trained "
        "on (same epochs and data: the fair baseline). A large gap between a pool's accuracy "
        "and its own-test accuracy means the model relies on what is particular to a source."
    )
    out.append("")
    if held.get("note"):
        out += [held["note"], ""]
    sources = held.get("sources", {})
    if not sources:
        return out
    in_source = card.metrics.get("test", {}).get("per_source", {})
    out.append(
        "| held-out pool | n | accuracy | own test accuracy | in-source accuracy | "
        "balanced accuracy | " + " | ".join(f"recall {c}" for c in classes) + " |"
    )
    out.append("| --- " * (6 + len(classes)) + "|")
    for pool, row in sources.items():
        if "skipped" in row:
            out.append(
                f"| {pool} | - | not held out: {row['skipped']} |" + " |" * (3 + len(classes))
            )
            continue
        same = in_source.get(pool, {}).get("accuracy")
        recalls = " | ".join(
            _pct(row["per_class"][c]["recall"]) if row["per_class"][c]["support"] else "-"
            for c in classes
        )
        out.append(
            f"| {pool} | {row['n']} | {_pct(row['accuracy'])} | "
            f"{_pct(row.get('own_test_accuracy'))} | {_pct(same)} | "
            f"{_pct(row['balanced_accuracy'])} | {recalls} |"
        )
    return out


def _operating_rule(card: ModelCard) -> list[str]:
    """When the model names no class, and the temperature under shift (both ECEs)."""
    rule = card.operating_rule
    out = ["", "### When the model does not answer", ""]
    if rule is None:
        return [*out, "No operating rule: the model names a class for every image."]
    out += [rule.line, ""]
    out += _class_groups(card)
    if rule.held_out:
        out += [
            "What the rule does on each held-out source (a model trained without it):",
            "",
            "| held-out pool | n | answered | accuracy of answered | wrong at p >= 0.9 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for pool, row in rule.held_out.items():
            out.append(
                f"| {pool} | {row['n']} | {_pct(row['coverage'])} | {_pct(row['accuracy'])} "
                f"| {_pct(row['wrong_confident_share'])} |"
            )
        out.append("")
    shift = card.metrics.get("calibration_under_shift")
    if shift:
        ece = shift.get("ece_at_applied_temperature", {})
        held = shift.get("held_out_sources", {})
        why = "; ".join(shift.get("not_applied_because", []))
        out.append(
            f"Temperature {shift['temperature']:.3f} applied, fitted on the "
            f"{shift['applied_from']}{f' (the held-out fit is not used: {why})' if why else ''}. "
            f"Expected calibration error at it: validation split "
            f"{_pct(ece.get('validation_split'))}, held-out sources "
            f"{_pct(ece.get('held_out_sources'))}"
            + (
                f" (a temperature factor of {held['fitted_factor']:.3g} fitted there would "
                f"give {_pct(held['ece_at_fitted_factor'])})."
                if held
                else "."
            )
        )
    return out


def _class_groups(card: ModelCard) -> list[str]:
    """What a withheld answer still names (``model.class_groups``), with its figures."""
    out = []
    figures = card.metrics.get("class_groups", {})
    for group in card.class_groups:
        members = group.members(card.display_names)
        line = (
            f"When the class is withheld but {members} together pass the same rule, the "
            f"result stays indeterminate and its reason says the model finds {group.name}, "
            "without naming which kind."
        )
        for split, rows in figures.items():
            row = rows.get(group.id)
            if row and row["named"]:
                line += (
                    f" On the {split.replace('_', ' ')}: {row['named']} of the {row['withheld']} "
                    f"withheld films ({row['n']} in all), {_pct(row['in_group'])} of them "
                    f"{group.name.lower()}."
                )
        out += [line, ""]
    return out


def _shortcut_audit(card: ModelCard) -> list[str]:
    """Where the model looks (CAM mass per region) and what hiding borders costs it."""
    audit = card.metrics.get("shortcut_audit")
    if not audit:
        return []
    regions = audit["regions"]
    top, bottom, left, right = regions["lung"]
    out = [
        "",
        "### Shortcut audit",
        "",
        f"On the test split ({audit['n']} images; {audit.get('evaluated', '')}). Regions are "
        f"fractions of the {audit['size']} px input: the central lung box (rows {top}-{bottom}, "
        f"columns {left}-{right}), the corner squares (side {regions['corner']}, where side "
        f"markers and burnt-in text sit) and the border band (width {regions['border']}, "
        "corners excluded). CAM: the predicted class's head weights times the last stage's "
        "activations, ReLU, its mass shared among the regions; compare each share with the "
        "region's area. Masked: corners and border filled with the mean of the rest of the "
        "preprocessed input. The audit makes its own pass over the images (batches of 32); "
        "in bf16 a prediction near a tie can differ from the evaluation above.",
        "",
        "| | lung box | corners | border | rest | accuracy | accuracy masked | "
        "predictions changed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    area = audit["area"]
    out.append(
        f"| area of the input | {_pct(area['lung'])} | {_pct(area['corners'])} | "
        f"{_pct(area['border'])} | {_pct(area['other'])} | | | |"
    )
    rows = [("all test images", audit), *audit.get("per_source", {}).items()]
    for name, row in rows:
        share = row["cam_share"]
        out.append(
            f"| {name} (n {row['n']}) | {_pct(share['lung'])} | {_pct(share['corners'])} | "
            f"{_pct(share['border'])} | {_pct(share['other'])} | {_pct(row['accuracy'])} | "
            f"{_pct(row['accuracy_masked'])} | {_pct(row['changed'])} |"
        )
    return out


def render_model_card(card: ModelCard, recipe: dict[str, Any], data: Path) -> str:
    test = card.metrics["test"]
    classes = card.class_ids
    training = card.training
    settings = recipe["train"]
    prep = card.preprocessing
    out = [
        f"# {card.name} {card.version}",
        "",
        card.description,
        "",
        "## Intended use",
        "",
        card.intended_use,
        "",
        "Classes: " + ", ".join(f"`{c.id}` ({c.name})" for c in card.classes) + ".",
        "",
        f"Population: {card.population.age_text}. {card.population.description}".rstrip(),
        "",
        "## Data",
        "",
        "| pool | population | source and licence | images per label |",
        "| --- | --- | --- | --- |",
    ]
    per_source = training.get("data", {}).get("per_source", {})
    for pool in recipe["pools"]:
        population, licence = POOL_INFO.get(pool, ("", ""))
        counts = ", ".join(f"{k} {v}" for k, v in per_source.get(pool, {}).items())
        out.append(f"| {pool} | {population} | {licence} | {counts} |")
    split = training.get("split", {})
    out += [
        "",
        "Split: "
        + ", ".join(
            f"{name} {sum(counts.values()) if isinstance(counts, dict) else counts}"
            for name, counts in split.get("counts", {}).items()
        )
        + " images, grouped by patient where the source gives one "
        f"(seed {recipe['train']['seed']}); "
        f"the split is in `models/{card.name}/split.csv` (paths relative to the data folder).",
        "",
        "## Evaluation",
        "",
        f"Held-out, patient-grouped test split: {test['n']} images, evaluated on the shipped "
        f"float16 weights with the calibrated temperature ({card.temperature:.3f}) applied.",
        "",
        f"- accuracy {_pct(test['accuracy'])}, balanced accuracy "
        f"{_pct(test['balanced_accuracy'])}, macro ROC AUC {_pct(test['macro_auc'])}",
        f"- expected calibration error {_pct(test['ece'])} after temperature scaling",
    ]
    for pair, auc in test.get("pairwise_auc", {}).items():
        out.append(f"- {pair.replace('_', ' ')} ROC AUC {_pct(auc)}")
    out += [
        "",
        *_metrics_table(test, classes),
        "",
        "Confusion matrix:",
        "",
        *_confusion(test, classes),
    ]
    out += [
        "",
        "### Targets",
        "",
        "| target | value | required | result |",
        "| --- | --- | --- | --- |",
    ]
    for t in card.metrics.get("targets", []):
        margin = "" if t["margin"] is None else f" ({t['margin']:+.3f})"
        verdict = "met" if t["met"] else "**missed**"
        out.append(
            f"| {t['label']} | {_pct(t['value'])} | >= {t['at_least']} | {verdict}{margin} |"
        )
    tried = recipe.get("tried", []) + [
        f"This model's run: {line}"
        for line in run_options(training.get("settings", {}), training.get("details"))
    ]
    if tried:
        out += ["", "### What was tried", "", *[f"- {line}" for line in tried]]
    per_pool = test.get("per_source", {})
    if per_pool:
        out += [
            "",
            "### Per pool",
            "",
            "Does the model work on every source, not only on average?",
            "",
        ]
        out += ["| pool | n | accuracy | " + " | ".join(f"recall {c}" for c in classes) + " |"]
        out += ["| --- " * (3 + len(classes)) + "|"]
        for pool, m in per_pool.items():
            recalls = " | ".join(
                _pct(m["per_class"][c]["recall"]) if m["per_class"][c]["support"] else "-"
                for c in classes
            )
            out.append(f"| {pool} | {m['n']} | {_pct(m['accuracy'])} | {recalls} |")
    out += _held_out(card, classes)
    out += _operating_rule(card)
    out += _shortcut_audit(card)
    out += [
        "",
        "No external test set was available while training: figures above come from held-out "
        "images of the same pools and overstate performance on images from other hospitals.",
        "",
        "## Known confounders and limits",
        "",
        *[f"- {line}" for line in card.limitations],
        "",
        "## Training",
        "",
        f"- recipe `{training.get('recipe')}`; command `{training.get('command')}`",
        f"- ResNet-50 {_started_from(training)}, {prep.channels}-channel input at {prep.size} "
        f"px, histogram equalisation {'on' if prep.equalize else 'off'}; {_stages(training)}; "
        f"AdamW, label smoothing {settings['label_smoothing']}, "
        f"imbalance handling `{settings['imbalance']}`; augmentation for scanner style "
        "(contrast, gamma, blur, noise, JPEG quality, borders) and small geometry changes",
        *_soup_line(training),
        f"- wall time {training.get('wall_time_s', 0) / 60:.0f} min in all; last stage on "
        f"{training.get('hardware')} ({training.get('device')})",
        f"- weights: `{card.weights_file}` ({card.weights_dtype}), sha256 `{card.weights_sha256}`",
        "",
    ]
    return "\n".join(out)
