"""The one training entry point behind ``xraydesk train`` and the fine-tuning wizard.

``train_model(config, progress, cancel)`` checks the data, splits it (or reloads the
saved split when resuming), builds the network from a base model or from scratch,
trains it in quick or full mode, fits a temperature on the validation split, evaluates
on the test split (per pool too) and saves the model into the user's library with a
card that records how it was made. Front doors only collect settings and show progress.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk import paths
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice, cpu_supports_bf16, select_device
from xraydesk.model.operating_rule import OperatingRule
from xraydesk.trainer.checkpoint import RunDir
from xraydesk.trainer.config import RunContext, TrainConfig, Trained, TrainingMode
from xraydesk.trainer.dataset import (
    DatasetReport,
    DataSource,
    Sample,
    check_dataset,
    display_name,
)
from xraydesk.trainer.metrics import choose_temperature, evaluate
from xraydesk.trainer.ood_stats import add_trust_statistics
from xraydesk.trainer.operating_choice import validation_rule
from xraydesk.trainer.progress import ProgressCallback, Reporter, TrainingError, TrainingStage
from xraydesk.trainer.split import (
    assign_splits,
    check_split,
    read_split,
    split_summary,
    write_split,
)
from xraydesk.trainer.starting_point import (  # noqa: F401 (cli, wizard, spark import them here)
    default_base,
    needs_torch,
    prepare_network,
    refuse_taken_name,
    resolve_base,
)
from xraydesk.trainer.trained_card import (  # noqa: F401 (small_test_warning: cli/train)
    TrainedModel,
    save_trained_model,
    small_test_warning,
    trained_card,
)

ENGINE_VERSION = "xraydesk.train/1"  # a stable identifier in cards; not the module path


@dataclass
class TrainResult:
    card_path: Path
    card: ModelCard
    test: dict[str, Any]  # metrics on the test split (temperature applied), ROC points included
    validation: dict[str, Any]
    history: list[dict[str, Any]]
    seconds: float
    device: str
    base_model: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def extras_dir(self) -> Path:
        return self.card_path.with_suffix("")


# -- data ------------------------------------------------------------------------------------


def check_data(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> DatasetReport:
    """Check the config's data (wizard page 1, and the first step of every run)."""
    reporter = Reporter(progress, cancel)

    def on_file(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            reporter.emit(TrainingStage.CHECKING, message="Checking images", done=done, total=total)

    return check_dataset(
        [DataSource.parse(spec) for spec in config.data],
        label_map=config.label_map,
        classes=config.classes,
        class_names=config.class_names,
        min_per_class=config.min_per_class,
        progress=on_file,
        cancel=cancel,
    )


# -- the run ---------------------------------------------------------------------------------


def train_model(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    resume: bool = False,
    restart: bool = False,
    finish_early: bool = False,
    output_dir: Path | None = None,
) -> TrainResult:
    """Train, evaluate and save a model; returns where it went and how well it did.

    ``resume`` continues an unfinished run of the same name with its saved settings
    (only the device may change); ``restart`` discards it; ``finish_early`` ends a
    resumed full run with the best epoch so far. ``output_dir`` saves somewhere other
    than the user library (used to make bundled models). Raises ``TrainingError``,
    ``DatasetError``, ``ModelError`` (all ``XRayDeskError``) or ``Cancelled`` (xraydesk.errors).
    """
    started = time.perf_counter()
    reporter = Reporter(progress, cancel)
    config.validate()
    missing = needs_torch(config)
    if missing:
        raise TrainingError(missing)
    refuse_taken_name(config.name, output_dir)
    run = _open_run(config.name, resume, restart, finish_early)
    wanted, resuming = config, run.exists()
    saved = run.read_config() if resuming else {}
    if resuming:
        config = TrainConfig.from_dict(saved["config"])
        config.device = wanted.device  # a run may move to another device; nothing else changes
    # Base model and device first: a wrong --base must not leave a run folder behind.
    base = resolve_base(config.base)
    device = select_device(config.device)
    if resuming:
        data = _resumed_data(run, saved, _differences(config, wanted), reporter)
    else:
        data = _new_data(run, config, reporter, cancel)
    run.create()

    network, prep = prepare_network(config, data.classes, base)
    ctx = RunContext(
        config=config,
        run=run,
        samples=data.samples,
        splits=data.splits,
        classes=data.classes,
        prep=prep,
        network=network,
        scratch=base is None,
        device=device,
        reporter=reporter,
        finish_early=finish_early,
        base=base,
    )
    trained = _train(ctx)
    return _evaluate_and_save(ctx, base, trained, data, started, output_dir)


@dataclass
class _RunData:
    """The run's samples and split, as checked and split now or as saved by a killed run."""

    samples: list[Sample]
    splits: list[str]
    classes: list[str]
    class_names: dict[str, str]
    summary: dict[str, Any]
    problems: list[str]


@dataclass
class _Evaluation:
    temperature: float
    test: dict[str, Any]
    validation: dict[str, Any]
    calibration: dict[str, Any]  # the fitted temperature, and whether it was kept
    rule: OperatingRule | None = None  # chosen on the validation split, marked as such


def _open_run(name: str, resume: bool, restart: bool, finish_early: bool) -> RunDir:
    """The run folder; an unfinished run is neither silently continued nor overwritten."""
    run = RunDir(name)
    if run.exists() and restart:
        run.remove()
    if run.exists() and not (resume or finish_early):
        raise TrainingError(
            f"An unfinished training run named {name!r} exists ({run.root}); resume it "
            "(--resume) or discard it and start again (--restart)."
        )
    if (resume or finish_early) and not run.exists():
        raise TrainingError(f"There is no unfinished training run named {name!r} to resume.")
    return run


def _resumed_data(
    run: RunDir, saved: dict[str, Any], ignored: list[str], reporter: Reporter
) -> _RunData:
    samples, splits = read_split(run.split_path)
    note = f" (its saved settings are kept; ignored: {', '.join(ignored)})" if ignored else ""
    reporter.emit(TrainingStage.SPLITTING, message=f"Resuming the run in {run.root}{note}")
    return _RunData(
        samples=samples,
        splits=splits,
        classes=saved["classes"],
        class_names=saved["class_names"],
        summary=saved["data"],
        problems=saved["problems"],
    )


def _new_data(
    run: RunDir, config: TrainConfig, reporter: Reporter, cancel: threading.Event | None
) -> _RunData:
    """Check the data, split it by patient, and save split and settings in a new run folder."""
    report = check_data(config, reporter.callback, cancel)
    reporter.check_cancel("Checking was cancelled.")
    report.raise_if_refused()
    reporter.emit(
        TrainingStage.SPLITTING, message="Splitting by patient into train, validation and test"
    )
    samples = report.samples
    splits = assign_splits(samples, config.fractions, config.seed)
    check_split(samples, splits, report.classes)
    data = _RunData(
        samples=samples,
        splits=splits,
        classes=report.classes,
        class_names=report.class_names,
        summary=report.summary(),
        problems=report.problems(),
    )
    run.create()
    write_split(run.split_path, samples, splits)
    run.write_config(
        {
            "config": config.to_dict(),
            "classes": data.classes,
            "class_names": data.class_names,
            "data": data.summary,
            "problems": data.problems,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
        }
    )
    return data


def _train(ctx: RunContext) -> Trained:
    if ctx.config.mode == TrainingMode.QUICK:
        from xraydesk.trainer.quick import train_quick

        return train_quick(ctx)
    from xraydesk.trainer.full import train_full

    return train_full(ctx)


def _evaluate_and_save(
    ctx: RunContext,
    base: ModelCard | None,
    trained: Trained,
    data: _RunData,
    started: float,
    output_dir: Path | None,
) -> TrainResult:
    """Calibrate and evaluate the trained network, save it with its card, drop the run."""
    config, reporter = ctx.config, ctx.reporter
    reporter.emit(TrainingStage.EVALUATING, message="Calibrating on validation, evaluating on test")
    evaluation = _evaluate(ctx, trained)
    reporter.emit(TrainingStage.SAVING, message="Saving the model")
    problems = data.problems + [f"{p}: {c}" for p, c in trained.failed]
    seconds = time.perf_counter() - started
    split = split_summary(data.samples, data.splits, config.fractions, config.seed)
    card = _make_card(config, ctx, base, evaluation, trained, data, split, seconds)
    add_trust_statistics(ctx, trained, card)
    directory = Path(output_dir) if output_dir is not None else paths.user_models_dir()
    card_path = save_trained_model(
        directory,
        card,
        trained.network if trained.network is not None else trained.state,
        lambda target: shutil.copyfile(ctx.run.split_path, target),
        trained.history,
        {"test": evaluation.test, "validation": evaluation.validation},
        problems,
    )
    ctx.run.remove()
    reporter.emit(TrainingStage.DONE, message=f"Saved {card.label} to {card_path}")
    return TrainResult(
        card_path=card_path,
        card=ModelCard.read(card_path, source="user" if output_dir is None else "file"),
        test=evaluation.test,
        validation=evaluation.validation,
        history=trained.history,
        seconds=seconds,
        device=ctx.device.label,
        base_model=base.label if base else None,
        problems=problems,
    )


def _evaluate(ctx: RunContext, trained: Trained) -> _Evaluation:
    """Fit the temperature on validation; metrics on test (raw ones too) and validation.
    Rows whose logits are not finite (images that failed to load) are left out."""
    labels, samples, classes = ctx.labels, ctx.samples, ctx.classes
    val_idx, test_idx = ctx.indices("val"), ctx.indices("test")
    val_ok = np.isfinite(trained.val_logits).all(axis=1)
    test_ok = np.isfinite(trained.test_logits).all(axis=1)
    temperature, calibration = choose_temperature(
        trained.val_logits[val_ok], labels[val_idx][val_ok]
    )
    sources_test = [samples[i].source for i in test_idx]
    test = evaluate(
        trained.test_logits[test_ok],
        labels[test_idx][test_ok],
        classes,
        temperature,
        sources=[s for s, ok in zip(sources_test, test_ok, strict=True) if ok],
        curves=True,
    )
    test["uncalibrated"] = _uncalibrated(
        trained.test_logits[test_ok], labels[test_idx][test_ok], classes
    )
    val_sources = [samples[i].source for i, ok in zip(val_idx, val_ok, strict=True) if ok]
    validation = evaluate(
        trained.val_logits[val_ok],
        labels[val_idx][val_ok],
        classes,
        temperature,
        sources=val_sources,
        curves=True,
    )
    rule = validation_rule(
        trained.val_logits[val_ok], labels[val_idx][val_ok], temperature, sorted(set(val_sources))
    )
    return _Evaluation(temperature, test, validation, calibration, rule)


def _differences(saved: TrainConfig, wanted: TrainConfig) -> list[str]:
    """Settings asked for on resume that differ from the run's own (they are not applied)."""
    a, b = saved.to_dict(), wanted.to_dict()
    a["data"] = [DataSource.parse(d).to_dict() for d in a["data"]]
    b["data"] = [DataSource.parse(d).to_dict() for d in b["data"]]
    return [key for key in a if key != "name" and a[key] != b.get(key)]


def _uncalibrated(logits: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    raw = evaluate(logits, y, classes, 1.0, intervals=False)
    return {"ece": raw["ece"], "nll": raw["nll"]}


def _make_card(
    config: TrainConfig,
    ctx: RunContext,
    base: ModelCard | None,
    evaluation: _Evaluation,
    trained: Trained,
    data: _RunData,
    split: dict[str, Any],
    seconds: float,
) -> ModelCard:
    data_summary, class_names = data.summary, data.class_names
    model = TrainedModel(
        config=config,
        classes=ctx.classes,
        names=[class_names.get(c) or display_name(c) for c in ctx.classes],
        prep=ctx.prep,
        temperature=evaluation.temperature,
        calibration=evaluation.calibration,
        test=evaluation.test,
        validation=evaluation.validation,
        images=data_summary["images"],
        pools=", ".join(s["name"] for s in data_summary["sources"]),
        how=f"`xraydesk train` ({config.mode} mode)",
        base=base,
        operating_rule=evaluation.rule,
    )
    return trained_card(
        model,
        {
            "engine": ENGINE_VERSION,
            "mode": config.mode,
            "settings": config.to_dict(),
            "device": ctx.device.label,
            "seconds": round(seconds, 1),
            "data": data_summary,
            "split": split,
            "details": trained.details,
            "history": trained.history,
        },
    )


# -- estimates ---------------------------------------------------------------------------------

# Images per second at 224 px on the reference CPU (2 cores, AVX-512 BF16, bf16 autocast).
CPU_TRAIN_224 = 23.0
CPU_FORWARD_224 = 60.0
GPU_SPEEDUP = 25.0
FP32_SLOWDOWN = 0.6


def estimate_seconds(
    mode: str,
    counts: dict[str, int],
    size: int,
    epochs: int,
    device: DeviceChoice | str = "auto",
    cached_fraction: float = 0.0,
) -> float:
    """A rough duration for the wizard's setup page (the live ETA replaces it once started).

    ``counts`` holds the split sizes (train, val, test); speed scales with pixel count.
    """
    choice = device if isinstance(device, DeviceChoice) else select_device(device)
    scale = (224.0 / size) ** 2
    factor = GPU_SPEEDUP if choice.type == "cuda" else 1.0
    if choice.type == "cpu" and not (choice.autocast_dtype is not None and cpu_supports_bf16()):
        factor *= FP32_SLOWDOWN
    forward = CPU_FORWARD_224 * scale * factor
    train = CPU_TRAIN_224 * scale * factor
    total = sum(counts.values())
    if mode == TrainingMode.QUICK:
        return 5.0 + total * (1 - cached_fraction) / forward + 2e-3 * counts.get("train", 0)
    per_epoch = counts.get("train", 0) / train + counts.get("val", 0) / forward
    return 10.0 + epochs * per_epoch + (counts.get("val", 0) + counts.get("test", 0)) / forward
