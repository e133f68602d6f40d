"""Train one bundled model end to end from its recipe in training/configs/.

    python training/train_bundled.py chest-3class --data ../shared/data --out models/

Runs the same engine as ``xraydesk train`` (full mode, from random initialisation, since
no pretrained weights exist on these machines), then ships the result: float16
safetensors (loaded back to float32 at run time), the JSON card, the patient-grouped
split (paths relative to the data folder) and a readable ``models/NAME.md``. The
shipped half-precision weights are evaluated again, through the same classifier the app
uses, so the card reports what users get, overall and per pool, against the recipe's
targets.

A recipe may add ``stages``: each continues from the previous stage's weights (as
float16, exactly as they would ship) with its own settings, for example a few epochs at a
higher resolution after the long low-resolution run. Every stage uses the same pools and
seed, hence the same patient-grouped split; that is checked, since a different split would
put test images into training. ``--add-stage '{"size": 224, "epochs": 4, "lr": 0.0003}'``
appends a stage to the recipe's: with the ``--work`` folder of a finished run, its stages
are kept as they are and only the new one trains (the campaign's ``continues`` jobs).

A killed run continues where it stopped when the same command is given again (the
engine checkpoints every epoch and every few minutes, and a finished stage is kept);
``--restart`` starts over.

Against the source shortcut (a model learning the hospital, not the finding), every
shipped card also gets a shortcut audit of
the shipped weights on the test split (CAM mass in the lung box vs borders and corners,
accuracy with borders and corners masked) and, with ``--held-out``, a leave-one-source-
out table: for each pool, a model trained on the other pools and tested on all of it.

``--profile gpu`` applies the recipe's GPU settings (one stage at 224 px, a large batch);
the hardware plan (device, precision, memory format, batch, loading threads and image
cache) is chosen from the machine and recorded in the card. ``--time-budget`` stops a
run at a deadline and ships its best epoch so far. ``training/gpu_run.sh`` runs both
bundled models that way.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from idle_cores import IdleCores  # noqa: E402
from model_card_md import base_pools, render_model_card  # noqa: E402
from operating_rules import apply_operating_rule, split_logits  # noqa: E402
from soup import staged_soup  # noqa: E402

from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.model import anchor  # noqa: E402
from xraydesk.model.card import ModelCard, Population  # noqa: E402
from xraydesk.model.class_groups import groups_from_list  # noqa: E402
from xraydesk.model.device import cpu_model, select_device  # noqa: E402
from xraydesk.model.library import resolve_model  # noqa: E402
from xraydesk.model.saving import load_network, save_model  # noqa: E402
from xraydesk.trainer.augment import AugmentConfig  # noqa: E402
from xraydesk.trainer.batches import configure_loading  # noqa: E402
from xraydesk.trainer.config import SCRATCH, TrainConfig  # noqa: E402
from xraydesk.trainer.dataset import configure_checking  # noqa: E402
from xraydesk.trainer.metrics import evaluate  # noqa: E402
from xraydesk.trainer.progress import TrainingStage  # noqa: E402
from xraydesk.trainer.shortcut_audit import audit_shortcuts  # noqa: E402
from xraydesk.trainer.split import SPLIT_FILE, read_split  # noqa: E402

CONFIGS = HERE / "configs"


def load_recipe(name: str) -> dict[str, Any]:
    path = CONFIGS / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.json")))
        raise SystemExit(f"train_bundled: no recipe {path} (known: {known})")
    return json.loads(path.read_text())


# What a later stage may not change: the data and its split (a different split would put
# test images into training), the classes, and where it starts (the previous stage).
STAGE_FIXED = ("seed", "fractions", "classes", "label_map", "mode", "base")


def apply_profile(recipe: dict[str, Any], profile: str) -> dict[str, Any]:
    """The recipe with one of its ``profiles`` applied: ``train`` settings overridden,
    ``stages``, ``held_out``, ``version`` and ``description`` replaced where the profile
    gives them."""
    profiles = recipe.get("profiles", {})
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise SystemExit(f"train_bundled: {recipe['name']} has no profile {profile!r} ({known})")
    chosen = profiles[profile]
    out = {**recipe, "train": {**recipe["train"], **chosen.get("train", {})}}
    for key in ("stages", "held_out", "version", "description"):
        if key in chosen:
            out[key] = chosen[key]
    out["profile"] = profile
    return out


def plan_hardware(
    device: str, batch: int | None, workers: int | None, cache_gb: float | None
) -> dict[str, Any]:
    """Precision, memory format, batch, loading threads and image cache for this machine.

    CUDA: bf16 autocast (fp16 with loss scaling where bf16 is missing), channels_last, a
    loading thread per core and every resized image cached in memory (the GPU would wait
    on decoding otherwise), cuDNN autotuning. CPU: bf16 autocast where the CPU has native
    bf16 (AVX-512 BF16 or AMX), fp32 otherwise, channels_last, one loading thread (more
    would take cores from the model), no cache. ``batch`` None keeps the recipe's.
    """
    import torch

    choice = select_device(device)
    cores = os.cpu_count() or 1
    gpu = choice.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    plan = {
        "device": choice.label,
        "precision": {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[
            choice.autocast_dtype
        ],
        "memory_format": "channels_last"
        if choice.memory_format == torch.channels_last
        else "contiguous",
        "batch": batch,
        "loading_threads": workers or (cores if gpu else 1),
        "image_cache_gb": cache_gb if cache_gb is not None else (24.0 if gpu else 0.0),
        "cores": cores,
    }
    configure_loading(plan["loading_threads"], int(plan["image_cache_gb"] * 2**30))
    configure_checking(plan["loading_threads"], remember=True)  # held-out runs: check once
    return plan


class Deadline:
    """An event set when the time budget runs out (None: no budget)."""

    def __init__(self, minutes: float | None) -> None:
        import threading

        self.event = threading.Event()
        self.timer = None
        if minutes is not None:
            self.timer = threading.Timer(minutes * 60.0, self.event.set)
            self.timer.daemon = True
            self.timer.start()

    @property
    def passed(self) -> bool:
        return self.event.is_set()


def stage_settings(
    recipe: dict[str, Any], added: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The training settings of each stage: ``train``, then each of ``stages`` (and of
    ``added``, from ``--add-stage``) on top of it."""
    first = dict(recipe["train"])
    stages = [first]
    for number, stage in enumerate([*recipe.get("stages", []), *(added or [])], start=2):
        fixed = sorted(set(stage) & set(STAGE_FIXED))
        if fixed:
            raise SystemExit(
                f"train_bundled: stage {number} of {recipe['name']} changes {', '.join(fixed)}; "
                "later stages continue the first one and keep its data, split and classes"
            )
        stages.append({**first, **stage})
    return stages


def train_config(
    recipe: dict[str, Any],
    data: Path,
    sources: dict[str, Path],
    settings: dict[str, Any] | None = None,
) -> TrainConfig:
    settings = dict(recipe["train"] if settings is None else settings)
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
    """The CPU and its core count, as cards and tables record it."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def evaluate_shipped(
    card_path: Path, split_csv: Path, device: str, batch: int = 64
) -> dict[str, Any]:
    """Metrics of the shipped weights on the test split, through the app's own classifier."""
    logits, labels, sources = split_logits(card_path, split_csv, "test", None, device, batch)
    card = ModelCard.read(card_path)
    return evaluate(logits, labels, card.class_ids, card.temperature, sources=sources, curves=True)


def test_samples(split_csv: Path, data: Path, limit: int | None = None, seed: int = 0):
    """The split's samples (paths made absolute against the data folder) and its test
    indices; ``limit`` draws a seeded sample of that many test images."""
    samples, splits = read_split(split_csv)
    samples = [
        s if s.path.is_absolute() else dataclasses.replace(s, path=data / s.path) for s in samples
    ]
    test = [i for i, sp in enumerate(splits) if sp == "test"]
    if limit is not None and limit < len(test):
        rng = np.random.default_rng(seed)
        test = sorted(int(i) for i in rng.choice(test, size=limit, replace=False))
    return samples, test


def shortcut_audit(
    card_path: Path, split_csv: Path, data: Path, device: str, limit: int | None = None
) -> dict[str, Any]:
    """The shortcut audit (CAM mass per region, accuracy with borders and corners masked)
    of the shipped weights on the test split, through the app's own loading path."""
    classifier = Classifier.load(card_path, device=device)
    samples, test = test_samples(split_csv, data, limit)
    audit = audit_shortcuts(
        classifier.network,
        classifier.preprocessing,
        samples,
        test,
        classifier.class_ids,
        classifier.device,
    )
    audit["evaluated"] = (
        f"shipped {classifier.card.weights_dtype} weights, "
        + ("whole test split" if limit is None else f"seeded sample of {len(test)} test images")
        + f", {classifier.device.label}"
    )
    audit["hardware"] = hardware()
    return audit


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


def split_rows(split_csv: Path, data: Path) -> list[dict[str, str]]:
    """A split file's rows, paths made relative to the data folder where they lie in it."""
    with open(split_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    base = data.resolve()
    for row in rows:
        path = Path(row["path"])
        if path.is_relative_to(base):
            row["path"] = path.relative_to(base).as_posix()
    return rows


def relative_split(split_csv: Path, data: Path, out_csv: Path) -> None:
    """The split with paths relative to the data folder, so it means the same anywhere."""
    rows = split_rows(split_csv, data)
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
    stages: list[dict[str, Any]],
    history: Path,
    soup: list[Path] | None = None,
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
    if soup:  # the ingredients are named in training["soup"]; their cards are not shipped
        card.training["command"] += " --soup " + " ".join(
            f"RUN{k}.json" for k in range(1, len(soup) + 1)
        )
    card.training.pop("history", None)  # kept in models/NAME/history.json
    card.training["stages"] = stages
    if len(stages) > 1:  # not a model of its own: the previous stage of this recipe
        previous = stages[-2]
        card.training["settings"]["base"] = (
            f"stage {previous['stage']} of this recipe "
            f"({previous['epochs']} epochs at {previous['size']} px)"
        )
        card.base_model = None
    if "base" in stages[0]:  # the first stage started from another model's weights
        card.base_model = stages[0]["base"]["label"]
        if len(stages) > 1:
            card.training["settings"]["base"] += f", which started from {card.base_model}"
    for key in ("data", "split"):
        card.training[key] = json.loads(
            json.dumps(card.training.get(key, {})).replace(str(data.resolve()) + "/", "")
        )
    # a soup's card starts from a shipped run's, whose limitations already hold the recipe's
    card.limitations = list(
        dict.fromkeys(recipe_limitations(recipe, stages[0].get("base")) + card.limitations)
    )
    if "population" in recipe:  # who is in the pools: the recipe says, not the engine
        card.population = Population.from_dict(recipe["population"])
    if "class_groups" in recipe:  # classes that mean one finding (model.class_groups)
        card.class_groups = groups_from_list(recipe["class_groups"], card.class_ids, name)
    with tempfile.TemporaryDirectory() as tmp:
        shipped = save_model(network, card, Path(tmp), half=True)
        shutil.copy(shipped.with_suffix(".safetensors"), out / f"{name}.safetensors")
    card.path = out / f"{name}.json"
    extras = out / name
    extras.mkdir(parents=True, exist_ok=True)
    relative_split(extras_in / SPLIT_FILE, data, extras / SPLIT_FILE)
    shutil.copy(history, extras / "history.json")
    card.write(out / f"{name}.json")  # written once more below, with the shipped metrics
    anchor.refresh_if_shipped(out)  # into models/: the program records the new card

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
    anchor.refresh_if_shipped(out)
    (out / f"{name}.md").write_text(render_model_card(card, recipe, data))
    return out / f"{name}.json"


def recipe_max_error(recipe: dict[str, Any]) -> float:
    """The recipe's target for its operating rule (``operating_rule.max_error``), else the
    default: at most that share of answered images wrong."""
    from xraydesk.trainer.operating_choice import MAX_ERROR

    return float(recipe.get("operating_rule", {}).get("max_error", MAX_ERROR))


def base_model_of(spec: str | None) -> dict[str, Any] | None:
    """What a stage's ``base`` setting started from, as the shipped card records it: None
    from scratch; a model card's label, pools and whether it was itself trained from
    random initialisation (its first stage has no ``base`` in ``ship``'s record of the
    stages; a card made by ``xraydesk train`` says so in its settings)."""
    if spec is None or spec == SCRATCH:
        return None
    card = ModelCard.read(Path(spec)) if Path(spec).is_file() else resolve_model(spec)
    sources = card.training.get("data", {}).get("sources", [])
    stages = card.training.get("stages")
    if stages:
        from_scratch = "base" not in stages[0]
    else:
        from_scratch = card.training.get("settings", {}).get("base") == SCRATCH
    return {
        "label": card.label,
        "pools": [s["name"] for s in sources if isinstance(s, dict) and "name" in s],
        "from_scratch": from_scratch,
    }


def recipe_limitations(recipe: dict[str, Any], base: dict[str, Any] | None = None) -> list[str]:
    """The recipe's lines of the card's limitations; ``base``: what the first stage
    started from (``base_model_of``)."""
    # The engine adds its own lines (random initialisation, data size, same-source test).
    common = [
        "Each pool comes from its own hospitals and scanners; the model may recognise the "
        "source of an image as much as the disease. Per-pool metrics are in the card.",
    ]
    if base is not None:
        how = "from random initialisation" if base["from_scratch"] else "from a base of its own"
        common.append(
            f"Its training started from the weights of {base['label']}, a network trained "
            f"by this project {how} on {base_pools(base)}, not from outside pretrained weights."
        )
    if "limitations" in recipe:  # a recipe that says its own
        return common + list(recipe["limitations"])
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


def stage_folder(work: Path, number: int, settings: dict[str, Any], first: dict[str, Any]) -> Path:
    """Where stage ``number`` trains: the work folder for the first, ``stage-N`` for later
    ones, ``stage-N-seedK`` for a later stage with a run seed of its own (``--add-stage
    '{..., "run_seed": 1}'``): a continuing job that repeats a finished job's last stage
    with other random draws must not find that job's stage and keep it."""
    if number == 1:
        return work
    own_seed = settings.get("run_seed")
    if own_seed is not None and own_seed != first.get("run_seed"):
        return work / f"stage-{number}-seed{own_seed}"
    return work / f"stage-{number}"


def train_stage(
    config: TrainConfig, work: Path, device: str, deadline: Deadline | None = None
) -> Path:
    """Run one stage in its own work folder (resuming it if killed); its staged card."""
    # Run folder, checkpoints and caches live in the work folder, not the user's library.
    os.environ["XRAYDESK_DATA_DIR"] = str(work)
    from xraydesk.trainer.checkpoint import RunDir
    from xraydesk.trainer.held_out import train_within

    staged_card = work / "staged" / f"{config.name}.json"
    if staged_card.exists():
        print(f"{config.name}: already trained in {staged_card.parent}")
        return staged_card
    resume = RunDir(config.name).exists()
    print(f"{'resuming' if resume else 'training'} {config.name} on {select_device(device).label}")
    progress = progress_printer()
    config.device = device
    train_within(config, staged_card.parent, progress, deadline.event if deadline else None)
    return staged_card  # its card records the seconds, device and hardware


# ``--threads auto``: the training's compute threads follow the machine's idle cores
# (``idle_cores``); set once by ``_main``, read by every progress callback (called in the
# training thread, where the thread count must be set)
IDLE_CORES: IdleCores | None = None


def progress_printer():
    """A progress callback that prints epoch records, phase changes and a line every 30 s;
    with ``--threads auto`` it also sets the compute threads (and says when they change)."""
    last = {"time": 0.0, "phase": ""}

    def progress(p) -> None:
        if IDLE_CORES is not None:
            before = IDLE_CORES.threads
            if IDLE_CORES.adjust() != before:
                print(f"[threads] {IDLE_CORES.threads} compute thread(s): the rest of the "
                      f"machine used {IDLE_CORES.others:.2f} cores", flush=True)  # fmt: skip
        # every epoch record and phase change; otherwise a line every 30 s (a long log stays
        # readable: checking 13,883 images reports every 50 of them)
        now = time.monotonic()
        changed = p.phase != last["phase"] or p.phase not in (
            TrainingStage.TRAINING,
            TrainingStage.CHECKING,
        )
        if p.record is not None or changed or now - last["time"] > 30:
            last.update(time=now, phase=p.phase)
            extra = f" loss {p.loss:.3f} acc {p.acc:.3f}" if p.loss is not None else ""
            rate = f" {p.rate:.1f} img/s" if p.rate else ""
            eta = f" eta {p.eta:.0f}s" if p.eta is not None else ""
            print(f"[{p.phase}] {p.message} {p.done}/{p.total}{extra}{rate}{eta}", flush=True)
            if p.record is not None:
                print(f"  epoch record: {json.dumps(p.record)}", flush=True)

    return progress


def train_stage_for_handoff(
    config: TrainConfig, work: Path, device: str, deadline: Deadline | None = None
) -> Path:
    """A stage that feeds the next: its weights rounded to float16, as they would ship.

    The next stage starts from these, so the recipe gives the same result whether a stage
    was run just now or its shipped weights were kept from an earlier run.
    """
    handoff = work / "handoff" / f"{config.name}.json"
    if not handoff.exists():
        staged_card = train_stage(config, work, device, deadline)
        card = ModelCard.read(staged_card)
        save_model(load_network(card), card, handoff.parent, half=True)
        shutil.copytree(staged_card.with_suffix(""), handoff.with_suffix(""), dirs_exist_ok=True)
    print(f"{config.name}: stage weights in {handoff}")
    return handoff


def combine_stages(folders: list[Path], data: Path, out: Path) -> Path:
    """Check that every stage used the first stage's split; write one history of all stages.

    ``folders`` holds each stage's extras (split.csv, history.json), first stage first.
    """

    def split_of(folder: Path) -> dict[str, str]:
        return {row["path"]: row["split"] for row in split_rows(folder / SPLIT_FILE, data)}

    first_split = split_of(folders[0])
    history = []
    for number, folder in enumerate(folders, start=1):
        if number > 1 and split_of(folder) != first_split:
            raise SystemExit(
                f"train_bundled: stage {number} split its data differently from stage 1, so "
                "its test images may have been trained on; stages need the same pools and seed."
            )
        records = json.loads((folder / "history.json").read_text())
        history += [{**r, "stage": number} for r in records]
    out.write_text(json.dumps(history, indent=2) + "\n")
    return out


def held_out_sources(
    recipe: dict[str, Any],
    data: Path,
    sources: dict[str, Path],
    settings: dict[str, Any],
    work: Path,
    device: str,
    epochs: int | None,
    deadline: Deadline | None,
) -> dict[str, Any]:
    """The leave-one-source-out table of this recipe (pools already done are kept)."""
    os.environ["XRAYDESK_DATA_DIR"] = str(work)  # the held-out runs' checkpoints
    from xraydesk.trainer.held_out import leave_one_source_out

    config = train_config(recipe, data, sources, settings)
    config.device = device
    held = recipe.get("held_out", {})
    result = leave_one_source_out(
        config,
        work,
        epochs=epochs or held.get("epochs"),
        progress=progress_printer(),
        cancel=deadline.event if deadline else None,
    )
    if held.get("note"):
        result["note"] = (result.get("note", "") + " " + held["note"]).strip()
    return result


def add_audits(
    card_path: Path,
    recipe: dict[str, Any],
    data: Path,
    audit: dict[str, Any] | None,
    held_out: dict[str, Any] | None,
    plan: dict[str, Any] | None = None,
) -> None:
    """Put the shortcut audit and the held-out table into the card, JSON and Markdown."""
    card = ModelCard.read(card_path)
    if audit is not None:
        card.metrics["shortcut_audit"] = audit
    if held_out is not None:
        card.metrics["held_out_sources"] = held_out
    if plan is not None:
        card.training["hardware_plan"] = plan
    card.write(card_path)
    extras = card_path.with_suffix("")
    for name, value in (("shortcut_audit.json", audit), ("held_out_sources.json", held_out)):
        if value is not None and extras.is_dir():
            (extras / name).write_text(json.dumps(value, indent=2) + "\n")
    card_path.with_suffix(".md").write_text(
        render_model_card(ModelCard.read(card_path), recipe, data)
    )


def held_out_only(
    recipe: dict[str, Any],
    args: argparse.Namespace,
    sources: dict[str, Path],
    stages: list[dict[str, Any]],
    work: Path,
    deadline: Deadline,
) -> int:
    """The recipe's leave-one-source-out table alone, at its last stage's size."""
    started = time.perf_counter()
    settings = stages[-1] if len(stages) == 1 else {**stages[0], "size": stages[-1]["size"]}
    table = held_out_sources(
        recipe,
        args.data,
        sources,
        settings,
        work / "held-out",
        args.device,
        args.held_out_epochs or args.epochs,
        deadline,
    )
    table["recipe"] = recipe["name"]
    table["profile"] = recipe.get("profile")
    table["hardware"] = hardware()
    table["wall_time_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{recipe['name']}-held-out.json"
    out.write_text(json.dumps(table, indent=2) + "\n")
    print(f"held-out table in {out}")
    for pool, row in table.get("sources", {}).items():
        text = row.get("skipped") or (
            f"accuracy {row['accuracy']:.3f} on {row['n']} images "
            f"(own test split {row.get('own_test_accuracy') or float('nan'):.3f})"
        )
        print(f"  held out {pool}: {text}")
    return 0


def set_threads(threads: str | None) -> None:
    """``--threads``: a fixed count, or ``auto`` (``IDLE_CORES``, starting at one)."""
    global IDLE_CORES
    if threads is None:
        return
    import torch

    if threads == "auto":
        IDLE_CORES = IdleCores()
        torch.set_num_threads(1)
        return
    try:
        count = int(threads)
    except ValueError:
        raise SystemExit(f"--threads {threads!r}: a number or 'auto'") from None
    if count < 1:
        raise SystemExit(f"--threads {threads!r}: at least 1")
    torch.set_num_threads(count)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:  # the loading and checking plans are process-wide: leave them as found
        configure_loading()
        configure_checking()


def _stage_json(text: str) -> dict[str, Any]:
    """``--add-stage``'s value: a JSON object of stage settings."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError('a stage is a JSON object of settings: {"size": 224}')
    return value


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="recipe name (a file in training/configs/)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bundled")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", help="apply one of the recipe's profiles (e.g. gpu)")
    parser.add_argument("--restart", action="store_true", help="discard an unfinished run")
    parser.add_argument("--epochs", type=int, help="override the recipe (smoke runs only)")
    parser.add_argument("--size", type=int, help="override the recipe (smoke runs only)")
    parser.add_argument("--batch", type=int, help="override the recipe's batch size")
    parser.add_argument("--limit", type=int, help="images per pool and label (smoke runs only)")
    parser.add_argument(
        "--run-seed",
        type=int,
        help="seed of the run's own randomness (head, epoch order, augmentation) for every "
        "stage; the split keeps the recipe's seed, so the test films stay the same: how far "
        "one recipe moves between two runs",
    )
    parser.add_argument(
        "--add-stage",
        type=_stage_json,
        action="append",
        default=[],
        metavar="JSON",
        help='one more stage after the recipe\'s, e.g. \'{"size": 224, "epochs": 4, "lr": '
        "0.0003}'; with the --work folder of a finished run only the new stages train",
    )
    parser.add_argument(
        "--soup",
        type=Path,
        nargs="+",
        metavar="CARD",
        help="ship the average of these runs' weights (finished cards of this recipe with "
        "the same split: training/soup.py) instead of training; its temperature, figures, "
        "audit and operating rule are made anew",
    )
    parser.add_argument(
        "--base",
        type=Path,
        metavar="CARD",
        help="start the first stage from this model card (one trained here, e.g. by another "
        "campaign job) instead of the recipe's base",
    )
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="also train one model per pool left out and test it on that pool",
    )
    parser.add_argument("--held-out-epochs", type=int, help="epochs of each held-out run")
    parser.add_argument(
        "--held-out-from",
        type=Path,
        action="append",
        default=[],
        help="a leave-one-source-out folder of this recipe made by another run (POOL/"
        "predictions.npz): its predictions choose the operating rule too",
    )
    parser.add_argument(
        "--held-out-only",
        action="store_true",
        help="only the leave-one-source-out table (the yardstick for recipe choices), "
        "written to OUT/NAME-held-out.json; nothing is shipped",
    )
    parser.add_argument("--workers", type=int, help="loading threads (default: from hardware)")
    parser.add_argument(
        "--threads",
        help="compute threads: a number, or 'auto' (every core while the rest of the machine "
        "is idle, one while it is not: the campaign's background runs); default: torch's",
    )
    parser.add_argument("--cache-gb", type=float, help="in-memory image cache (default: hw)")
    parser.add_argument(
        "--time-budget",
        type=float,
        help="minutes for the whole command; a run still going then ships its best epoch",
    )
    parser.add_argument(
        "--cards-only",
        action="store_true",
        help="only write models/NAME.md again from the shipped card and the recipe",
    )
    parser.add_argument(
        "--audit",
        action="store_true",
        help="only run the shortcut audit of the shipped model on its test split; with the "
        "whole split (no --audit-limit) it is written into the card",
    )
    parser.add_argument("--audit-limit", type=int, help="audit a seeded sample of test images")
    args = parser.parse_args(argv)

    recipe = load_recipe(args.name)
    if args.profile:
        recipe = apply_profile(recipe, args.profile)
    if args.cards_only:
        card_path = args.out / f"{args.name}.json"
        card_path.with_suffix(".md").write_text(
            render_model_card(ModelCard.read(card_path), recipe, args.data)
        )
        print(f"wrote {card_path.with_suffix('.md')}")
        return 0
    if args.audit:
        card_path = args.out / f"{args.name}.json"
        split_csv = args.out / args.name / SPLIT_FILE
        audit = shortcut_audit(
            card_path, split_csv, args.data.resolve(), args.device, args.audit_limit
        )
        print(json.dumps(audit, indent=2))
        if args.audit_limit is None:
            add_audits(card_path, recipe, args.data, audit, None)
            print(f"wrote the audit into {card_path} and {card_path.with_suffix('.md')}")
        return 0
    deadline = Deadline(args.time_budget)
    set_threads(args.threads)
    plan = plan_hardware(args.device, args.batch, args.workers, args.cache_gb)
    print("hardware plan: " + json.dumps(plan), flush=True)
    work = (args.work / args.name).resolve()
    if args.restart and work.exists():
        shutil.rmtree(work)
    stages = stage_settings(recipe, args.add_stage)
    if args.base is not None:
        if not args.base.is_file():
            raise SystemExit(f"train_bundled: --base {args.base}: no such model card")
        stages[0]["base"] = str(args.base.resolve())
    for settings in stages:
        for key, value in (
            ("epochs", args.epochs),
            ("size", args.size),
            ("batch", args.batch),
            ("run_seed", args.run_seed),
        ):
            if value is not None:
                settings[key] = value
    plan["batch"] = stages[-1]["batch"]
    sources = pool_manifests(args.data, recipe["pools"], args.limit, work / "subsets")
    if args.held_out_only:
        return held_out_only(recipe, args, sources, stages, work, deadline)
    started = time.perf_counter()
    if args.soup:
        staged_card, runs, history, wall = staged_soup(
            args.soup, args.data.resolve(), work / "soup" / "staged", args.device
        )
        print(f"averaged {len(args.soup)} runs of {args.name} into {staged_card}", flush=True)
        return finish(recipe, args, staged_card, runs, history, wall, plan, started)
    base: Path | None = None
    runs: list[dict[str, Any]] = []
    extras: list[Path] = []
    for number, settings in enumerate(stages, start=1):
        stage_work = stage_folder(work, number, settings, stages[0])
        if base is not None:
            settings["base"] = str(base)
        config = train_config(recipe, args.data, sources, settings)
        if len(stages) > 1:
            print(f"stage {number} of {len(stages)}: {config.epochs} epochs at {config.size} px")
        if number < len(stages):
            trained = base = train_stage_for_handoff(config, stage_work, args.device, deadline)
        else:
            trained = staged_card = train_stage(config, stage_work, args.device, deadline)
        extras.append(trained.with_suffix(""))
        done = ModelCard.read(trained).training  # a kept stage may come from another machine
        # a shipped card (a kept stage) has its wall time; a freshly staged one, its seconds
        seconds = float(done.get("wall_time_s", done.get("seconds", 0.0)))
        runs.append(
            {
                "stage": number,
                "size": config.size,
                "epochs": config.epochs,
                "lr": config.lr,
                "schedule": config.schedule,
                "run_seed": config.training_seed,
                "seconds": round(seconds, 1),
                "device": done.get("device"),
                "hardware": done.get("hardware", hardware()),
            }
        )
        if number == 1 and (started_from := base_model_of(settings.get("base"))):
            runs[0]["base"] = started_from
    history = combine_stages(extras, args.data, work / "history.json")
    wall = sum(r["seconds"] for r in runs)

    def held_out() -> dict[str, Any] | None:  # after shipping: a killed table loses no model
        if not args.held_out:
            return None
        return held_out_sources(
            recipe,
            args.data,
            sources,
            stages[-1] if len(stages) == 1 else {**stages[0], "size": stages[-1]["size"]},
            work / "held-out",
            args.device,
            args.held_out_epochs or args.epochs,
            deadline,
        )

    return finish(recipe, args, staged_card, runs, history, wall, plan, started, held_out)


def finish(
    recipe: dict[str, Any],
    args: argparse.Namespace,
    staged_card: Path,
    runs: list[dict[str, Any]],
    history: Path,
    wall: float,
    plan: dict[str, Any],
    started: float,
    held_out_table: Callable[[], dict[str, Any] | None] | None = None,
) -> int:
    """Ship a trained (or averaged) stage: the card, its test figures, the shortcut
    audit, the operating rule and temperature under shift; print what it reached."""
    work = (args.work / args.name).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    card_path = ship(
        recipe,
        staged_card,
        args.data,
        args.out.resolve(),
        args.device,
        wall,
        runs,
        history,
        args.soup,
    )
    print(f"shipped to {card_path} ({time.perf_counter() - started:.0f} s); auditing", flush=True)
    audit = shortcut_audit(
        card_path, args.out / args.name / SPLIT_FILE, args.data.resolve(), args.device
    )
    held_out = held_out_table() if held_out_table is not None else None
    add_audits(card_path, recipe, args.data, audit, held_out, plan)
    # the operating rule and the temperature under shift, from the held-out predictions
    # (every pool's, also those of earlier runs) or else the validation split
    card = apply_operating_rule(
        card_path,
        [*args.held_out_from, work / "held-out"],
        args.data.resolve(),
        args.device,
        recipe_max_error(recipe),
    )
    print(f"  {card.operating_rule.line if card.operating_rule else 'no operating rule'}")
    print(f"shipped {card.label} to {card_path} ({time.perf_counter() - started:.0f} s)")
    for t in card.metrics["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        verdict = "met" if t["met"] else "MISSED"
        print(f"  {t['label']:28s} {value} (target >= {t['at_least']}) {verdict}")
    share, area = audit["cam_share"]["lung"], audit["area"]["lung"]
    print(
        f"  shortcut audit: CAM share in the lung box {share:.3f} (area {area:.3f}),"
        f" accuracy {audit['accuracy']:.3f} -> {audit['accuracy_masked']:.3f} masked"
    )
    for pool, row in (held_out or {}).get("sources", {}).items():
        text = row.get("skipped") or f"accuracy {row['accuracy']:.3f} on {row['n']} images"
        print(f"  held out {pool}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
