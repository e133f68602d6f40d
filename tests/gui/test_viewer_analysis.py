"""The viewer's analysis is a controller over plain widgets: it needs no main window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QWidget

from tests.gui.conftest import WAIT_MS
from xraydesk.gui.image_view import ImageView
from xraydesk.gui.metadata_panel import MetadataPanel
from xraydesk.gui.results_panel import ResultsPanel
from xraydesk.gui.settings import AppSettings
from xraydesk.gui.viewer_analysis import AnalysisWidgets, ViewerAnalysis
from xraydesk.viewer.viewstate import ViewState

pytestmark = pytest.mark.data


def test_analysis_shows_results_on_its_widgets_and_tells_by_signals(
    qtbot, tmp_path: Path, test_model_path: Path, png_path: Path
):
    host = QWidget()
    view = ImageView(ViewState(), host)
    results, metadata, timing = ResultsPanel(host), MetadataPanel(host), QLabel(host)
    settings = AppSettings(tmp_path / "settings.ini")
    analysis = ViewerAnalysis(settings, lambda: (test_model_path, "cpu"), parent=host)
    analysis.bind(AnalysisWidgets(view, results, metadata, timing))
    titles: list[str] = []
    messages: list[tuple[str, str]] = []
    shown: list[object] = []
    analysis.title_changed.connect(titles.append)
    analysis.message.connect(lambda text, kind: messages.append((text, kind)))
    analysis.image_shown.connect(shown.append)
    try:
        with qtbot.waitSignals(
            [analysis.probabilities_shown, analysis.overlay_shown], timeout=WAIT_MS
        ):
            analysis.open(png_path)
        assert not messages
        assert shown == [png_path]
        assert titles == [f"{png_path.name} — XRayDesk"]
        assert view.xray is analysis.xray and analysis.xray.path == png_path
        assert analysis.prediction is not None and analysis.explanation is not None
        assert timing.text().startswith("Open → probabilities")
        assert settings.recent_files == [str(png_path)]
    finally:
        analysis.pipeline.cancel()
        analysis.pipeline.wait(WAIT_MS)
        view.detach()
        host.deleteLater()


def test_analysis_refuses_requests_before_it_is_bound(png_path: Path, tmp_path: Path):
    analysis = ViewerAnalysis(AppSettings(tmp_path / "settings.ini"), lambda: (None, "cpu"))
    with pytest.raises(RuntimeError, match="bind"):
        analysis.open(png_path)
    analysis.deleteLater()
