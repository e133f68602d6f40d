"""The batch pipeline: order, error rows, skipping on re-runs, cancel, a vanishing folder."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.batch_helpers import expected_order, make_folder, write_png
from xraydesk import paths
from xraydesk.batch.database import ResultStore, StoreError
from xraydesk.batch.run import BatchAborted, BatchOptions, BatchRun, classify_paths
from xraydesk.classifier import Classifier
from xraydesk.imaging import load_xray
from xraydesk.imaging.discover import DiscoveryStats, count_images, iter_images


def run_rows(inputs, classifier, **options) -> tuple[list, BatchRun]:
    options.setdefault("recursive", True)
    batch = BatchRun(inputs, classifier, BatchOptions(**options))
    return list(batch.rows()), batch


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "study")


def test_rows_in_walk_order_with_error_rows_and_counts(folder, test_classifier):
    progress = []
    batch = BatchRun(
        [folder],
        test_classifier,
        BatchOptions(recursive=True, batch_size=3),
        on_progress=progress.append,
    )
    rows = list(batch.rows())
    assert [r.path for r in rows] == expected_order(folder)
    broken = rows[0]
    assert broken.path.name == "broken.png"
    assert broken.error and "PNG" in broken.error and broken.prediction is None
    assert broken.content_hash is not None  # hashed before decoding
    for row in rows[1:]:
        assert row.ok, row.error
        assert row.model == "test-3class 0.0-test"
        assert len(row.content_hash) == 64 and row.classified_at and row.seconds > 0
        assert list(row.probabilities) == ["normal", "pneumonia", "covid19"]
        assert sum(row.probabilities.values()) == pytest.approx(1.0)
        top = max(row.probabilities, key=row.probabilities.get)
        assert (row.prediction or row.withheld_prediction) == top  # named, or withheld
    summary = batch.summary
    assert (summary.status, summary.classified, summary.failed, summary.reused) == (
        "completed",
        7,
        1,
        0,
    )
    assert (summary.not_images, summary.hidden) == (1, 1)
    assert progress[-1].done == 8 and progress[-1].total == 8 and progress[-1].eta == 0
    for row in (rows[1], rows[-1]):  # batched (bf16 on CPU) agrees with one at a time
        single = test_classifier.predict(load_xray(row.path)).probabilities
        assert np.allclose([row.probabilities[c] for c in single], list(single.values()), atol=0.02)


def test_rerun_reuses_rows_by_content_and_no_skip_reclassifies(folder, test_classifier):
    first, _ = run_rows([folder], test_classifier)
    shutil.copy(folder / "img0.png", folder / "img0-copy.png")  # same content, new name
    second, batch = run_rows([folder], test_classifier)
    by_path = {r.path: r for r in first}
    assert batch.summary.classified == 0 and batch.summary.failed == 1
    assert batch.summary.reused == 8  # 7 known files + the copy, found by its content
    for row in second:
        if row.ok:
            assert row.reused
            source = by_path.get(row.path, by_path[folder / "img0.png"])
            assert row.probabilities == source.probabilities
            assert row.content_hash == source.content_hash
    assert not next(r for r in second if r.path.name == "broken.png").reused  # errors retried

    third, batch = run_rows([folder], test_classifier, skip_known=False)
    assert batch.summary.reused == 0 and batch.summary.classified == 8
    assert not any(r.reused for r in third)


def test_another_model_version_does_not_reuse(folder, test_classifier):
    run_rows([folder], test_classifier)
    card = dataclasses.replace(test_classifier.card, version="0.1-test")
    other = Classifier(test_classifier.network, card, test_classifier.device)
    _, batch = run_rows([folder], other)
    assert batch.summary.reused == 0 and batch.summary.classified == 7


def test_store_keeps_the_run_and_its_rows(folder, test_classifier):
    rows, batch = run_rows([folder], test_classifier)
    db = paths.data_dir() / "results.sqlite"
    assert db.is_file()
    with ResultStore() as store:
        assert store.path == db
        mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        info = store.run(batch.run_id)
        assert info.status == "completed" and info.folder == str(folder)
        assert (info.total, info.classified, info.failed, info.not_images, info.hidden) == (
            8,
            7,
            1,
            1,
            1,
        )
        assert info.class_ids == ["normal", "pneumonia", "covid19"]
        assert info.finished is not None
        stored = list(store.iter_rows(batch.run_id, chunk=3))  # several chunks
    assert [(r.path, r.prediction, r.probabilities, r.error) for r in stored] == [
        (r.path, r.prediction, r.probabilities, r.error) for r in rows
    ]


def test_record_off_writes_no_database(folder, test_classifier):
    rows, batch = run_rows([folder], test_classifier, record=False)
    assert len(rows) == 8 and batch.run_id is None
    assert not (paths.data_dir() / "results.sqlite").exists()


def test_classify_paths_keeps_explicit_files_and_order(folder, tmp_path, test_classifier):
    missing = tmp_path / "nope.png"
    text = folder / "notes.txt"
    rows = list(classify_paths([folder / "img1.png", missing, text], test_classifier))
    assert [r.path for r in rows] == [folder / "img1.png", missing, text]
    assert rows[0].ok
    assert rows[1].error == "file not found"
    assert "not an image" in rows[2].error


def test_cancel_interrupts_a_slow_batch_within_a_second(tmp_path, test_model_path):
    classifier = Classifier.load(test_model_path, device="cpu")  # hooks below stay private
    image = write_png(tmp_path / "one.png", seed=1)

    def slow(_module, _inputs, _output):
        time.sleep(0.15)  # ~16 blocks: a batch takes ~2.5 s, like a busy CPU at 224 px

    for name, module in classifier.network.named_modules():
        if name.count(".") == 1:
            module.register_forward_hook(slow)
    cancel = threading.Event()
    cancelled_at: list[float] = []

    def on_progress(progress):
        if progress.done >= 8 and not cancelled_at:
            threading.Timer(
                0.3, lambda: (cancelled_at.append(time.monotonic()), cancel.set())
            ).start()

    batch = BatchRun(
        [image] * 200,
        classifier,
        BatchOptions(batch_size=8, skip_known=False),
        cancel=cancel,
        on_progress=on_progress,
    )
    rows = list(batch.rows())
    ended = time.monotonic()
    assert cancelled_at, "the run ended before it could be cancelled"
    assert ended - cancelled_at[0] < 1.0
    assert batch.summary.status == "cancelled"
    assert 8 <= len(rows) < 200
    with ResultStore() as store:
        info = store.run(batch.run_id)
        assert info.status == "cancelled"
        assert store.row_count(batch.run_id) == len(rows)  # what finished is kept
    assert not any(m._forward_pre_hooks for m in classifier.network.modules())  # hooks removed


def test_folder_disappearing_mid_run_ends_with_a_clear_message(tmp_path, test_classifier):
    folder = tmp_path / "usb-stick"
    for i in range(40):
        write_png(folder / f"x{i:02d}.png", seed=i)
    yielded = []

    def pull_the_stick(progress):
        if progress.done >= 4 and folder.exists():
            shutil.rmtree(folder)

    batch = BatchRun(
        [folder],
        test_classifier,
        BatchOptions(batch_size=4, prefetch=4, workers=1),
        on_progress=pull_the_stick,
    )
    with pytest.raises(BatchAborted) as info:
        for row in batch.rows():
            yielded.append(row)
    message = str(info.value)
    assert str(folder) in message and "disappeared" in message and "run again" in message
    assert 4 <= len(yielded) < 40
    assert all(r.ok for r in yielded)
    with ResultStore() as store:
        run = store.run(batch.run_id)
        assert run.status == "failed" and "disappeared" in run.message
        assert store.row_count(batch.run_id) == len(yielded)
        assert store.integrity_ok()


def test_database_write_failure_ends_the_run_cleanly(folder, test_classifier, monkeypatch):
    import sqlite3

    calls = {"n": 0}
    original = ResultStore.add_rows

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ResultStore, "add_rows", failing)
    batch = BatchRun([folder], test_classifier, BatchOptions(recursive=True, batch_size=2))
    yielded = []
    with pytest.raises(BatchAborted, match="could not be written"):
        for row in batch.rows():
            yielded.append(row)
    with ResultStore() as store:
        assert store.row_count(batch.run_id) == len(yielded) > 0
        assert store.integrity_ok()


# -- 9: a full database --------------------------------------------------------------------


def test_full_database_counts_only_the_rows_stored(tmp_path, test_classifier):
    """``PRAGMA max_page_count`` on the run's own connection: SQLite's real 'database or
    disk is full' error, from the moment the file may grow no more."""
    folder = tmp_path / "many"
    for i in range(80):
        write_png(folder / f"x{i:02d}.png", seed=i, size=(16, 16))
    batch = BatchRun([folder], test_classifier, BatchOptions(batch_size=4, workers=1))
    yielded = []
    with pytest.raises(BatchAborted, match="could not be written"):
        for row in batch.rows():
            if not yielded:
                conn = batch._ledger.store._connection()
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {pages}")
            yielded.append(row)
    summary = batch.summary
    with ResultStore() as store:
        stored = store.row_count(batch.run_id)
        info = store.run(batch.run_id)
        assert store.integrity_ok()
    assert 0 < stored == len(yielded) < 80
    assert summary.done == stored and summary.classified == stored
    assert info.rows_done == stored and info.classified == stored
    assert info.status == "failed" and "full" in info.message


def test_a_damaged_database_is_named_and_left_alone(folder, test_classifier):
    db = paths.data_dir() / "results.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"results\.sqlite: cannot open the results database"):
        run_rows([folder], test_classifier)
    assert db.read_bytes().startswith(b"this is not a database")


def test_discovery_counts_and_survives_a_symlink_loop(tmp_path):
    folder = tmp_path / "loop"
    write_png(folder / "a.png", seed=1)
    write_png(folder / "inner" / "b.png", seed=2)
    (folder / "inner" / "back").symlink_to(folder, target_is_directory=True)
    stats = DiscoveryStats()
    found = list(iter_images([folder], recursive=True, stats=stats))
    assert [p.name for p in found] == ["a.png", "b.png"]
    assert count_images([folder], recursive=True) == 2
    assert count_images([folder], recursive=False) == 1


def test_real_samples_match_single_predictions(samples_dir, test_classifier):
    rows, batch = run_rows([samples_dir], test_classifier, batch_size=4)
    assert batch.summary.failed == 0 and len(rows) == 10
    names = {r.path.name for r in rows}
    assert "siim-cr-jpeg-baseline.dcm" in names and "nih-00000001_000.png" in names
    for row in rows[:3]:
        single = test_classifier.predict(load_xray(row.path)).probabilities
        assert np.allclose([row.probabilities[c] for c in single], list(single.values()), atol=0.02)


def test_cam_dir_writes_one_overlay_per_classified_file(
    folder, tmp_path, test_classifier, samples_dir
):
    """One overlay per file given a class; none for an error row or an indeterminate one
    (the random test images, which the input gate flags: a map would name the withheld
    class), so a real radiograph joins them."""
    from xraydesk.explain.export import cam_filename

    shutil.copy(samples_dir / "fullres" / "nih-00000001_000.png", folder / "real.png")
    cams = tmp_path / "cams"
    rows, _ = run_rows([folder], test_classifier, cam_dir=cams, batch_size=4)
    written = sorted(p.name for p in cams.iterdir())
    named = [r for r in rows if r.ok and r.prediction is not None]
    assert [r.path.name for r in named] == ["real.png"]
    assert written == sorted(cam_filename(r.path) for r in named)
    for row in rows:
        if row.ok and row.prediction is not None:
            with Image.open(cams / cam_filename(row.path)) as png:
                rows_, cols = load_xray(row.path).shape
                # the overlay at the image's size, its legend strip below (explain.legend)
                assert png.mode == "RGB" and png.width == cols and png.height > rows_


def test_a_model_output_that_is_not_a_number_is_an_error_row(folder, tmp_path, test_classifier):
    """The batch half of issue 18 #1: NaN probabilities are one file's error row (the
    classifier refuses to name a class from them), never 'normal' and never the run's end."""
    import copy

    import torch

    network = copy.deepcopy(test_classifier.network)
    with torch.no_grad():
        network.fc.bias[0] = float("nan")
    broken = Classifier(network, test_classifier.card, test_classifier.device)
    rows, batch = run_rows([folder], broken, cam_dir=tmp_path / "cams")
    assert batch.summary.status == "completed"
    assert not (tmp_path / "cams").exists()  # no heat map explains an error row
    assert [r.path for r in rows] == expected_order(folder)
    for row in rows:
        assert row.prediction is None and row.probabilities is None and row.error
    assert sum("not a number" in r.error for r in rows) == 7  # all but the broken PNG
