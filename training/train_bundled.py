"""Train one bundled model end to end from its recipe in training/configs/.

    python training/train_bundled.py chest-3class --data ../shared/data --out models/

Runs the same engine as ``xraydesk train`` (full mode, from random initialisation, since
no pretrained weights exist on these machines), then ships the result: float16
safetensors (loaded back to float32 at run time), the JSON card, the patient-grouped
split (paths relative to the data folder) and a readable ``models/NAME.md``. The
shipped half-precision weights are evaluated again, through the same classifier the app
uses, so the card reports what users get, overall and per pool, against the recipe's
targets.

A killed run continues where it stopped when the same command is given again (the
engine checkpoints every epoch and every few minutes); ``--restart`` starts over.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from model_card_md import render_model_card  # noqa: E402

from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.model.classifier import Classifier  # noqa: E402
from xraydesk.model.device import select_device  # noqa: E402
from xraydesk.model.storage import load_network, save_model  # noqa: E402
from xraydesk.train.augment import AugmentConfig  # noqa: E402
from xraydesk.train.batches import batch_iterator  # noqa: E402
from xraydesk.train.config import TrainConfig  # noqa: E402
from xraydesk.train.metrics import evaluate  # noqa: E402
from xraydesk.train.split import SPLIT_FILE, read_split  # noqa: E402

CONFIGS = HERE / "configs"


def load_recipe(name: str) -> dict[str, Any]:
    path = CONFIGS / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.json")))
        raise SystemExit(f"train_bundled: no recipe {path} (known: {known})")
    return json.loads(path.read_text())


def train_config(recipe: dict[str, Any], data: Path, sources: dict[str, Path]) -> TrainConfig:
    settings = dict(recipe["train"])
    settings["augment"] = AugmentConfig.from_dict(settings.get("augment", {}))
    settings["fractions"] = tuple(settings.get("fractions", (0.7, 0.15, 0.15)))
    return TrainConfig(
        data=[f"{pool}={sources[pool]}" for pool in recipe["pools"]],
        name=recipe["name"],
        version=recipe["version"],
        description=recipe["description"],
        **settings,
    )


def pool_manifests(data: Path, pools: list[str], limit: int | None, work: Path) -> dict[str, Path]:
    """Each pool's manifest, or (``limit``) a small subset of it for smoke runs."""
    out = {}
    for pool in pools:
        manifest = data / pool / "manifest.csv"
        if not manifest.is_file():
            raise SystemExit(
                f"train_bundled: {manifest} not found; is --data the shared data folder?"
            )
        if limit is None:
            out[pool] = manifest
            continue
        with open(manifest, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        kept, per_label = [], {}
        for row in rows:
            if per_label.get(row["label"], 0) < limit:
                per_label[row["label"]] = per_label.get(row["label"], 0) + 1
                kept.append({**row, "path": str((data / pool / row["path"]).resolve())})
        subset = work / f"{pool}-subset.csv"
        subset.parent.mkdir(parents=True, exist_ok=True)
        with open(subset, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
        out[pool] = subset
    return out


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def evaluate_shipped(
    card_path: Path, split_csv: Path, device: str, batch: int = 64
) -> dict[str, Any]:
    """Metrics of the shipped weights on the test split, through the app's own classifier."""
    classifier = Classifier.load(card_path, device=device)
    samples, splits = read_split(split_csv)
    test = [i for i, sp in enumerate(splits) if sp == "test"]
    ids = classifier.class_ids
    y = np.array([ids.index(samples[i].label) for i in test])
    batches = [test[k : k + batch] for k in range(0, len(test), batch)]
    logits, ok = [], []
    for b in batch_iterator(samples, batches, classifier.preprocessing, pad_to=batch):
        out = classifier.logits(b.inputs).numpy()[: len(b.ok)]
        logits.append(out)
        ok.extend(b.ok)
    mask = np.asarray(ok, dtype=bool)
    all_logits = np.concatenate(logits)[mask]
    sources = [samples[i].source for i, good in zip(test, mask, strict=True) if good]
    return evaluate(
        all_logits, y[mask], ids, classifier.card.temperature, sources=sources, curves=True
    )


def metric_at(metrics: dict[str, Any], dotted: str) -> float | None:
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value is None else float(value)


def check_targets(recipe: dict[str, Any], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in recipe.get("targets", []):
        value = metric_at(metrics, target["metric"])
        rows.append(
            {
                **target,
                "value": value,
                "met": value is not None and value >= target["at_least"],
                "margin": None if value is None else value - target["at_least"],
            }
        )
    return rows


def relative_split(split_csv: Path, data: Path, out_csv: Path) -> None:
    """The split with paths relative to the data folder, so it means the same anywhere."""
    with open(split_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    base = data.resolve()
    for row in rows:
        path = Path(row["path"])
        if path.is_relative_to(base):
            row["path"] = path.relative_to(base).as_posix()
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def ship(
    recipe: dict[str, Any],
    staged_card: Path,
    data: Path,
    out: Path,
    device: str,
    wall_s: float,
) -> Path:
    name = recipe["name"]
    card = ModelCard.read(staged_card)
    network = load_network(card)
    extras_in = staged_card.with_suffix("")
    card.training["recipe"] = f"training/configs/{name}.json"
    card.training["hardware"] = hardware()
    card.training["wall_time_s"] = round(wall_s, 1)
    card.training["command"] = (
        f"python training/train_bundled.py {name} --data ../shared/data --out models/"
    )
    card.training.pop("history", None)  # kept in models/NAME/history.json
    for key in ("data", "split"):
        card.training[key] = json.loads(
            json.dumps(card.training.get(key, {})).replace(str(data.resolve()) + "/", "")
        )
    card.limitations = recipe_limitations(recipe) + card.limitations
    with tempfile.TemporaryDirectory() as tmp:
        shipped = save_model(network, card, Path(tmp), half=True)
        shutil.copy(shipped.with_suffix(".safetensors"), out / f"{name}.safetensors")
    card.path = out / f"{name}.json"
    extras = out / name
    extras.mkdir(parents=True, exist_ok=True)
    relative_split(extras_in / SPLIT_FILE, data, extras / SPLIT_FILE)
    shutil.copy(extras_in / "history.json", extras / "history.json")
    card.write(out / f"{name}.json")  # written once more below, with the shipped metrics

    evaluation = evaluate_shipped(out / f"{name}.json", extras_in / SPLIT_FILE, device)
    targets = check_targets(recipe, evaluation)
    card.metrics = {
        "test": {k: v for k, v in evaluation.items() if k != "roc"},
        "validation": card.metrics.get("validation", {}),
        "targets": targets,
        "evaluated": "shipped float16 weights, test split, temperature applied",
    }
    (extras / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    card.write(out / f"{name}.json")
    (out / f"{name}.md").write_text(render_model_card(card, recipe, data))
    return out / f"{name}.json"


def recipe_limitations(recipe: dict[str, Any]) -> list[str]:
    # The engine adds its own lines (random initialisation, data size, same-source test).
    common = [
        "Each pool comes from its own hospitals and scanners; the model may recognise the "
        "source of an image as much as the disease. Per-pool metrics are in the card.",
    ]
    if recipe["name"] == "chest-3class":
        common.append(
            "All bacterial and viral pneumonia training images but 442 come from children "
            "aged 1-5 (Guangzhou) and all COVID-19 images from adults: expect weaker "
            "pneumonia detection in adults and false COVID-19 calls on adult images from "
            "hospitals unlike the training pools."
        )
    else:
        common.append(
            "Children aged 1 to 5 from one hospital only; not for adults. Bacterial vs viral "
            "labels come from clinical records and are themselves uncertain."
        )
    return common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="recipe name (a file in training/configs/)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bundled")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--restart", action="store_true", help="discard an unfinished run")
    parser.add_argument("--epochs", type=int, help="override the recipe (smoke runs only)")
    parser.add_argument("--size", type=int, help="override the recipe (smoke runs only)")
    parser.add_argument("--limit", type=int, help="images per pool and label (smoke runs only)")
    args = parser.parse_args(argv)

    recipe = load_recipe(args.name)
    work = (args.work / args.name).resolve()
    # Run folder, checkpoints and caches live in the work folder, not the user's library.
    os.environ["XRAYDESK_DATA_DIR"] = str(work)
    from xraydesk.train.checkpoint import RunDir
    from xraydesk.train.engine import train_model

    for key, value in (("epochs", args.epochs), ("size", args.size)):
        if value is not None:
            recipe["train"][key] = value
    sources = pool_manifests(args.data, recipe["pools"], args.limit, work / "subsets")
    config = train_config(recipe, args.data, sources)
    staging = work / "staged"
    staged_card = staging / f"{args.name}.json"
    started = time.perf_counter()
    if args.restart and staging.exists():
        shutil.rmtree(staging)
    if not staged_card.exists():
        resume = RunDir(args.name).exists() and not args.restart
        print(
            f"{'resuming' if resume else 'training'} {args.name} on "
            f"{select_device(args.device).label}"
        )
        last = [0.0]

        def progress(p) -> None:
            now = time.monotonic()
            if p.record is not None or p.phase != "training" or now - last[0] > 30:
                last[0] = now
                extra = f" loss {p.loss:.3f} acc {p.acc:.3f}" if p.loss is not None else ""
                rate = f" {p.images_per_s:.1f} img/s" if p.images_per_s else ""
                print(f"[{p.phase}] {p.message} {p.done}/{p.total}{extra}{rate}", flush=True)
                if p.record is not None:
                    print(f"  epoch record: {json.dumps(p.record)}", flush=True)

        config.device = args.device
        result = train_model(
            config, progress, resume=resume, restart=args.restart, output_dir=staging
        )
        wall = result.seconds
    else:
        print(f"{args.name}: already trained in {staging}; shipping it")
        wall = float(ModelCard.read(staged_card).training.get("seconds", 0.0))
    args.out.mkdir(parents=True, exist_ok=True)
    card_path = ship(recipe, staged_card, args.data, args.out.resolve(), args.device, wall)
    card = ModelCard.read(card_path)
    print(f"shipped {card.label} to {card_path} ({time.perf_counter() - started:.0f} s)")
    for t in card.metrics["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        verdict = "met" if t["met"] else "MISSED"
        print(f"  {t['label']:28s} {value} (target >= {t['at_least']}) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
