"""The training engine end to end, on 12 Kermany images per class at 64 px.

Quick mode (CLI), full mode from a library model with a new class set, cancel and
resume (matching an uninterrupted run), a resumed run after SIGKILL, and every refusal.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.model_factory import make_test_model
from tests.paths import REPO_ROOT
from tests.training_data import kermany_rows, write_manifest
from xraydesk import paths
from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.errors import Cancelled, NoModelError
from xraydesk.imaging import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.trainer import (
    DatasetError,
    TrainConfig,
    TrainingError,
    estimate_seconds,
    train_model,
)
from xraydesk.trainer.checkpoint import BEST, LAST, RunDir


def tiny(subset: Path, name: str, **overrides) -> TrainConfig:
    settings = dict(data=[str(subset)], name=name, size=64, batch=8, base="scratch")
    settings.update(overrides)
    return TrainConfig(**settings)


def split_rows(card_path: Path) -> list[dict[str, str]]:
    with open(card_path.with_suffix("") / "split.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- quick mode ------------------------------------------------------------------------------------


def test_quick_run_from_the_cli_is_listed_used_and_cached(subset, no_bundled, monkeypatch, capsys):
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")  # compare saved model and features exactly
    argv = ["train", str(subset), "--name", "kq", "--size", "64", "--batch", "8"]
    assert main([*argv, "--base", "scratch"]) == 0
    out = capsys.readouterr().out
    assert "Saved kq 1.0 to" in out and "AUC bacterial vs viral" in out
    assert "confusion matrix" in out and "PRECISION" in out

    card_path = paths.user_models_dir() / "kq.json"
    card = ModelCard.read(card_path)
    assert card.class_ids == ["normal", "bacterial", "viral"]
    assert card.base_model is None and card.preprocessing.size == 64
    assert card.temperature > 0
    training = card.training
    assert training["mode"] == "quick" and training["data"]["counts"] == {
        "normal": 12,
        "bacterial": 12,
        "viral": 12,
    }
    assert training["split"]["grouped_by"] == "patient"
    test = card.metrics["test"]
    assert set(test["per_class"]) == {"normal", "bacterial", "viral"}
    assert {"accuracy", "ece", "confusion_matrix", "pairwise_auc", "macro_auc"} <= set(test)
    assert sum(map(sum, test["confusion_matrix"])) == test["n"]
    evaluation = json.loads((card_path.with_suffix("") / "evaluation.json").read_text())
    assert set(evaluation["test"]["roc"]) == {"normal", "bacterial", "viral"}

    rows = split_rows(card_path)
    assert len(rows) == 36
    patients: dict[str, set[str]] = {}
    for row in rows:
        patients.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(s) == 1 for s in patients.values())

    # listed, and used by classify
    assert main(["models"]) == 0
    assert "kq" in capsys.readouterr().out
    test_rows = [r for r in rows if r["split"] == "test"]
    assert main(["classify", "--model", "kq", test_rows[0]["path"]]) == 0

    # the head lives in the network's own layer: the saved model reproduces the test metrics
    classifier = Classifier.load(card, device="cpu")
    index = {cid: k for k, cid in enumerate(card.class_ids)}
    predicted = np.array(
        [index[classifier.predict(load_xray(r["path"])).predicted] for r in test_rows]
    )
    truth = np.array([index[r["label"]] for r in test_rows])
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    assert confusion.tolist() == test["confusion_matrix"]

    # a second run on the same images reuses the cached features
    again = train_model(tiny(subset, "kq-again"))
    assert again.card.training["details"]["features_cached"] == 36
    assert again.card.metrics["test"]["confusion_matrix"] == test["confusion_matrix"]


def test_quick_cli_reports_each_head_fit_n_intervals_and_population(subset, no_bundled, capsys):
    """Issue 19 #6 and #7: on a pipe the head's progress moves past 0/9 and ends at 9/9;
    the summary gives n and 95 % intervals and warns about the small test split; the card
    stores them, the calibration decision and the population stated with --population-age."""
    argv = ["train", str(subset), "--name", "kp", "--size", "64", "--batch", "8"]
    assert main([*argv, "--base", "scratch", "--population-age", "1-5"]) == 0
    captured = capsys.readouterr()
    head = [line for line in captured.err.splitlines() if "head" in line.lower()]
    assert head[0].startswith("Fitting the head (C=0.0001)  0/9")
    assert any(line.startswith("Fitted the head (C=0.0001: validation loss") for line in head)
    assert head[-1].startswith("Head fitted (C=") and head[-1].endswith(" 9/9")
    out = captured.out
    assert "accuracy " in out and "(95 % CI " in out and ", n=" in out
    assert "RECALL (95 % CI)" in out and "warning: Small test split" in out
    card = ModelCard.read(paths.user_models_dir() / "kp.json")
    test = card.metrics["test"]
    assert test["accuracy_ci95"][0] <= test["accuracy"] <= test["accuracy_ci95"][1]
    assert test["min_class_n"] < 30 and "per_class" in test
    assert any(line.startswith("Small test split") for line in card.limitations)
    calibration = card.metrics["calibration"]
    assert card.temperature == (
        calibration["fitted_temperature"] if calibration["applied"] else 1.0
    )
    assert (
        calibration["validation_ece_fitted"] < calibration["validation_ece_uncalibrated"]
    ) == calibration["applied"]
    assert card.population.age_text == "1-5 years"
    assert main(["models", "--json"]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["test"]["n"] == test["n"] and listed["test"]["small"]
    assert listed["test"]["accuracy_ci95"] == test["accuracy_ci95"]
    assert listed["population"]["age_ranges"] == [{"min_years": 1, "max_years": 5}]


def test_pools_combined_with_a_label_map_are_reported_per_pool(shared_data, no_bundled, tmp_path):
    """The bundled chest model's route: several pools, bacterial/viral -> pneumonia."""
    kermany = write_manifest(tmp_path / "k.csv", kermany_rows(shared_data, 8))
    nih_rows = []
    with open(shared_data / "ozturk-nih" / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] in ("normal", "pneumonia") and row["patient"]:
                nih_rows.append((str(shared_data / "ozturk-nih" / row["path"]), row["label"], ""))
    nih_rows = [r for r in nih_rows if r[1] == "normal"][:12] + [
        r for r in nih_rows if r[1] == "pneumonia"
    ][:12]
    nih = write_manifest(tmp_path / "n.csv", nih_rows)  # patient ids from NIH file names
    config = tiny(
        kermany,
        "pools",
        data=[f"kermany={kermany}", f"nih={nih}"],
        label_map={"bacterial": "pneumonia", "viral": "pneumonia"},
        classes=["normal", "pneumonia"],
    )
    result = train_model(config)
    data = result.card.training["data"]
    assert data["per_source"] == {
        "kermany": {"normal": 8, "pneumonia": 16},
        "nih": {"normal": 12, "pneumonia": 12},
    }
    assert data["patients_from"]["nih"].startswith("manifest column or file names (24 of 24")
    per_source = result.card.metrics["test"]["per_source"]
    assert set(per_source) == {"kermany", "nih"}
    assert sum(m["n"] for m in per_source.values()) == result.test["n"]
    rows = split_rows(result.card_path)
    assert {r["raw_label"] for r in rows if r["label"] == "pneumonia"} == {
        "bacterial",
        "viral",
        "pneumonia",
    }
    for pool in ("kermany", "nih"):  # every pool reaches every split
        assert {r["split"] for r in rows if r["source"] == pool} == {"train", "val", "test"}


# -- full mode -------------------------------------------------------------------------------------


def test_one_epoch_full_run_from_a_library_model_with_new_classes(
    subset, no_bundled, test_model_path
):
    seen = []
    result = train_model(
        tiny(subset, "kf", mode="full", epochs=1, base=str(test_model_path)), seen.append
    )
    card = result.card
    assert card.base_model == "test-3class 0.0-test"  # normal/pneumonia/covid19 -> new head
    assert card.class_ids == ["normal", "bacterial", "viral"]
    assert card.training["mode"] == "full" and len(result.history) == 1
    assert card.training["details"]["best_epoch"] == 1
    record = result.history[0]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"} <= set(record)
    phases = {p.phase for p in seen}
    assert {"checking", "splitting", "training", "evaluating", "saving", "done"} <= phases
    steps = [p for p in seen if p.phase == "training" and p.step]
    assert steps and all(p.epochs == 1 and p.loss is not None for p in steps)
    assert any(p.record is not None for p in seen)
    assert not RunDir("kf").root.exists()  # the run folder goes once the model is saved
    prediction = Classifier.load(result.card_path, device="cpu").predict(
        load_xray(split_rows(result.card_path)[0]["path"])
    )
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_a_model_trained_from_a_grouped_card_keeps_its_groups(subset, no_bundled, tmp_path):
    """The paediatric card groups bacterial and viral (``model.class_groups``): a model
    fine-tuned from it on the same classes keeps the group, so its withheld answers still
    name the finding."""
    from xraydesk.model.class_groups import ClassGroup

    classes = (("normal", "Normal"), ("bacterial", "Bacterial"), ("viral", "Viral"))
    base_path = make_test_model(tmp_path / "base", name="kids-base", classes=classes)
    group = ClassGroup("pneumonia", "Pneumonia", ("bacterial", "viral"))
    base = ModelCard.read(base_path)
    base.class_groups = (group,)
    base.write(base_path)
    result = train_model(tiny(subset, "kg", base=str(base_path)), lambda _: None)
    assert result.card.class_groups == (group,)
    assert ModelCard.read(result.card_path).class_groups == (group,)


def test_a_run_seed_changes_the_run_but_not_its_split(subset, no_bundled, monkeypatch):
    """``run_seed`` repeats a recipe with other random draws on the same test films, so
    the spread between two runs of one recipe can be measured (campaign, issue 25)."""
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
    first = train_model(tiny(subset, "s0", mode="full", epochs=1))
    same = train_model(tiny(subset, "s0b", mode="full", epochs=1, run_seed=0))
    other = train_model(tiny(subset, "s1", mode="full", epochs=1, run_seed=1))
    assert split_rows(first.card_path) == split_rows(other.card_path)
    assert same.history[0]["train_loss"] == pytest.approx(first.history[0]["train_loss"], rel=1e-5)
    assert other.history[0]["train_loss"] != pytest.approx(first.history[0]["train_loss"], rel=1e-3)
    assert other.card.training["settings"]["run_seed"] == 1
    with pytest.raises(TrainingError, match="seeds must be whole numbers"):
        train_model(tiny(subset, "neg", run_seed=-1))


def test_cancel_mid_epoch_then_resume_matches_an_uninterrupted_run(subset, no_bundled, monkeypatch):
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
    reference = train_model(tiny(subset, "ref", mode="full", epochs=2))

    cancel = threading.Event()

    def cancel_in_epoch_two(p):
        if p.epoch == 2 and p.step == 1:
            cancel.set()

    with pytest.raises(Cancelled, match="cancelled in epoch 2 of 2"):
        train_model(tiny(subset, "cut", mode="full", epochs=2), cancel_in_epoch_two, cancel)
    run = RunDir("cut")
    state = run.load(LAST)
    assert (state["epoch"], state["step"]) == (1, 1) and run.has(BEST)
    assert not (paths.user_models_dir() / "cut.json").exists()

    seen = []
    asked = tiny(subset, "cut", mode="full", epochs=2, seed=5)  # the saved seed (0) wins
    resumed = train_model(asked, seen.append, resume=True)
    assert any("ignored: seed" in p.message for p in seen)
    assert len(resumed.history) == 2
    for a, b in zip(reference.history, resumed.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
    assert resumed.test["confusion_matrix"] == reference.test["confusion_matrix"]


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch(subset, no_bundled, tmp_path):
    script = tmp_path / "train_then_die.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from xraydesk import paths
            from xraydesk.trainer import TrainConfig, train_model
            paths.bundled_models_dir = lambda: __import__("pathlib").Path({str(no_bundled)!r})

            def report(p):
                if p.phase == "training" and p.step:
                    print("STEP", p.epoch, p.step, flush=True)

            train_model(TrainConfig(data=[{str(subset)!r}], name="killed", mode="full",
                        epochs=2, size=64, batch=8, base="scratch"), report)
            """
        )
    )
    env = {**os.environ, "XRAYDESK_PRECISION": "fp32", "PYTHONPATH": str(REPO_ROOT)}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
    )
    killed_at = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("STEP 2 2"):  # epoch 1 is checkpointed, epoch 2 is under way
            proc.send_signal(signal.SIGKILL)
            killed_at = line.strip()
            break
    proc.wait(timeout=120)
    assert killed_at and proc.returncode == -signal.SIGKILL

    run = RunDir("killed")
    assert run.load(LAST)["epoch"] == 1
    (run.root / ".last.pt.12345.tmp").write_bytes(b"half a checkpoint")  # killed mid-write
    result = train_model(tiny(subset, "killed", mode="full", epochs=2), resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert ModelCard.read(paths.user_models_dir() / "killed.json").training["mode"] == "full"


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("started", ["as_usual", "with_sigint_ignored"])
def test_ctrl_c_stops_the_cli_cleanly_and_resume_finishes(subset, no_bundled, started):
    """Also when started as a shell without job control starts a background job, SIGINT
    ignored (issue 19 #9): the CLI installs its own handler, so Ctrl-C still stops it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "xraydesk", "train", str(subset), "--name", "ctrl-c"]
    argv += [
        "--mode",
        "full",
        "--epochs",
        "50",
        "--size",
        "64",
        "--batch",
        "8",
        "--base",
        "scratch",
    ]
    preexec = _ignore_sigint if started == "with_sigint_ignored" else None
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT, preexec_fn=preexec
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("epoch 1/50"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert "stopping after this batch" in rest and "--resume" in rest
    assert RunDir("ctrl-c").load(LAST)["epoch"] >= 1
    assert main(["train", str(subset), "--name", "ctrl-c", "--resume", "--finish"]) == 0
    assert (paths.user_models_dir() / "ctrl-c.json").is_file()


# -- refusals --------------------------------------------------------------------------------------


def test_refuses_a_bundled_name(subset, monkeypatch, tmp_path, capsys):
    bundled = tmp_path / "bundled"
    make_test_model(bundled, name="chest-3class")
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
    with pytest.raises(TrainingError, match="bundled model"):
        train_model(tiny(subset, "chest-3class"))
    assert main(["train", str(subset), "--name", "chest-3class"]) == 2
    assert "bundled models are never overwritten" in capsys.readouterr().err
    assert (bundled / "chest-3class.json").is_file()


def test_refuses_an_existing_user_model_and_an_unfinished_run(subset, no_bundled, test_model_path):
    library = paths.user_models_dir()
    for f in test_model_path.parent.iterdir():
        shutil.copy(f, library / f.name)
    with pytest.raises(TrainingError, match="already in your library"):
        train_model(tiny(subset, "test-3class"))

    run = RunDir("pending")
    run.create()
    run.write_config({"config": tiny(subset, "pending").to_dict()})
    with pytest.raises(TrainingError, match=r"unfinished training run .*--resume.*--restart"):
        train_model(tiny(subset, "pending"))
    with pytest.raises(TrainingError, match="no unfinished training run named 'other'"):
        train_model(tiny(subset, "other"), resume=True)


def test_refuses_bad_data_and_bad_settings(shared_data, subset, no_bundled, tmp_path):
    one_class = write_manifest(tmp_path / "one.csv", kermany_rows(shared_data, 12, ("normal",)))
    with pytest.raises(DatasetError, match="Only one class"):
        train_model(tiny(one_class, "one"))
    with pytest.raises(TrainingError, match="epochs must be at least 1"):
        train_model(tiny(subset, "bad", epochs=0))
    with pytest.raises(TrainingError, match="mode must be one of quick, full"):
        train_model(tiny(subset, "bad", mode="slow"))
    with pytest.raises(NoModelError, match="no model named 'no-such-model'"):
        train_model(tiny(subset, "nobase", base="no-such-model"))
    assert not RunDir("one").root.exists() and not RunDir("nobase").root.exists()


def test_cli_check_reports_counts_and_problems(shared_data, tmp_path, capsys):
    rows = kermany_rows(shared_data, 10, ("normal", "viral"))
    rows.append((str(tmp_path / "gone.png"), "viral", ""))
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert main(["train", str(manifest), "--name", "x", "--check"]) == 0
    out = capsys.readouterr().out
    assert "Viral pneumonia (viral)" in out and "20 usable images" in out
    assert "gone.png: unreadable, left out (file not found)" in out


# -- the model library from the CLI ----------------------------------------------------------------


def test_models_rename_and_delete(test_model_path, no_bundled, capsys):
    library = paths.user_models_dir()
    for f in test_model_path.parent.iterdir():
        shutil.copy(f, library / f.name)
    (library / "test-3class").mkdir()
    (library / "test-3class" / "split.csv").write_text("path,label\n")
    assert main(["models", "rename", "test-3class", "mine"]) == 0
    assert (library / "mine.json").is_file() and (library / "mine" / "split.csv").is_file()
    assert main(["models"]) == 0
    assert "mine" in capsys.readouterr().out
    assert main(["models", "delete", "mine", "--yes"]) == 0
    assert list(library.iterdir()) == []
    assert main(["models", "delete", "mine", "--yes"]) == 2
    assert "no model named 'mine'" in capsys.readouterr().err


def test_models_refuse_changing_a_bundled_model(monkeypatch, tmp_path, capsys):
    bundled = tmp_path / "bundled"
    make_test_model(bundled, name="chest-3class")
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
    assert main(["models", "delete", "chest-3class", "--yes"]) == 2
    assert main(["models", "rename", "chest-3class", "other"]) == 2
    assert "bundled models cannot be changed" in capsys.readouterr().err
    assert (bundled / "chest-3class.json").is_file()


def test_time_estimate_grows_with_work():
    counts = {"train": 700, "val": 150, "test": 150}
    quick = estimate_seconds("quick", counts, 224, 1, "cpu")
    full = estimate_seconds("full", counts, 224, 5, "cpu")
    assert 0 < quick < full < estimate_seconds("full", counts, 224, 10, "cpu")
    assert estimate_seconds("full", counts, 128, 5, "cpu") < full
