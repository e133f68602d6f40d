"""The main window's report and PNG exports: what goes in them, where they are saved.

Kept out of main_window.py: the window hands itself over and these functions read its
image, result, heat map and settings. Reports go to a reports folder (remembered), not
beside the image: a folder of films is often a read-only share or a PACS export.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QAction, QImage

from xraydesk import paths
from xraydesk.errors import XRayDeskError
from xraydesk.explain import EMPTY_HEATMAP
from xraydesk.explain.legend import with_legend
from xraydesk.gui.qt_images import rgb_array
from xraydesk.gui.report import ReportContent, heat_map_text, window_text
from xraydesk.model.card import ModelCard
from xraydesk.viewer.heat_policy import HeatHold, may_export
from xraydesk.viewer.report_facts import report_facts

if TYPE_CHECKING:
    from xraydesk.gui.main_window import MainWindow

REPORTS_FOLDER_NAME = "XRayDesk reports"
WITHHELD_BY_GATE = "the image failed the input check (see the warnings)"
WITHHELD_HEAT_MAP = "not shown, since it would name the class the answer withholds"
NORMAL_HEAT_MAP = "not shown by default for a Normal answer (offered on request)"


def reports_folder(window: MainWindow) -> Path:
    """The remembered reports folder; else "XRayDesk reports" in the user's documents,
    or in the data folder when there is no documents folder."""
    if window.settings.report_folder:
        return Path(window.settings.report_folder)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    base = Path(documents) if documents and Path(documents).is_dir() else paths.data_dir()
    return base / REPORTS_FOLDER_NAME


def install_report_options(window: MainWindow) -> QAction:
    """File › "Patient identifiers in reports" (checkable, remembered), after Export report."""
    action = QAction("Patient &identifiers in reports", window)
    action.setCheckable(True)
    action.setChecked(window.settings.report_identifiers)
    action.setToolTip("Print the patient's name, ID, birth date and accession on PDF reports")
    action.toggled.connect(lambda on: setattr(window.settings, "report_identifiers", on))
    export = window.actions_by_id["export_report"]
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is not None and export in menu.actions():
            actions = menu.actions()
            after = actions[actions.index(export) + 1 : actions.index(export) + 2]
            if after:
                menu.insertAction(after[0], action)
            else:
                menu.addAction(action)
            break
    window.actions_by_id["report_identifiers"] = action
    return action


def _card(window: MainWindow) -> ModelCard | None:
    path = window.models.path
    if path is None:
        return None
    try:
        return ModelCard.read(path)
    except XRayDeskError:
        return None


def _explained_class(window: MainWindow) -> str | None:
    """The class whose heat map an export may carry (None: none was computed, it is
    empty, switched off, or ``viewer.heat_policy`` holds it back, as for a result that
    names no class even after its numbers were opened). The rule is asked afresh, not
    read off the screen, so an export can never carry more than the viewer may show."""
    explanation = window.analysis.explanation
    if explanation is None:
        return None
    hold = window.analysis.heat_hold_of(explanation)
    shown = window.state.overlay_visible and window.view.has_heat_layer
    if not may_export(hold, empty=explanation.empty, shown=shown):
        return None
    return explanation.cam.class_id


def _withheld_reason(window: MainWindow) -> str:
    """Why the report gives no class ("" when it gives one): the gate, or the
    indeterminate result's own reason (shown or collapsed, no class is named)."""
    results = window.results
    if results.gate_failed:  # "Show anyway" opens the numbers, it gives no class
        return WITHHELD_BY_GATE
    return results.indeterminate_reason or ""


def build_report_content(window: MainWindow) -> ReportContent | None:
    """What the report of the image on screen says (None before the probabilities)."""
    xray, prediction = window.analysis.xray, window.analysis.prediction
    if xray is None or prediction is None:
        return None
    explanation, state = window.analysis.explanation, window.state
    empty = explanation is not None and explanation.empty
    withheld = _withheld_reason(window)
    # the one rule: a withheld answer's report carries no map (it names the class held back)
    explained = _explained_class(window)
    card = _card(window)
    facts = report_facts(
        metadata=xray.metadata,
        patient=xray.patient,
        probabilities=prediction.probabilities,
        predicted=prediction.predicted,
        names=prediction.display_names,
        explained_class=explained,
        withheld_reason=withheld,
        limitations=card.limitations if card is not None else (),
        model=prediction.model,
        include_identity=window.settings.report_identifiers,
    )
    heat = None
    if explained is not None and explanation is not None:
        heat = heat_map_text(prediction, explained, state.overlay_opacity, explanation.cam.method)
    note = EMPTY_HEATMAP if empty else ""
    if withheld and explanation is not None and not empty:
        note = WITHHELD_HEAT_MAP
    elif explanation is not None and window.analysis.heat_held is HeatHold.NORMAL:
        note = NORMAL_HEAT_MAP
    return ReportContent(
        image=window.view.composed_image(heat_map=explained is not None),
        source_name=xray.path.name,
        prediction=prediction,
        heat_map=heat,
        heat_map_note=note,
        window=window_text(state.window, state.invert),
        warnings=[w.message for w in window.results.warnings],
        plain_image=window.view.composed_image(heat_map=False) if explained else None,
        facts=facts,
        explained_name=prediction.display_names.get(explained, explained) if explained else None,
    )


def default_report_path(window: MainWindow) -> Path:
    """<reports folder>/<image stem>-report.pdf."""
    xray = window.analysis.xray
    stem = xray.path.stem if xray is not None else "xraydesk"
    return reports_folder(window) / f"{stem}-report.pdf"


def legend_image(window: MainWindow) -> QImage:
    """The view as shown with its legend strip: colour scale, explained class, model,
    "Not for diagnosis" (the exported PNG, Ctrl+E)."""
    explained = _explained_class(window)
    prediction = window.analysis.prediction
    names = prediction.display_names if prediction is not None else {}
    model = prediction.model if prediction is not None else (_card_label(window))
    name = names.get(explained, explained) if explained else None
    shown = window.view.composed_image(heat_map=explained is not None)
    if shown.isNull():
        return shown
    labelled = np.ascontiguousarray(with_legend(rgb_array(shown), name, model))
    height, width = labelled.shape[:2]
    image = QImage(labelled.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # owns its pixels: the array goes away with this function


def _card_label(window: MainWindow) -> str:
    card = _card(window)
    return card.label if card is not None else ""
