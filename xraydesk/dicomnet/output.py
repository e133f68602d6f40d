"""``xraydesk classify --dicom-out DIR --send NODE``: DICOM results for classified files.

For every DICOM file the run classifies, the SR and heat-map Secondary Capture
(``result_objects.make_results``, with the run's own verdict: probabilities, warnings,
indeterminate) are written to DIR (to the data folder's ``dicom-results`` when only
--send is given), then, with --send, C-STOREd to that configured node in one
association at the end. Files that are not DICOM have no
study to join: they are counted and named in the summary, not turned into DICOM. A file
whose results cannot be made is named with the cause and the run goes on; header values
not copied as they were are named (attribute and cause, never the value).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from xraydesk.batch import ResultRow
from xraydesk.classifier import Classifier
from xraydesk.dicomnet.config import load_config
from xraydesk.dicomnet.header_values import header_note
from xraydesk.dicomnet.result_objects import make_results
from xraydesk.errors import XRayDeskError


class DicomOutput:
    def __init__(
        self,
        classifier: Classifier,
        out_dir: Path | None,
        send_to: str | None,
        err: TextIO | None = None,
    ) -> None:
        from xraydesk.dicomnet.node import results_dir

        self.classifier = classifier
        self.config = load_config()
        self.node = self.config.node(send_to) if send_to else None  # unknown name: fail now
        self.out_dir = out_dir or results_dir()
        self.err = err or sys.stderr  # looked up now: a test may have replaced it
        self.files: list[Path] = []
        self.not_dicom = 0
        self.failed = 0

    def add(self, row: ResultRow) -> None:
        """Make and write the results of one classified row (errors are reported, counted)."""
        if not row.ok or row.probabilities is None:
            return
        try:
            header = dcmread(row.path, stop_before_pixels=True, force=True)
            is_dicom = "SOPInstanceUID" in header
        except (OSError, InvalidDicomError, ValueError):
            is_dicom = False
        if not is_dicom:
            self.not_dicom += 1
            return
        try:
            objects = make_results(
                row.path, self.classifier, row.probabilities, row.warnings, row.indeterminate
            )
            self.files += objects.write(self.out_dir)
        except XRayDeskError as exc:  # its message names the file, never a header value
            self.failed += 1
            print(f"xraydesk: no DICOM results: {exc}", file=self.err)
            return
        except Exception as exc:  # one file must not stop the run
            # the text of an unexpected error may quote a header value: its type only
            self.failed += 1
            cause = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
            print(f"xraydesk: {row.path}: no DICOM results ({cause})", file=self.err)
            return
        if objects.header_notes:
            print(f"xraydesk: {row.path}: {header_note(objects.header_notes)}", file=self.err)

    def finish(self) -> bool:
        """Say what was written, send it when asked; False when something failed."""
        from xraydesk.dicomnet.scu import DicomNetError, send_files

        count = len(self.files) // 2
        print(f"xraydesk: SR and heat map of {count} image(s) in {self.out_dir}", file=self.err)
        if self.not_dicom:
            print(
                f"xraydesk: {self.not_dicom} classified file(s) are not DICOM: no DICOM results",
                file=self.err,
            )
        if self.node is None or not self.files:
            return self.failed == 0
        try:
            outcome = send_files(self.config, self.node, self.files)
        except DicomNetError as exc:
            print(f"xraydesk: {exc}", file=self.err)
            return False
        print(
            f"xraydesk: {outcome.completed} object(s) sent to {self.node.describe()}",
            file=self.err,
        )
        for message in outcome.messages:
            print(f"xraydesk: {message}", file=self.err)
        return outcome.ok and self.failed == 0
