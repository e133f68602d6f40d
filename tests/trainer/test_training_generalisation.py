"""Issue 15: held-out sources, the shortcut audit, training against the shortcut, GPU run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.paths import REPO_ROOT
from tests.training_data import write_manifest
from xraydesk.classifier import Classifier
from xraydesk.model.card import ModelCard
from xraydesk.model.device import cpu_supports_bf16
from xraydesk.trainer.augment import AugmentConfig, augment, sample_rng
from xraydesk.trainer.config import TrainConfig
from xraydesk.trainer.dataset import DataSource, read_source
from xraydesk.trainer.full import group_balanced_probabilities
from xraydesk.trainer.held_out import RESULT_FILE, leave_one_source_out, train_within
from xraydesk.trainer.shortcut_audit import (
    REGION_NAMES,
    AuditRegions,
    audit_shortcuts,
    class_activation_maps,
    mask_shortcuts,
    region_shares,
)

sys.path.insert(0, str(REPO_ROOT / "training"))

import train_bundled
from model_card_md import render_model_card


def pool_rows(shared_data: Path, pool: str, per_label: int) -> list[tuple[str, str, str]]:
    """The first ``per_label`` images of each label of a pool, with absolute paths."""
    counts: dict[str, int] = {}
    rows = []
    for s in read_source(DataSource(shared_data / pool)):
        if counts.get(s.label, 0) < per_label:
            counts[s.label] = counts.get(s.label, 0) + 1
            rows.append((str(s.path), s.label, s.patient or ""))
    return rows


# -- the audit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64, 224])
def test_regions_are_disjoint_cover_the_input_and_hide_no_lung(size):
    regions = AuditRegions()
    masks = regions.masks(size)
    assert list(masks) == list(REGION_NAMES)
    total = sum(m.int() for m in masks.values())
    assert bool((total == 1).all()), "every pixel in exactly one region"
    hidden = regions.hidden(size)
    assert not bool((hidden & masks["lung"]).any())
    assert masks["lung"].float().mean() > 0.4  # the lungs are most of a chest film
    corner = int(regions.corner * size)
    assert bool(masks["corners"][:corner, :corner].all())


def test_cam_mass_is_shared_by_region():
    masks = AuditRegions().masks(64)
    cams = torch.zeros(3, 8, 8)
    cams[0, 0, 0] = 1.0  # top-left cell only
    cams[1, 3:5, 3:5] = 1.0  # centre
    shares = region_shares(cams, masks)  # third: no positive mass at all
    assert shares.shape == (3, 4)
    assert np.allclose(shares.sum(axis=1), 1.0)
    corners, lung = REGION_NAMES.index("corners"), REGION_NAMES.index("lung")
    assert shares[0, corners] > 0.9
    assert shares[1, lung] > 0.99
    area = [float(m.float().mean()) for m in masks.values()]
    assert np.allclose(shares[2], area)  # nothing speaks for the class: the areas


def test_masking_keeps_every_visible_pixel():
    hidden = AuditRegions().hidden(32)
    inputs = torch.rand(3, 32, 32)
    masked = mask_shortcuts(inputs, hidden)
    assert torch.equal(masked[:, ~hidden], inputs[:, ~hidden])
    for c in range(3):
        assert torch.allclose(
            masked[c][hidden], inputs[c][~hidden].mean().expand(int(hidden.sum()))
        )


def test_cam_is_the_head_times_the_last_stage(test_classifier):
    """For a ResNet the CAM's spatial mean plus the bias is the logit (before ReLU)."""
    net, device = test_classifier.network, test_classifier.device
    x = torch.randn(2, 1, 64, 64)
    fp32 = device.at_fp32()
    logits, cams = class_activation_maps(net, x, fp32)
    assert cams.shape == (2, 2, 2) and bool((cams >= 0).all())
    with torch.no_grad():
        assert torch.allclose(logits, net(x), atol=1e-4)


def test_audit_of_a_real_model_on_two_pools(shared_data, test_model_path, tmp_path):
    classifier = Classifier.load(test_model_path, device="cpu")
    samples = []
    for pool in ("covid19-radiography", "ozturk-nih"):
        rows = [r for r in pool_rows(shared_data, pool, 4) if r[1] in ("normal", "covid19")]
        samples += read_source(DataSource(write_manifest(tmp_path / f"{pool}.csv", rows), pool))
    audit = audit_shortcuts(
        classifier.network,
        classifier.preprocessing,
        samples,
        range(len(samples)),
        classifier.class_ids,
        classifier.device,
        batch_size=8,
    )
    assert audit["n"] == len(samples) == 16 and audit["unreadable"] == 0
    assert sum(audit["cam_share"].values()) == pytest.approx(1.0)
    assert sum(audit["area"].values()) == pytest.approx(1.0)
    assert 0 <= audit["accuracy"] <= 1 and 0 <= audit["accuracy_masked"] <= 1
    assert audit["accuracy_drop"] == pytest.approx(audit["accuracy"] - audit["accuracy_masked"])
    assert set(audit["per_source"]) == {"covid19-radiography", "ozturk-nih"}
    assert sum(r["n"] for r in audit["per_source"].values()) == 16
    json.dumps(audit)  # goes into the card as it is


# -- training against the shortcut -------------------------------------------------------------


def test_shortcut_augmentations_are_off_by_default_and_deterministic():
    image = torch.rand(1, 64, 64)
    plain = AugmentConfig()
    assert plain.corner_erase_p == plain.marker_p == plain.thorax_crop_p == 0.0
    for cfg in (
        AugmentConfig(corner_erase_p=1.0),
        AugmentConfig(marker_p=1.0),
        AugmentConfig(thorax_crop_p=1.0),
    ):
        a = augment(image, sample_rng(1, 2, 3), cfg)
        b = augment(image, sample_rng(1, 2, 3), cfg)
        assert torch.equal(a, b) and a.shape == image.shape
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
        assert not torch.equal(a, augment(image, sample_rng(1, 2, 3), plain))
    assert AugmentConfig.from_dict(AugmentConfig(marker_p=0.5).to_dict()).marker_p == 0.5


def test_corner_erasing_and_markers_stay_near_corners_and_edges():
    from xraydesk.trainer.augment import _erase_corners, _paint_markers

    image = torch.rand(1, 100, 100, generator=torch.Generator().manual_seed(0))
    for seed in range(20):
        rng = np.random.default_rng(seed)
        erased = _erase_corners(image, rng, 0.18)
        changed = (erased != image)[0]
        assert changed.any() and not changed[18:82, :].any() and not changed[:, 18:82].any()
        painted = (_paint_markers(image, rng, 0.18) != image)[0]
        # a corner block starts within 0.18 of a corner and is at most 0.06 high; an edge
        # block lies within 0.14 of the top or bottom
        assert painted.any() and not painted[24:76, :].any()


def test_pool_balancing_weighs_every_pool_of_a_class_alike():
    labels = np.array([1] * 900 + [1] * 100 + [0] * 500)
    sources = np.array(["kids"] * 900 + ["adults"] * 100 + ["adults"] * 500)
    p = group_balanced_probabilities(labels, sources, power=0.0)
    assert p[:900].sum() == pytest.approx(p[900:1000].sum())
    assert p[labels == 0].sum() == pytest.approx(0.5)
    TrainConfig(data=["x"], name="x", imbalance="pools").validate()


# -- the recipe's hardware plan and profiles ---------------------------------------------------


def test_hardware_plan_on_this_cpu(monkeypatch):
    from xraydesk.trainer import batches, dataset

    try:
        plan = train_bundled.plan_hardware("cpu", None, None, None)
        assert plan["precision"] == ("bf16" if cpu_supports_bf16() else "fp32")
        assert plan["memory_format"] == "channels_last"
        assert plan["loading_threads"] == 1 and plan["image_cache_gb"] == 0.0
        assert batches._PLAN.workers == 1 and batches._PLAN.cache_bytes == 0
        monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
        assert train_bundled.plan_hardware("cpu", 16, 3, 0.5)["precision"] == "fp32"
        assert batches._PLAN.workers == 3 and batches._PLAN.cache_bytes == 2**29
        assert dataset._CHECK.workers == 3 and dataset._CHECK.remember
    finally:
        batches.configure_loading()
        dataset.configure_checking()


@pytest.mark.parametrize("name", ["chest-3class", "pediatric-pneumonia"])
@pytest.mark.parametrize("profile", ["gpu", "gpu-shortcut"])
def test_gpu_profiles_train_one_stage_at_224(name, profile):
    recipe = train_bundled.apply_profile(train_bundled.load_recipe(name), profile)
    stages = train_bundled.stage_settings(recipe)
    assert len(stages) == 1 and stages[0]["size"] == 224
    sources = {p: Path(f"/data/{p}/manifest.csv") for p in recipe["pools"]}
    config = train_bundled.train_config(recipe, Path("/data"), sources, stages[0])
    config.validate()
    assert recipe["held_out"]["note"]
    shipped = train_bundled.load_recipe(name)  # the shipped recipe is unchanged by profiles
    assert shipped["train"]["augment"] == {} and shipped.get("stages", []) == recipe_stages(name)
    with pytest.raises(SystemExit, match="no profile"):
        train_bundled.apply_profile(shipped, "tpu")


def recipe_stages(name: str) -> list:
    return json.loads((REPO_ROOT / "training" / "configs" / f"{name}.json").read_text()).get(
        "stages", []
    )


def test_cached_images_give_the_same_batches(shared_data, tmp_path):
    from xraydesk.model.preprocessing import Preprocessing
    from xraydesk.trainer.batches import batch_iterator, configure_loading

    samples = read_source(
        DataSource(
            write_manifest(tmp_path / "k.csv", pool_rows(shared_data, "kermany-pediatric", 4))
        )
    )
    prep = Preprocessing(size=48, equalize=True)
    order = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    aug = AugmentConfig()
    plain = [b.inputs for b in batch_iterator(samples, order, prep, aug, 3, 1)]
    try:
        configure_loading(workers=3, cache_bytes=2**24)
        for _ in range(2):  # filling the cache, then from it
            cached = [b.inputs for b in batch_iterator(samples, order, prep, aug, 3, 1)]
            assert all(torch.equal(a, b) for a, b in zip(plain, cached, strict=True))
    finally:
        configure_loading()


# -- held-out sources, end to end --------------------------------------------------------------


def two_class_pools(shared_data: Path, folder: Path, per_label: int) -> list[str]:
    specs = []
    for pool in ("covid19-radiography", "ozturk-nih", "covid-cxnet"):
        rows = [r for r in pool_rows(shared_data, pool, per_label) if r[1] in ("normal", "covid19")]
        specs.append(f"{pool}={write_manifest(folder / f'{pool}.csv', rows)}")
    return specs


@pytest.mark.slow
def test_leave_one_source_out_table_card_and_rerun(shared_data, tmp_path):
    config = TrainConfig(
        data=two_class_pools(shared_data, tmp_path, 12),
        name="loso",
        mode="full",
        epochs=1,
        size=32,
        batch=8,
        base="scratch",
        classes=["normal", "covid19"],
        device="cpu",
        fractions=(0.6, 0.2, 0.2),
    )
    work = tmp_path / "held-out"
    result = leave_one_source_out(config, work, pools=["covid-cxnet", "ozturk-nih"])
    row = result["sources"]["covid-cxnet"]
    assert row["n"] == 12 and row["trained_on"] == ["covid19-radiography", "ozturk-nih"]
    assert row["per_class"]["covid19"]["support"] == 12
    assert row["accuracy"] == pytest.approx(row["per_class"]["covid19"]["recall"])
    assert (work / "covid-cxnet" / RESULT_FILE).is_file()
    assert (work / "covid-cxnet" / "loso-without-covid-cxnet.json").is_file()
    # ozturk-nih held out leaves covid19-radiography and covid-cxnet: still both classes
    assert result["sources"]["ozturk-nih"]["n"] == 24
    # a rerun reuses the finished pools: nothing is trained again
    stamp = (work / "covid-cxnet" / "loso-without-covid-cxnet.json").stat().st_mtime_ns
    again = leave_one_source_out(config, work, pools=["covid-cxnet", "ozturk-nih"])
    assert again["sources"] == result["sources"]
    assert (work / "covid-cxnet" / "loso-without-covid-cxnet.json").stat().st_mtime_ns == stamp
    # a class the other pools lack is reported, not fatal
    alone = TrainConfig(**{**config.__dict__, "data": config.data[1:], "name": "loso2"})
    skipped = leave_one_source_out(alone, tmp_path / "h2", pools=["ozturk-nih"])
    assert "normal" in skipped["sources"]["ozturk-nih"]["skipped"]
    # one pool: nothing to hold out
    single = TrainConfig(**{**config.__dict__, "data": config.data[:1], "name": "loso3"})
    assert leave_one_source_out(single, tmp_path / "h3")["note"]

    # the card's Markdown table, from a real card
    card = ModelCard.read(work / "covid-cxnet" / "loso-without-covid-cxnet.json")
    card.metrics["held_out_sources"] = result
    md = render_model_card(
        card, {**train_bundled.load_recipe("chest-3class"), "pools": []}, tmp_path
    )
    assert "### Held-out sources" in md
    assert f"| covid-cxnet | 12 | {row['accuracy']:.3f} | {row['own_test_accuracy']:.3f} |" in md


@pytest.mark.slow
def test_a_deadline_ships_the_best_epoch_so_far(shared_data, tmp_path):
    config = TrainConfig(
        data=two_class_pools(shared_data, tmp_path, 10)[:1],
        name="deadline",
        mode="full",
        epochs=3,
        size=32,
        batch=8,
        base="scratch",
        classes=["normal", "covid19"],
        device="cpu",
    )
    deadline = threading.Event()

    def progress(p) -> None:
        if p.record is not None:  # the first epoch is done: time is up
            deadline.set()

    card_path = train_within(config, tmp_path / "out", progress, deadline)
    card = ModelCard.read(card_path)
    assert card.training["details"]["epochs_trained"] == 1
    assert card.training["details"]["best_epoch"] == 1


@pytest.mark.slow
def test_gpu_run_script_end_to_end_on_cpu_at_smoke_size(shared_data, tmp_path):
    """training/gpu_run.sh, as a later session runs it on a GPU, here on the CPU at 32 px."""
    out = tmp_path / "gpu-run"
    command = [
        "bash",
        str(REPO_ROOT / "training" / "gpu_run.sh"),
        str(out),
        "--data",
        str(shared_data),
    ]
    command += ["--", "--device", "cpu", "--limit", "12", "--epochs", "1", "--size", "32"]
    command += ["--time-budget", "600"]  # the script's 5.5 minutes are for a GPU, not this
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    models = out / "models"
    for name in ("chest-3class", "pediatric-pneumonia"):
        card = ModelCard.read(models / f"{name}.json")
        assert card.preprocessing.size == 32 and card.weights_dtype == "float16"
        assert card.version == {"chest-3class": "2.0", "pediatric-pneumonia": "1.1"}[name]
        audit = card.metrics["shortcut_audit"]
        assert audit["n"] == card.metrics["test"]["n"]
        assert card.training["hardware_plan"]["device"].startswith("CPU")
        md = (models / f"{name}.md").read_text()
        assert "### Shortcut audit" in md and "### Held-out sources" in md
        assert (models / name / "shortcut_audit.json").is_file()
        assert (out / "logs" / f"{name}.log").stat().st_size > 0
        assert (models / name / "held_out_sources.json").is_file()
    held = ModelCard.read(models / "chest-3class.json").metrics["held_out_sources"]
    assert set(held["sources"]) == {
        "kermany-pediatric",
        "covid19-radiography",
        "ozturk-nih",
        "covid-cxnet",
    }
    assert "no sub-source can be identified" in held["note"]
    assert ModelCard.read(models / "pediatric-pneumonia.json").metrics["held_out_sources"]["note"]
    assert (out / "work" / "chest-3class" / "held-out").is_dir()  # checkpoints outside the repo
    # run again: every stage and held-out pool is found done, nothing is trained again
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3000)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already trained" in (out / "logs" / "chest-3class.log").read_text()
