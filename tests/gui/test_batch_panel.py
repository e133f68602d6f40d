"""The batch panel: progress, cancel, filters, sorting, double-click, exports, past runs."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
import errno
import json
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.batch_helpers import expected_order, make_folder, write_png
from xraydesk.batch import rows as batch_rows
from xraydesk.batch.database import ResultStore
from xraydesk.classifier import Classifier
from xraydesk.gui.batch_panel import BatchPanel

WAIT_MS = 120_000


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "study")


def run_to_end(qtbot, panel: BatchPanel, folder: Path, **kwargs):
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS) as blocker:
        assert panel.start(folder, **kwargs)
    return blocker.args[0]


def test_run_reports_progress_and_fills_the_table(qtbot, panel, folder):
    seen = []
    panel.progress_changed.connect(seen.append)
    assert "test-3class 0.0-test" in panel.model_label.text()
    summary = run_to_end(qtbot, panel, folder, batch_size=3)
    assert summary.status == "completed" and summary.done == 8 and summary.failed == 1
    assert seen and seen[-1].done == 8 and seen[-1].total == 8
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert panel.progress_bar.value() == 8 and panel.progress_bar.maximum() == 8
    assert "images/s" in panel.progress_label.text()
    model = panel.results_model
    assert [r.path for r in model.rows] == expected_order(folder)
    headers = [
        model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
        for c in range(model.columnCount())
    ]
    assert headers[:3] == ["File", "Prediction", "Probability"]
    assert "P(COVID-19)" in headers
    assert panel.runs_list.count() == 1 and panel.shown_run == summary.run_id
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_errors_only_filter(qtbot, panel, folder):
    run_to_end(qtbot, panel, folder)
    panel.errors_check.setChecked(True)  # through the control, as a user would
    assert [r.path.name for r in panel.shown_rows()] == ["broken.png"]
    panel.errors_check.setChecked(False)
    assert panel.proxy.rowCount() == 8


def test_class_filter(qtbot, panel, folder):
    run_to_end(qtbot, panel, folder)
    rows = panel.results_model.rows
    predicted = rows[1].prediction
    panel.set_filters(class_id=predicted)
    assert panel.class_filter.currentData() == predicted
    shown = panel.shown_rows()
    assert shown and all(r.prediction == predicted for r in shown)
    assert len(shown) == sum(r.prediction == predicted for r in rows)


@pytest.mark.data
def test_probability_threshold_filter(qtbot, panel, folder, samples_dir):
    # real radiographs get a class (the random test images are gate-flagged: no class,
    # no probability of a prediction to filter on)
    for name in ("nih-00000001_000.png", "nih-00000002_000.png", "nih-00027426_000.png"):
        shutil.copy(samples_dir / "fullres" / name, folder / name)
    run_to_end(qtbot, panel, folder)
    rows = panel.results_model.rows
    # rows given no class (indeterminate, withheld) have no probability to filter on
    confidences = sorted(r.confidence for r in rows if r.confidence is not None)
    threshold = round(confidences[len(confidences) // 2], 2)
    panel.set_filters(min_probability=threshold)
    assert {r.path for r in panel.shown_rows()} == {
        r.path for r in rows if r.confidence is not None and r.confidence >= threshold
    }


def test_sorting_by_probability(qtbot, panel, folder):
    run_to_end(qtbot, panel, folder)
    panel.set_filters()
    panel.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # probability, highest first
    values = [r.confidence for r in panel.shown_rows()]
    known = [v for v in values if v is not None]
    assert values[-1] is None  # the error row (and any row given no class) sorts last
    assert values[: len(known)] == sorted(known, reverse=True)


def test_double_click_emits_open_image_requested(qtbot, panel, folder):
    run_to_end(qtbot, panel, folder)
    qtbot.waitExposed(panel)
    index = panel.proxy.index(2, 0)
    expected = panel.proxy.row_at(2).path
    rect = panel.table.visualRect(index)
    viewport = panel.table.viewport()
    with qtbot.waitSignal(panel.open_image_requested, timeout=5000) as blocker:
        # a real double-click: press-release, then the double-click event
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [expected]


def test_cancel_stops_within_a_second_and_keeps_finished_rows(
    qtbot, panel, tmp_path, test_model_path
):
    folder = tmp_path / "many"
    for i in range(60):
        write_png(folder / f"c{i:02d}.png", seed=i)
    slow = Classifier.load(test_model_path, device="cpu")

    def sleep(_module, _inputs, _output):
        time.sleep(0.1)  # a slow machine: ~1.6 s per batch

    for name, module in slow.network.named_modules():
        if name.count(".") == 1:
            module.register_forward_hook(sleep)
    panel.set_classifier_provider(lambda: slow, "slow model")
    finished = []
    panel.run_finished.connect(lambda summary: finished.append((time.monotonic(), summary)))
    assert panel.start(folder, batch_size=4)
    qtbot.waitUntil(lambda: panel.results_model.rowCount() >= 4, timeout=WAIT_MS)
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    cancelled_at = time.monotonic()
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    ended, summary = finished[0]
    assert ended - cancelled_at < 1.0
    assert summary.status == "cancelled" and 4 <= summary.done < 60
    assert panel.results_model.rowCount() == summary.done
    with ResultStore() as store:
        assert store.row_count(summary.run_id) == summary.done
        assert store.run(summary.run_id).status == "cancelled"
    assert "Cancelled" in panel.progress_label.text()


def test_past_runs_can_be_reopened(qtbot, panel, folder, tmp_path):
    first = run_to_end(qtbot, panel, folder)
    other = tmp_path / "other"
    write_png(other / "x.png", seed=5)
    second = run_to_end(qtbot, panel, other)
    assert panel.runs_list.count() == 2
    assert panel.results_model.rowCount() == 1
    newest = panel.runs_list.item(0)
    assert newest.data(Qt.ItemDataRole.UserRole) == second.run_id
    panel.runs_list.setCurrentRow(1)  # the first run
    panel.open_run_button.click()
    assert panel.shown_run == first.run_id
    assert [r.path for r in panel.results_model.rows] == expected_order(folder)
    assert panel.class_filter.count() == 5  # all + three classes + indeterminate


def test_exports_follow_the_filters(qtbot, panel, folder, tmp_path):
    run_to_end(qtbot, panel, folder)
    panel.set_filters(errors_only=True)
    out_csv = tmp_path / "errors.csv"
    assert panel.export(out_csv, "csv") == 1
    with open(out_csv, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in records] == ["broken.png"] and records[0]["error"]
    panel.set_filters()
    out_json = tmp_path / "all.json"
    assert panel.export(out_json, "json") == 8
    assert len(json.loads(out_json.read_text())) == 8


def test_export_to_a_full_disk_is_a_message(qtbot, panel, folder, tmp_path, monkeypatch):
    run_to_end(qtbot, panel, folder)

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch_rows, "write_json_array", full)
    with qtbot.waitSignal(panel.message_shown, timeout=5000) as blocker:
        assert panel.export(tmp_path / "again.json", "json") is None
    assert "disk is full" in blocker.args[0]
    assert panel.message_label.isVisible()
    assert not (tmp_path / "again.json").exists()


def test_start_refuses_without_model_or_folder(qtbot, tmp_path):
    widget = BatchPanel()
    qtbot.addWidget(widget)
    assert "No model" in widget.model_label.text()
    assert not widget.start_button.isEnabled()
    assert not widget.start(tmp_path)
    assert "No model" in widget.message_label.text()
    widget.set_classifier_provider(lambda: None, "x")  # never called: the folder is missing
    assert not widget.start(tmp_path / "missing")
    assert widget.message_label.text() == f"{tmp_path / 'missing'}: not found."


# ============================================================================ hostile paths
@pytest.fixture
def hostile_run(qtbot, panel, tmp_path: Path):
    from tests.gui.hostile_paths import write_hostile_paths

    hostile = write_hostile_paths(tmp_path / "hostile")
    return run_to_end(qtbot, panel, hostile), hostile


def test_a_folder_of_hostile_paths_ends_with_error_rows(hostile_run, panel):
    from tests.gui.hostile_paths import NEWLINE, NON_UTF8, UNREADABLE

    summary, _ = hostile_run
    assert summary is not None and summary.status == "completed", summary
    rows = {row.path.name: row for row in panel.results_model.rows}
    assert len(rows) == len(panel.results_model.rows)  # no file twice
    for name in ("control.png", NON_UTF8, NEWLINE):  # valid films (the gate may hold one)
        assert rows[name].error is None, (name, rows[name].error)
    errors = {name: row.error for name, row in rows.items() if row.error}
    assert set(errors) == {*UNREADABLE, "loop-b.png"}, errors
    for name, cause in UNREADABLE.items():
        assert cause in (name + ": " + errors[name]).lower(), (name, errors[name])
    assert (summary.total, summary.classified, summary.failed) == (12, 3, 9), summary
    shown = {panel.results_model.data(panel.results_model.index(r, 0)) for r in range(12)}
    assert {"new\\nline.png", "caf\\xe9-latin1.png"} <= shown, shown  # one line, bytes named
    assert not panel.message_label.isVisible(), panel.message_label.text()


def hostile_target(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that is no file to write nor folder to read, and the words of its cause."""
    target = tmp_path / {"pipe": "pipe.csv", "loop": "circle", "folder": "rows-folder.csv"}.get(
        kind, "f" * 300
    )
    if kind == "pipe":
        os.mkfifo(target)
    elif kind == "loop":
        target.symlink_to(target)
    elif kind == "folder":
        target.mkdir()
    return target, {"pipe": "named pipe", "loop": "loop", "folder": "folder"}.get(kind, "too long")


@pytest.mark.parametrize("kind", ["pipe", "too long", "loop"])
def test_start_refuses_a_folder_that_is_none(qtbot, panel, tmp_path, kind):
    target, cause = hostile_target(tmp_path, kind)
    with qtbot.waitSignal(panel.message_shown) as shown:
        assert not panel.start(target)
    assert str(target) in shown.args[0] and cause in shown.args[0], shown.args[0]


@pytest.mark.parametrize("kind", ["pipe", "folder", "row image", "other image"])
def test_export_refuses_a_target_that_is_no_file(qtbot, panel, folder, tmp_path, kind):
    run_to_end(qtbot, panel, folder)
    if kind == "row image":
        target, cause = panel.results_model.rows[0].path, "an image of this run"
    elif kind == "other image":  # a film of another folder: the table replaced it
        from tests.hostile_files import small_png

        target, cause = tmp_path / "other" / "film.png", "an image file, not overwritten"
        target.parent.mkdir()
        target.write_bytes(small_png())
    else:
        target, cause = hostile_target(tmp_path, kind)
    before = target.read_bytes() if target.is_file() else None
    with qtbot.waitSignal(panel.message_shown) as shown:
        assert panel.export(target, "csv", "all") is None
    assert str(target) in shown.args[0] and cause in shown.args[0], shown.args[0]
    if before is not None:
        assert target.read_bytes() == before
    assert not [p for p in tmp_path.rglob(".*.partial")]


def test_the_summary_rate_counts_only_the_images_this_run_classified():
    """It read "Done: 0 of 1 classified · 1 failed · 31.8 images/s": the rate counted the
    failed file (and rows reused from an earlier run) as images classified."""
    from xraydesk.batch.run import RunSummary
    from xraydesk.batch.run_state import RunStatus
    from xraydesk.gui.batch_panel import _summary_text

    def summary(classified: int, reused: int, failed: int) -> RunSummary:
        return RunSummary(
            total=classified + reused + failed, classified=classified, reused=reused,
            failed=failed, not_images=0, hidden=0, run_id=1, status=RunStatus.COMPLETED,
            seconds=2.0,
        )  # fmt: skip

    assert "images/s" not in _summary_text(summary(0, 0, 1))
    assert "images/s" not in _summary_text(summary(0, 5, 0))
    assert _summary_text(summary(10, 30, 2)).endswith("5.0 images/s")
