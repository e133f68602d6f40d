"""The PACS panel: configured nodes, query, retrieve, and the incoming worklist.

Everything on the network runs off the GUI thread (``jobs.Job``), and the panel shows
only what ``xraydesk.dicomnet`` committed: the worklist table is re-read from the results
database (every two seconds while visible, and at once when this app's own node adds a
row), so rows from a ``xraydesk listen`` running elsewhere show up too. Double-clicking a
worklist row opens the stored image in the viewer (``open_image_requested``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QTableWidgetItem,
    QWidget,
)

from xraydesk.batch.rows import indeterminate_words
from xraydesk.dicomnet import (
    NodeConfig,
    StorageNode,
    StudyMatch,
    StudyQuery,
    WorkItem,
    Worklist,
    echo,
    find_studies,
    load_config,
    make_node,
    move_studies,
    send_results,
)
from xraydesk.dicomnet.node import results_dir
from xraydesk.dicomnet.worklist import WorkStatus
from xraydesk.errors import XRayDeskError
from xraydesk.gui.jobs import ClassifierProvider, JobThread
from xraydesk.gui.metadata_panel import MASK
from xraydesk.gui.pacs_layout import MODALITY_CHOICES, build_pacs_layout
from xraydesk.gui.pacs_parts import CallJob, confirm_removal, without_node

log = logging.getLogger(__name__)

REFRESH_MS = 2000
WORKLIST_ROWS = 200
# identifying columns, masked until "Show patient data" (as the viewer's image info)
STUDY_IDENTIFIERS = frozenset({2, 3, 4})
WORKLIST_IDENTIFIERS = frozenset({3})
NO_NODE = (
    "No PACS node is selected: add one under “Add a node” (name, AE title, host, port) "
    "and choose it in the list."
)


class PacsPanel(QWidget):
    open_image_requested = Signal(Path)
    message_shown = Signal(str)
    failed = Signal(str)  # a problem the user must see (the window shows it in its banner)
    worklist_changed = Signal()  # a row was committed by this app's node (any thread)
    studies_found = Signal(object)  # list[StudyMatch]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pacs-panel")
        self._provider: ClassifierProvider | None = None
        self.model_path: Path | None = None  # what ``set_model`` was last given
        self.model_device = "auto"
        self._names: dict[str, str] = {}
        self._jobs: list[JobThread] = []
        self._node: StorageNode | None = None
        self.studies: list[StudyMatch] = []
        self.items: list[WorkItem] = []
        self._build()
        self.worklist_changed.connect(self.refresh_worklist, Qt.ConnectionType.QueuedConnection)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh_if_visible)
        self.timer.start()
        self.reload_config()
        self.refresh_worklist()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        build_pacs_layout(self)

    # -- model -----------------------------------------------------------------------------
    def set_model(self, card_path: str | Path | None, device: str = "auto") -> None:
        """Classify received images with this model (the viewer's active one)."""
        self.model_path = None if card_path is None else Path(card_path)
        self.model_device = device
        if card_path is None:
            self._provider = None
            return
        from xraydesk.classifier.cache import shared_cache
        from xraydesk.model.card import ModelCard

        path = Path(card_path)
        try:
            self._names = ModelCard.read(path).display_names
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            self._provider = None
            return
        self._provider = lambda: shared_cache().get(path, device)

    def set_classifier_provider(self, provider: ClassifierProvider | None) -> None:
        self._provider = provider

    # -- configuration ---------------------------------------------------------------------
    def config(self) -> NodeConfig:
        return load_config()

    def reload_config(self) -> None:
        try:
            config = self.config()
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            return
        current = self.node_combo.currentData()
        self.node_combo.clear()
        for node in config.nodes.values():
            self.node_combo.addItem(node.describe(), node.name)
        index = self.node_combo.findData(current)
        # with a placeholder text Qt selects nothing by itself: the first node then
        self.node_combo.setCurrentIndex(index if index >= 0 else 0 if config.nodes else -1)

    def save_node(self) -> None:
        try:
            node = make_node(
                self.new_name.text(),
                self.new_ae.text(),
                self.new_host.text(),
                self.new_port.value(),
            )
            self.config().with_node(node).save()
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            return
        self.reload_config()
        self.node_combo.setCurrentIndex(self.node_combo.findData(node.name))
        self.show_message(f"Saved {node.describe()}")

    def selected_node_name(self) -> str | None:
        return self.node_combo.currentData()

    def node_names(self) -> list[str]:
        return [self.node_combo.itemData(i) for i in range(self.node_combo.count())]

    def remove_selected(self, confirm: bool = True) -> bool:
        """Remove the selected node from the configuration, after asking."""
        name = self.selected_node_name()
        if not name:
            self.show_problem("No PACS node is selected, so there is nothing to remove.")
            return False
        try:
            config = self.config()
            node = config.node(name)
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            return False
        if confirm and not confirm_removal(self, node.describe()):
            return False
        try:
            without_node(config, name).save()
        except (XRayDeskError, OSError) as exc:
            self.show_problem(f"Cannot remove {name}: {exc}")
            return False
        self.reload_config()
        self.show_message(f"Removed {node.describe()}")
        return True

    # -- network jobs ----------------------------------------------------------------------
    def _run(self, call: Callable[[], object], done: Callable[[object], None]) -> JobThread:
        job = CallJob(call)
        thread = JobThread(job, self)
        job.succeeded.connect(done)
        job.failed.connect(self.show_problem)
        job.done.connect(lambda: self._forget(thread))
        self._jobs.append(thread)
        thread.start()
        return thread

    def _forget(self, thread: JobThread) -> None:
        thread.wait()
        if thread in self._jobs:
            self._jobs.remove(thread)
        thread.deleteLater()

    def _with_node(self, action: Callable[[NodeConfig, object], object], name: str | None = None):
        name = name or self.selected_node_name()
        if not name:
            self.show_problem(NO_NODE)
            return None
        try:
            config = self.config()
            node = config.node(name)
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            return None
        return lambda: action(config, node)

    def echo_selected(self) -> JobThread | None:
        name = self.selected_node_name()
        call = self._with_node(echo)
        if call is None:
            return None
        return self._run(call, lambda s: self.show_message(f"{name} answered in {s * 1000:.0f} ms"))

    def query(self) -> StudyQuery:
        return StudyQuery(
            patient_id=self.patient_edit.text().strip(),
            accession=self.accession_edit.text().strip(),
            date_from=self.date_from_edit.text().strip(),
            date_to=self.date_to_edit.text().strip(),
            modalities=MODALITY_CHOICES[self.modality_combo.currentText()],
        )

    def find(self) -> JobThread | None:
        query = self.query()
        call = self._with_node(lambda config, node: find_studies(config, node, query))
        return None if call is None else self._run(call, self._show_studies)

    @Slot(object)
    def _show_studies(self, matches: object) -> None:
        self.studies = list(matches)  # type: ignore[call-overload]
        self._fill_studies()
        self.show_message(f"{len(self.studies)} studies found")
        self.studies_found.emit(self.studies)

    def _fill_studies(self) -> None:
        table = self.study_table
        table.setRowCount(len(self.studies))
        for r, m in enumerate(self.studies):
            values = (m.study_date, m.modalities, m.accession, m.patient_id, m.patient_name,
                      m.description)  # fmt: skip
            for c, value in enumerate(values):
                table.setItem(r, c, QTableWidgetItem(self._shown(value, c in STUDY_IDENTIFIERS)))

    # -- identifiers -----------------------------------------------------------------------
    @property
    def identifiers_revealed(self) -> bool:
        return self.reveal_button.isChecked()

    @Slot(bool)
    def set_identifiers_revealed(self, revealed: bool) -> None:
        """Show or mask patient IDs, names and accession numbers in both tables."""
        if self.reveal_button.isChecked() != revealed:
            self.reveal_button.setChecked(revealed)  # comes back here through toggled
            return
        self.reveal_button.setText("Hide patient data" if revealed else "Show patient data")
        self._fill_studies()
        self.refresh_worklist()

    def _shown(self, value: str | None, identifying: bool) -> str:
        if identifying and value and not self.identifiers_revealed:
            return MASK
        return value or ""

    def retrieve_selected(self) -> JobThread | None:
        rows = sorted({i.row() for i in self.study_table.selectedIndexes()})
        uids = [self.studies[r].study_uid for r in rows if r < len(self.studies)]
        if not uids:
            self.show_message("Select the studies to retrieve.")
            return None
        call = self._with_node(lambda config, node: move_studies(config, node, uids))

        def done(outcome: object) -> None:
            text = f"Retrieved {outcome.completed} images ({outcome.failed} failed)"  # type: ignore[attr-defined]
            messages = getattr(outcome, "messages", [])
            self.show_message("; ".join([text, *messages]))

        return None if call is None else self._run(call, done)

    def send_results(
        self,
        source: Path,
        probabilities: dict[str, float] | None = None,
        node_name: str | None = None,
    ) -> JobThread | None:
        """SR + heat-map Secondary Capture of ``source`` to ``node_name`` (default: the
        selected node), for the viewer's "Send result to PACS"."""
        if self._provider is None:
            self.show_problem("Cannot send to the PACS: no model is loaded.")
            return None
        provider = self._provider

        def action(config: NodeConfig, node: object) -> object:
            note, _warnings = send_results(
                config,
                node,
                provider(),
                Path(source),
                probabilities,
                results_dir(),  # type: ignore[arg-type]
            )
            return note

        def done(note: object) -> None:
            text = str(note)
            if text.startswith("not sent"):  # send_results returns its failure as the note
                self.show_problem(f"The result was {text}")
            else:
                self.show_message(text)

        call = self._with_node(action, node_name)
        return None if call is None else self._run(call, done)

    # -- the node in this app --------------------------------------------------------------
    @Slot(bool)
    def _toggle_node(self, on: bool) -> None:
        if on and self._node is None:
            if self._provider is None:
                self.show_problem("No model is loaded: the node cannot classify.")
                self.listen_button.setChecked(False)
                return
            try:
                node = StorageNode(
                    self.config(), self._provider(), on_item=lambda _i: self.worklist_changed.emit()
                )
                port = node.start()
            except XRayDeskError as exc:
                self.show_problem(str(exc))
                self.listen_button.setChecked(False)
                return
            self._node = node
            self.listen_button.setText("Stop receiving")
            self.show_message(f"Receiving on port {port} as {node.config.ae_title}")
        elif not on and self._node is not None:
            self._stop_node()

    def _stop_node(self) -> None:
        node, self._node = self._node, None
        if node is not None:
            node.stop()
        self.listen_button.setText("Start receiving")

    @property
    def node(self) -> StorageNode | None:
        return self._node

    # -- worklist --------------------------------------------------------------------------
    def _refresh_if_visible(self) -> None:
        if self.isVisible():
            self.refresh_worklist()

    @Slot()
    def refresh_worklist(self) -> None:
        try:
            with Worklist() as worklist:
                self.items = worklist.items(limit=WORKLIST_ROWS)
        except XRayDeskError as exc:
            self.show_problem(str(exc))
            return
        table = self.worklist_table
        table.setRowCount(len(self.items))
        for r, item in enumerate(self.items):
            prediction = ""
            if item.prediction:
                p = (item.probabilities or {}).get(item.prediction, 0.0)
                prediction = f"{self._names.get(item.prediction, item.prediction)} {p:.0%}"
            elif item.indeterminate:  # classified, no class named: say so, and its finding
                prediction = indeterminate_words(item.finding)
            notes = "; ".join(filter(None, [item.error, *item.warnings, item.results]))
            values = (item.received_at[:19].replace("T", " "), item.status, item.modality or "",
                      self._shown(item.patient_id, True), prediction, notes)  # fmt: skip
            for c, value in enumerate(values):
                cell = QTableWidgetItem(value)
                if item.status in (WorkStatus.FAILED, WorkStatus.SKIPPED) or item.warnings:
                    cell.setForeground(Qt.GlobalColor.darkRed)
                table.setItem(r, c, cell)
        table.resizeColumnToContents(4)  # "Indeterminate (finds pneumonia)" in full

    @Slot(int, int)
    def _open_row(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.items) and self.items[row].path is not None:
            self.open_image_requested.emit(self.items[row].path)

    # -- messages and lifetime -------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.status_label.setText(text)
        self.message_shown.emit(text)

    def show_problem(self, text: str) -> None:
        """A failure or a missing choice: in the panel, and (``failed``) in the window's
        banner, whole, until dismissed."""
        self.show_message(text)
        self.failed.emit(text)

    def shutdown(self, wait_ms: int = 30_000) -> None:
        """Stop the node and wait for network jobs (before the panel or the app goes away)."""
        self.timer.stop()
        self._stop_node()
        for thread in list(self._jobs):
            thread.wait(wait_ms)
        QCoreApplication.sendPostedEvents(self)
