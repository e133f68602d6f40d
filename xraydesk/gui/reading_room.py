"""Reading-room basics wired into the main window: rotate and flip, the CTR
tool, the DICOM tag browser, patient identity in the corners, studies and the prior.

``handlers`` gives the shortcut-table actions their work; ``install`` makes the toggles
checkable and ties the corner identity to the Image info panel's "Show patient data"
switch (one setting, masked again for every new image).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from xraydesk.errors import XRayDeskError
from xraydesk.gui.banner import INFO
from xraydesk.gui.image_view import TOOL_CTR, TOOL_PAN
from xraydesk.gui.view_orientation import flip, reset_orientation, rotate
from xraydesk.imaging.studies import (
    StudyGroup,
    StudyIndex,
    StudyKeys,
    find_priors,
    group_studies,
    no_prior_reason,
    read_keys,
    scan_folder,
)
from xraydesk.viewer.corners import format_date

if TYPE_CHECKING:
    from xraydesk.gui.main_window import MainWindow

CHECKABLE = ("tool_ctr", "show_identity")
VIEW_MENU = (
    "rotate_cw",
    "rotate_ccw",
    "flip_horizontal",
    "flip_vertical",
    "reset_orientation",
    "show_identity",
)
IMAGE_ACTIONS = (*VIEW_MENU[:5], "tool_ctr", "tag_browser", "studies", "compare_prior")


def handlers(w: MainWindow) -> dict[str, Callable[[], object]]:
    return {
        "rotate_cw": lambda: rotate(w, 90),
        "rotate_ccw": lambda: rotate(w, -90),
        "flip_horizontal": lambda: flip(w, horizontal=True),
        "flip_vertical": lambda: flip(w, horizontal=False),
        "reset_orientation": lambda: reset_orientation(w),
        "tool_ctr": lambda: w.set_tool(TOOL_CTR if w.view.tool != TOOL_CTR else TOOL_PAN),
        "show_identity": lambda: w.metadata.reveal_button.setChecked(
            w.actions_by_id["show_identity"].isChecked()
        ),
        "tag_browser": lambda: open_tag_browser(w),
        "studies": lambda: open_study_browser(w),
        "compare_prior": lambda: compare_prior(w),
    }


def install(w: MainWindow) -> None:
    for name in CHECKABLE:
        w.actions_by_id[name].setCheckable(True)
    w.metadata.reveal_button.toggled.connect(lambda on: _identity_changed(w, on))


def _identity_changed(w: MainWindow, shown: bool) -> None:
    w.actions_by_id["show_identity"].setChecked(shown)
    for view in (w.view, w.compare_view):
        view.identity_shown = shown
        view.viewport().update()


def _current_path(w: MainWindow) -> Path | None:
    xray = w.current_xray
    if xray is None:
        w.show_message("Open an image first.", INFO)
        return None
    return xray.path


def open_tag_browser(w: MainWindow):
    """The DICOM elements of the image on screen (None, with a message, if it has none)."""
    from xraydesk.gui.tag_browser import TagBrowser

    path = _current_path(w)
    if path is None:
        return None
    try:
        browser = TagBrowser(path, w.metadata.patient_revealed, w)
    except XRayDeskError as exc:
        w.show_message(f"No DICOM tags to show. {exc}", INFO)
        return None
    browser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    w.metadata.reveal_button.toggled.connect(browser.set_reveal)  # dropped with the browser
    browser.show()
    return browser


def study_index(w: MainWindow, path: Path) -> tuple[StudyIndex, StudyGroup | None]:
    """The studies of ``path``'s folder and of the PACS worklist, and ``path``'s study."""
    index = scan_folder(path.parent, recursive=False)
    keys = _worklist_keys()
    if keys:
        folder_files = {f.absolute() for s in index.studies for f in s.files}
        extra = [k for k in keys if k.path.absolute() not in folder_files]
        merged = group_studies([*_keys_of(index), *extra])
        merged.skipped = index.skipped
        index = merged
    return index, index.study_of(path)


def _keys_of(index: StudyIndex) -> list[StudyKeys]:
    return [
        StudyKeys(
            f,
            s.study_uid,
            series.series_uid,
            s.patient_id,
            s.study_date,
            s.study_time,
            s.description,
            series.description,
            series.number,
            None,
            series.modality,
        )
        for s in index.studies
        for series in s.series
        for f in series.files
    ]


def _worklist_keys() -> list[StudyKeys]:
    """Received PACS objects with a file on disk (nothing when there is no worklist yet)."""
    from xraydesk.batch.database import default_db_path
    from xraydesk.dicomnet.worklist import Worklist

    if not default_db_path().is_file():
        return []
    try:
        with Worklist() as worklist:
            items = worklist.items()
    except XRayDeskError:
        return []  # the PACS panel reports a broken worklist; the folder still works
    return [
        StudyKeys(
            Path(i.path),
            i.study_uid,
            i.series_uid or "",
            i.patient_id or "",
            i.study_date or "",
            "",
            i.study_description or "",
            "",
            None,
            None,
            i.modality or "",
        )
        for i in items
        if i.path is not None and i.study_uid and Path(i.path).is_file()
    ]


def open_study_browser(w: MainWindow):
    from xraydesk.gui.study_browser import StudyBrowser

    path = _current_path(w)
    if path is None:
        return None
    index, current = study_index(w, path)
    browser = StudyBrowser(index, current, w.metadata.patient_revealed, w)
    browser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    browser.open_requested.connect(w.open_path)
    browser.compare_requested.connect(lambda p: w.compare_with(p))
    browser.show()
    return browser


def compare_prior(w: MainWindow) -> Path | None:
    """Hang the newest earlier study of the same patient beside the image (its path)."""
    path = _current_path(w)
    if path is None:
        return None
    try:
        read_keys(path)
    except XRayDeskError:
        w.show_message(f"{path.name}: {no_prior_reason(None)}; no prior to look for.", INFO)
        return None
    index, current = study_index(w, path)
    reason = no_prior_reason(current)
    if reason:
        w.show_message(f"{path.name}: {reason}; no prior to look for.", INFO)
        return None
    assert current is not None
    priors = find_priors(current, index.studies)
    if not priors:
        w.show_message(
            f"No earlier study of this patient in {path.parent} or the PACS worklist.", INFO
        )
        return None
    prior = priors[0].first_file
    w.compare_with(prior)
    w.statusBar().showMessage(f"Prior study of {format_date(priors[0].study_date)}", 6000)
    return prior
