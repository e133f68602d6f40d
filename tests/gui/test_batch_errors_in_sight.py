"""Issue 19 #6 (batch panel): skipped files listed with the reason, errors in sight,
class headers in full."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.batch_helpers import write_png
from xraydesk.gui.batch_panel import BatchPanel
from xraydesk.imaging.discover import SKIP_HIDDEN, SKIP_NOT_IMAGE

WAIT_MS = 120_000


@pytest.fixture
def panel(qtbot, test_model_path):
    widget = BatchPanel()
    widget.set_model(test_model_path, "cpu")
    widget.resize(520, 600)  # about as wide as the dock beside the image
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    root.mkdir()
    write_png(root / "a.png", seed=1)
    (root / "broken.png").write_bytes(b"not a png at all")
    (root / "notes.txt").write_text("reading notes")
    (root / ".DS_Store").write_bytes(b"\0\1")
    return root


def test_skipped_files_are_listed_with_the_reason(qtbot, panel, folder):
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS):
        assert panel.start(folder)
    assert panel.skipped_button.isVisible()
    assert panel.skipped_button.text() == "Skipped (2)…"
    assert dict(panel.skipped_files) == {
        folder / "notes.txt": SKIP_NOT_IMAGE,
        folder / ".DS_Store": SKIP_HIDDEN,
    }
    dialog = panel.show_skipped()
    try:
        table = dialog.table
        listed = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(2)}
        assert listed == {"notes.txt": SKIP_NOT_IMAGE, ".DS_Store": SKIP_HIDDEN}
    finally:
        dialog.close()


def test_errors_are_in_sight_without_scrolling(qtbot, panel, folder):
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS):
        assert panel.start(folder)
    proxy = panel.proxy
    rows = {proxy.row_at(r).path.name: r for r in range(proxy.rowCount())}
    bad = rows["broken.png"]
    # the prediction column (always in view) says Error, the row is coloured
    assert proxy.data(proxy.index(bad, 1), Qt.ItemDataRole.DisplayRole) == "Error"
    assert proxy.data(proxy.index(bad, 0), Qt.ItemDataRole.ForegroundRole) is not None
    assert proxy.data(proxy.index(rows["a.png"], 0), Qt.ItemDataRole.ForegroundRole) is None
    # selecting the row shows its full error under the table
    panel.table.selectRow(bad)
    error = panel.results_model.row_at(proxy.mapToSource(proxy.index(bad, 0)).row()).error
    assert error and error in panel.row_details.text()
    assert panel.row_details.isVisible()


def test_class_headers_are_not_cut(qtbot, panel, folder):
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS):
        assert panel.start(folder)
    header = panel.table.horizontalHeader()
    model = panel.proxy
    metrics = header.fontMetrics()
    for column in panel.results_model.class_columns:  # the per-class columns
        text = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
        assert header.sectionSize(column) >= metrics.horizontalAdvance(text), text
        tip = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        assert tip and "Probability" in tip
