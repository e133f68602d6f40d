"""Training data: reading sources, checking images, refusals, the patient-grouped split,
and augmentation. Real images come from ../shared/data (read in place, never copied
into the repository; temporary folders hold symlinks or derived bad files only)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.training_data import POOL, kermany_rows, write_manifest
from xraydesk.trainer.augment import NO_AUGMENTATION, AugmentConfig, augment, sample_rng
from xraydesk.trainer.dataset import (
    DatasetError,
    DataSource,
    Sample,
    check_dataset,
    patient_from_name,
    read_source,
)
from xraydesk.trainer.split import assign_splits, check_split, read_split, write_split

# -- reading and checking ------------------------------------------------------------------------


def test_pool_manifest_works_as_it_is(shared_data):
    samples = read_source(DataSource(shared_data / POOL))  # folder with manifest.csv
    counts = Counter(s.label for s in samples)
    assert counts == {"normal": 1340, "bacterial": 2508, "viral": 1331}
    assert all(s.patient for s in samples)
    assert {s.source for s in samples} == {POOL}


def test_manifest_subset_counts_and_patients(shared_data, tmp_path):
    manifest = write_manifest(tmp_path / "subset.csv", kermany_rows(shared_data, 12))
    report = check_dataset([DataSource(manifest, "kermany")])
    assert report.ok, report.errors
    assert report.classes == ["normal", "bacterial", "viral"]  # normal first, then A-Z
    assert report.counts == {"normal": 12, "bacterial": 12, "viral": 12}
    assert report.source_counts == {"kermany": {"bacterial": 12, "normal": 12, "viral": 12}}
    assert all(len(s.sha256) == 64 for s in report.samples)
    assert report.class_names["viral"] == "Viral pneumonia"
    assert report.problems() == []


def test_folder_source_with_class_subfolders(shared_data, tmp_path):
    root = tmp_path / "folder"
    for path, label, _ in kermany_rows(shared_data, 10, ("normal", "viral")):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / Path(path).name).symlink_to(path)
    (root / "normal" / "notes.txt").write_text("not an image")
    report = check_dataset([root])
    assert report.ok, report.errors
    assert report.counts == {"normal": 10, "viral": 10}
    assert report.not_images == 1
    assert all(s.patient for s in report.samples)  # IM-NNNN / personNNN from file names


def test_label_map_and_class_order(shared_data, tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", kermany_rows(shared_data, 10))
    report = check_dataset(
        [manifest],
        label_map={"bacterial": "pneumonia", "viral": "pneumonia"},
        classes=["normal", "pneumonia", "covid19"],
        min_per_class=0,
    )
    assert report.counts == {"normal": 10, "pneumonia": 20, "covid19": 0}
    assert {s.raw_label for s in report.samples if s.label == "pneumonia"} == {"bacterial", "viral"}


def test_patient_ids_from_file_names():
    assert patient_from_name("person1000_bacteria_2931.jpeg") == "person1000"
    assert patient_from_name("IM-0115-0001.jpeg") == "IM-0115"
    assert patient_from_name("00000001_000.png") == "00000001"
    assert patient_from_name("COVID-10.jpg") is None


def test_refuses_a_single_class(shared_data, tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", kermany_rows(shared_data, 12, ("normal",)))
    report = check_dataset([manifest])
    assert not report.ok
    with pytest.raises(DatasetError, match="Only one class has images"):
        report.raise_if_refused()


def test_refuses_too_few_images_in_a_class(shared_data, tmp_path):
    rows = kermany_rows(shared_data, 12, ("normal",)) + kermany_rows(shared_data, 4, ("viral",))
    report = check_dataset([write_manifest(tmp_path / "m.csv", rows)], min_per_class=10)
    with pytest.raises(DatasetError, match=r"Class 'viral' has 4 usable image\(s\); at least 10"):
        report.raise_if_refused()


def test_unreadable_files_are_reported_and_left_out(shared_data, tmp_path):
    rows = kermany_rows(shared_data, 10, ("normal", "viral"))
    truncated = tmp_path / "truncated.jpeg"
    truncated.write_bytes(Path(rows[0][0]).read_bytes()[:300])
    text = tmp_path / "text.jpeg"
    text.write_text("this is not a radiograph")
    rows += [
        (str(truncated), "normal", ""),
        (str(text), "viral", ""),
        (str(tmp_path / "missing.png"), "viral", ""),
    ]
    report = check_dataset([write_manifest(tmp_path / "m.csv", rows)])
    assert report.ok
    assert report.counts == {"normal": 10, "viral": 10}
    causes = {path.name: cause for path, cause in report.unreadable}
    assert set(causes) == {"truncated.jpeg", "text.jpeg", "missing.png"}
    assert causes["missing.png"] == "file not found"
    assert "not an image" in causes["text.jpeg"]
    problems = "\n".join(report.problems())
    assert "truncated.jpeg: unreadable" in problems and "missing.png: unreadable" in problems


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_class_folders_with_a_pipe_and_broken_files_that_claim_images(shared_data, tmp_path):
    """Discovery yields files whose name says image (issue 18 #10); a pipe named x.png must
    then be refused on stat, not read (it would block the check forever)."""
    root = tmp_path / "folder"
    for path, label, _ in kermany_rows(shared_data, 10, ("normal", "viral")):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / Path(path).name).symlink_to(path)
    os.mkfifo(root / "normal" / "pipe.png")
    (root / "viral" / "empty.dcm").write_bytes(b"")
    (root / "viral" / "notes.txt").write_text("not an image")
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=check_dataset([root])), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # let the stuck reader go before failing
        os.close(os.open(root / "normal" / "pipe.png", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("checking the data blocked on a named pipe")
    report = result["r"]
    assert report.counts == {"normal": 10, "viral": 10} and report.not_images == 1
    causes = {path.name: cause for path, cause in report.unreadable}
    assert "named pipe" in causes["pipe.png"]
    assert causes["empty.dcm"] == "empty file (0 bytes)"


def test_duplicates_and_conflicting_labels(shared_data, tmp_path):
    rows = kermany_rows(shared_data, 10, ("normal", "viral"))
    copy = tmp_path / "copy-of-first.jpeg"
    copy.write_bytes(Path(rows[0][0]).read_bytes())  # same content, another name
    clash = tmp_path / "relabelled.jpeg"
    clash.write_bytes(Path(rows[1][0]).read_bytes())
    rows += [(str(copy), "normal", ""), (str(clash), "viral", "")]
    report = check_dataset([write_manifest(tmp_path / "m.csv", rows)], min_per_class=5)
    assert [(d.name, k) for d, k in report.duplicates] == [("copy-of-first.jpeg", Path(rows[0][0]))]
    assert len(report.conflicts) == 1
    assert report.counts == {"normal": 9, "viral": 10}  # both copies of the clash left out
    assert any("same image with different labels" in p for p in report.problems())


def test_bad_manifest_is_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.png,normal\n")
    with pytest.raises(DatasetError, match=r"bad\.csv: a manifest needs a header row"):
        check_dataset([bad])
    with pytest.raises(DatasetError, match="not found"):
        check_dataset([tmp_path / "nowhere"])


# -- split ---------------------------------------------------------------------------------------


def _pool_samples(shared_data: Path) -> list[Sample]:
    """The whole Kermany pool (sha256 stands in as the path; no file is read)."""
    return [
        Sample(s.path, s.label, s.source, s.patient, s.raw_label, sha256=str(s.path))
        for s in read_source(DataSource(shared_data / POOL))
    ]


def test_split_is_patient_grouped_stratified_and_reproducible(shared_data):
    samples = _pool_samples(shared_data)
    splits = assign_splits(samples, seed=7)
    where: dict[str, set[str]] = {}
    for s, sp in zip(samples, splits, strict=True):
        where.setdefault(s.group, set()).add(sp)
    assert all(len(parts) == 1 for parts in where.values()), "a patient is in two splits"
    assert sum(1 for s in samples if s.patient) == len(samples)
    totals = Counter(s.label for s in samples)
    for split, fraction in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        counts = Counter(s.label for s, sp in zip(samples, splits, strict=True) if sp == split)
        for label, total in totals.items():
            assert abs(counts[label] / total - fraction) < 0.02, (split, label)
    assert assign_splits(samples, seed=7) == splits
    assert assign_splits(list(reversed(samples)), seed=7) == list(reversed(splits))
    assert assign_splits(samples, seed=8) != splits


def test_split_file_round_trip(tmp_path):
    samples = [
        Sample(Path(f"/d/{k}.png"), ["a", "b"][k % 2], "pool", f"p{k // 3}", sha256=f"{k:064x}")
        for k in range(40)
    ]
    splits = assign_splits(samples, seed=1)
    check_split(samples, splits, ["a", "b"])
    write_split(tmp_path / "split.csv", samples, splits)
    again, again_splits = read_split(tmp_path / "split.csv")
    assert again == samples and again_splits == splits


def test_split_refuses_a_class_that_cannot_reach_every_part():
    samples = [Sample(Path(f"/d/{k}.png"), "a", "pool", "one-patient") for k in range(12)]
    samples += [Sample(Path(f"/e/{k}.png"), "b", "pool", sha256=str(k)) for k in range(12)]
    splits = assign_splits(samples)
    with pytest.raises(DatasetError, match="class 'a' has no images in the validation split"):
        check_split(samples, splits, ["a", "b"])


# -- augmentation ----------------------------------------------------------------------------------


def _image(size: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return (0.2 + 0.6 * x * (1 - y))[None]


def test_augmentation_is_deterministic_and_stays_in_range():
    image = _image()
    cfg = AugmentConfig(blur_p=1.0, noise_p=1.0, jpeg_p=1.0, border_p=1.0)
    a = augment(image, sample_rng(3, 1, 5), cfg)
    b = augment(image, sample_rng(3, 1, 5), cfg)
    c = augment(image, sample_rng(3, 2, 5), cfg)
    assert a.shape == image.shape and torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(augment(image, sample_rng(0, 0, 0), NO_AUGMENTATION), image)


def test_augmentation_never_flips_vertically():
    """Bright top, dark bottom: whatever the draw, the top stays brighter than the bottom."""
    image = torch.zeros(1, 64, 64)
    image[:, 8:28, 16:48] = 0.9  # bright band in the upper half
    image[:, 36:56, 16:48] = 0.1
    cfg = AugmentConfig(contrast=0.0, brightness=0.0, gamma=(1.0, 1.0), border_p=0.0)
    for k in range(40):
        out = augment(image, sample_rng(0, 0, k), cfg)
        assert out[:, 8:28, 24:40].mean() > out[:, 36:56, 24:40].mean()


def test_augment_config_round_trips():
    cfg = AugmentConfig(zoom=(0.8, 1.3), jpeg_p=0.5)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown augmentation setting"):
        AugmentConfig.from_dict({"vertical_flip": 1.0})


def test_equalisation_removes_a_contrast_difference():
    """Why Preprocessing.equalize exists: two renditions of one image become one."""
    from xraydesk.model.preprocessing import Preprocessing

    image = _image()
    flat = 0.4 + 0.3 * image  # the same anatomy at lower contrast
    differences = {}
    for equalize in (False, True):
        prep = Preprocessing(size=64, equalize=equalize)
        differences[equalize] = float((prep.finish(image) - prep.finish(flat)).abs().mean())
    assert differences[True] < 0.2 * differences[False]
