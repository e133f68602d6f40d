"""The main window's exports: the image as shown (PNG) and the one-page report (PDF).

A mixin of ``MainWindow`` (it uses the window's ``analysis``, ``settings`` and messages).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from xraydesk.errors import XRayDeskError
from xraydesk.gui.banner import INFO
from xraydesk.gui.report import ReportContent, write_report
from xraydesk.gui.report_export import build_report_content, default_report_path, legend_image
from xraydesk.gui.save_target import check_save_target
from xraydesk.printable import printable


class ExportActions:
    """File > Export image and File > Export report."""

    def _ask_save_path(self, title: str, suffix: str, file_filter: str) -> str:
        """A save dialog in the last folder, the name made from the current image's."""
        stem = self.analysis.xray.path.stem if self.analysis.xray is not None else "xraydesk"
        default = Path(self.settings.last_folder or Path.home()) / f"{stem}-{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(default), file_filter)
        return path

    def export_image(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Save the image as shown (window, inversion, heat map) as a PNG."""
        if self.analysis.xray is None:
            self.show_message("Nothing to export: open an image first.", INFO)
            return None
        path = path or self._ask_save_path("Export image", "view.png", "PNG (*.png)")
        if not path:
            return None
        out = Path(path)
        if not self._may_write(out, "the image"):
            return None
        if not legend_image(self).save(str(out), "PNG"):  # labelled: class, model, notice
            self.show_message(
                f"{printable(out)}: cannot write the image (check the folder and free space)."
            )
            return None
        self.statusBar().showMessage(f"Image saved to {printable(out)}", 6000)
        return out

    def export_report(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the one-page PDF report for the current image and prediction."""
        xray, prediction = self.analysis.xray, self.analysis.prediction
        if xray is None or prediction is None:
            self.show_message(
                "Nothing to report yet: open an image and wait for the probabilities.", INFO
            )
            return None
        if not path:  # the reports folder, not beside the image
            path, _ = QFileDialog.getSaveFileName(
                self, "Export report", str(default_report_path(self)), "PDF (*.pdf)"
            )
            if not path:
                return None
            self.settings.report_folder = str(Path(path).parent)
        if not self._may_write(Path(path), "the report", document=True):
            return None
        content = self.report_content()
        assert content is not None
        try:
            out = write_report(Path(path), content)
        except XRayDeskError as exc:
            self.show_message(printable(exc))
            return None
        self.statusBar().showMessage(f"Report saved to {printable(out)}", 6000)
        return out

    def _may_write(self, path: Path, what: str, document: bool = False) -> bool:
        """False, with the cause in the banner, where a save must not write (a pipe
        blocked the window for good; the open film was replaced by its own export);
        ``document``: not an image, so never over any image file."""
        try:
            xray = self.analysis.xray
            keep = (xray.path if xray is not None else None,)
            check_save_target(path, what, keep, document=document)
        except XRayDeskError as exc:
            self.show_message(str(exc))
            return False
        return True

    def report_content(self) -> ReportContent | None:
        """What the report of the image on screen says (None before the probabilities)."""
        return build_report_content(self)
