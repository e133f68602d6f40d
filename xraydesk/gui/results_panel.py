"""The right-hand panel: model choice, class probabilities and the heat-map controls.

What is held back (gate, indeterminate, the heat map with them) is ``results_answer``'s;
the bars and the colour scale are drawn in ``result_bars``.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from xraydesk.classifier import Prediction
from xraydesk.explain import DEFAULT_METHOD, EMPTY_HEATMAP, METHODS
from xraydesk.explain.methods import available as method_available
from xraydesk.gui.result_bars import (  # noqa: F401  (re-exported: the panel's pieces)
    ACCENT,
    BAR_FILL,
    BAR_TRACK,
    NOTICE,
    ColorScaleLegend,
    ProbabilityBar,
    section_title,
)
from xraydesk.gui.results_answer import FLIP_TEXT, AnswerDisplay
from xraydesk.model.card import ModelCard
from xraydesk.viewer.viewstate import DEFAULT_OPACITY, MAX_OPACITY


class ResultsPanel(AnswerDisplay, QWidget):
    model_selected = Signal(str)  # card path
    overlay_toggled = Signal(bool)
    opacity_changed = Signal(float)
    cam_class_selected = Signal(str)  # class id
    cam_method_selected = Signal(str)  # heat-map method key (explain.METHODS)
    correct_requested = Signal()  # the one-click orientation/inversion correction
    flip_requested = Signal()  # a film flagged mirrored: flip left-right, analyse again
    answer_shown = Signal(bool)  # the bars are on screen (False: withheld or collapsed)
    heat_map_requested = Signal()  # "Show heat map" for an answer whose map is offered

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsPanel")
        self._bars: dict[str, ProbabilityBar] = {}
        self._prediction: Prediction | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        self._warnings: list = []
        self._build_model(layout)
        self._build_probabilities(layout)
        self._build_heat_map(layout)
        self._build_notice(layout)
        self.set_opacity(DEFAULT_OPACITY)

    # -- layout ---------------------------------------------------------------------------
    def _build_model(self, layout: QVBoxLayout) -> None:
        layout.addWidget(section_title("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setPlaceholderText("No model installed")
        self.model_combo.currentIndexChanged.connect(self._on_model_index)
        layout.addWidget(self.model_combo)
        self.no_model_label = QLabel()
        self.no_model_label.setObjectName("noModel")
        self.no_model_label.setWordWrap(True)
        self.no_model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.no_model_label.hide()
        layout.addWidget(self.no_model_label)
        self.profile_label = QLabel()  # the model's site profile (model.site_profile)
        self.profile_label.setObjectName("siteProfile")
        self.profile_label.setWordWrap(True)
        self.profile_label.hide()
        layout.addWidget(self.profile_label)

    def _build_probabilities(self, layout: QVBoxLayout) -> None:
        """The probabilities, under the reasons not to trust them."""
        layout.addSpacing(6)
        layout.addWidget(section_title("Probabilities"))
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("resultWarning")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings_label.setStyleSheet(
            "QLabel#resultWarning { background: #4a3512; color: #ffd9a0; "
            "border: 1px solid #c98a2b; border-radius: 4px; padding: 6px; }"
        )
        self.warnings_label.hide()
        self._build_verdict(layout)
        layout.addWidget(self.warnings_label)
        # when the input gate fails, the numbers wait behind "show anyway"; a
        # confidently rotated or inverted image gets a one-click correction
        self.correct_button = QPushButton("Correct orientation and classify again")
        self.correct_button.clicked.connect(self.correct_requested)
        self.correct_button.hide()
        layout.addWidget(self.correct_button)
        self.flip_button = QPushButton(FLIP_TEXT)  # shown with the ``mirrored`` warning
        self.flip_button.setToolTip("Mirror the pixels in memory (the file is unchanged)")
        self.flip_button.clicked.connect(self.flip_requested)
        self.flip_button.hide()
        layout.addWidget(self.flip_button)
        self.show_anyway_button = QPushButton("Show probabilities anyway")
        self.show_anyway_button.clicked.connect(self.reveal_probabilities)
        self.show_anyway_button.hide()
        layout.addWidget(self.show_anyway_button)
        self._build_toggle(layout)
        self.bars_box = QVBoxLayout()
        self.bars_box.setSpacing(6)
        layout.addLayout(self.bars_box)
        self.placeholder = QLabel("Open an image to see the class probabilities.")
        self.placeholder.setObjectName("dim")
        self.placeholder.setWordWrap(True)
        self.bars_box.addWidget(self.placeholder)
        self.details_label = QLabel()
        self.details_label.setObjectName("dim")
        self.details_label.setWordWrap(True)
        layout.addWidget(self.details_label)

    def _build_heat_map(self, layout: QVBoxLayout) -> None:
        layout.addSpacing(6)
        layout.addWidget(section_title("Heat map"))
        self.overlay_check = QCheckBox("Show heat map  (H)")
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(self.overlay_toggled)
        layout.addWidget(self.overlay_check)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.addWidget(QLabel("Opacity"), 0, 0)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, round(MAX_OPACITY * 100))
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        grid.addWidget(self.opacity_slider, 0, 1)
        self.opacity_value = QLabel()
        self.opacity_value.setMinimumWidth(38)
        self.opacity_value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.opacity_value, 0, 2)
        grid.addWidget(QLabel("Explains"), 1, 0)
        self.class_combo = QComboBox()
        self.class_combo.setEnabled(False)
        self.class_combo.setPlaceholderText("the predicted class")
        self.class_combo.activated.connect(self._on_class_activated)
        grid.addWidget(self.class_combo, 1, 1, 1, 2)
        grid.addWidget(QLabel("Method"), 2, 0)
        self.method_combo = QComboBox()
        for method in METHODS.values():
            self.method_combo.addItem(method.label, method.key)
            index = self.method_combo.count() - 1
            summary = method.summary
            if not method_available(method.key):  # the light build: no backward pass
                summary += " Needs the full build (with PyTorch)."
                self.method_combo.model().item(index).setEnabled(False)
            self.method_combo.setItemData(index, summary, Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setToolTip("How the heat map is computed (CAM: fastest)")
        self.method_combo.setCurrentIndex(self.method_combo.findData(DEFAULT_METHOD))
        self.method_combo.activated.connect(self._on_method_activated)
        grid.addWidget(self.method_combo, 2, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.legend = ColorScaleLegend()
        layout.addWidget(self.legend)
        self.cam_label = QLabel()
        self.cam_label.setObjectName("dim")
        self.cam_label.setWordWrap(True)
        layout.addWidget(self.cam_label)
        self._build_heat_request(layout)

    def _build_notice(self, layout: QVBoxLayout) -> None:
        layout.addStretch(1)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setObjectName("separator")
        layout.addWidget(line)
        notice = QLabel(NOTICE)
        notice.setObjectName("notice")
        notice.setWordWrap(True)
        layout.addWidget(notice)

    # -- models ---------------------------------------------------------------------------
    def set_models(self, cards: list[ModelCard], current: str | None) -> None:
        """Fill the selector; ``current`` is a card path. Empty list: the no-model state."""
        blocker = QSignalBlocker(self.model_combo)
        self.model_combo.clear()
        for card in cards:
            source = {"bundled": "bundled", "user": "fine-tuned"}.get(card.source, "file")
            self.model_combo.addItem(f"{card.label}  ({source})", str(card.path))
            self.model_combo.setItemData(
                self.model_combo.count() - 1,
                f"{card.description or card.name}\n{card.path}",
                Qt.ItemDataRole.ToolTipRole,
            )
        index = self.model_combo.findData(current) if current else -1
        self.model_combo.setCurrentIndex(max(index, 0) if cards else -1)
        del blocker
        self.model_combo.setEnabled(bool(cards))

    def show_no_model(self, message: str | None) -> None:
        """A visible explanation instead of probabilities when no model can be used."""
        if message:
            self.no_model_label.setText(message)
            self.no_model_label.show()
            self.placeholder.setText("No probabilities: no model is available.")
        else:
            self.no_model_label.hide()
            self.placeholder.setText("Open an image to see the class probabilities.")
        for widget in (self.overlay_check, self.opacity_slider, self.legend):
            widget.setEnabled(not message)

    def _on_model_index(self, index: int) -> None:
        data = self.model_combo.itemData(index) if index >= 0 else None
        if data:
            self.model_selected.emit(str(data))

    def show_profile(self, line: str | None) -> None:
        """The active model's site profile ("calibrated for this site on n = ..."), or none."""
        self.profile_label.setText(f"Site profile: {line}" if line else "")
        self.profile_label.setVisible(bool(line))

    # -- probabilities --------------------------------------------------------------------
    def clear_results(self, text: str | None = None) -> None:
        self._prediction = None
        self.show_warnings([])
        self.correct_button.hide()
        self.flip_button.hide()
        self.show_anyway_button.hide()
        self._reset_answer()
        for bar in self._bars.values():
            bar.setParent(None)
            bar.deleteLater()
        self._bars.clear()
        self.placeholder.setText(text or "Open an image to see the class probabilities.")
        self.placeholder.show()
        self.details_label.clear()
        self.class_combo.clear()
        self.class_combo.setEnabled(False)
        self.cam_label.clear()

    def show_pending(self, text: str) -> None:
        self.clear_results(text)

    def show_prediction(self, prediction: Prediction) -> None:
        self.clear_results()
        self._prediction = prediction
        self.placeholder.hide()
        # the model's own class order, the same on every image, so the eye finds a class
        # in the same place while paging through a folder; the highlight marks the winner
        for class_id, probability in prediction.probabilities.items():
            bar = ProbabilityBar(prediction.display_names.get(class_id, class_id))
            bar.set_value(probability, class_id == prediction.predicted)
            self._bars[class_id] = bar
            self.bars_box.addWidget(bar)
        self.details_label.setText(
            f"Model {prediction.model}\n"
            f"{prediction.device}  ·  inference {prediction.seconds:.2f} s"
        )
        with QSignalBlocker(self.class_combo):
            for class_id in prediction.probabilities:
                self.class_combo.addItem(prediction.display_names.get(class_id, class_id), class_id)
            self.class_combo.setCurrentIndex(self.class_combo.findData(prediction.predicted))
        self.class_combo.setEnabled(True)
        self.cam_label.setText("Computing heat map…")

    def shown_probabilities(self) -> dict[str, float]:
        """What the bars show, by class id (for tests and the report)."""
        return {cid: bar.probability for cid, bar in self._bars.items()}

    def bar(self, class_id: str) -> ProbabilityBar:
        return self._bars[class_id]

    @property
    def prediction(self) -> Prediction | None:
        return self._prediction

    # -- heat map -------------------------------------------------------------------------
    def show_cam_done(self, class_name: str, seconds: float, method: str = "CAM") -> None:
        """``method``: the method's label ("CAM", "Grad-CAM")."""
        self.heat_request_button.hide()
        self.cam_label.setText(f"Shows what supports “{class_name}”  ·  {method} {seconds:.2f} s")

    def show_cam_empty(self, class_name: str, method: str = "CAM") -> None:
        """The map was computed but singles nothing out: no colours, and no "Explains"."""
        text = EMPTY_HEATMAP[0].upper() + EMPTY_HEATMAP[1:]
        self.heat_request_button.hide()
        self.cam_label.setText(
            f"{text} ({method} for “{class_name}” is all zero or flat), so nothing is "
            "overlaid. The probabilities are shown without an explanation."
        )

    def show_cam_pending(self) -> None:
        self.heat_request_button.hide()
        self.cam_label.setText("Computing heat map…")

    def show_cam_failed(self, message: str) -> None:
        self.heat_request_button.hide()
        self.cam_label.setText(f"No heat map: {message}")

    def set_overlay_checked(self, checked: bool) -> None:
        with QSignalBlocker(self.overlay_check):
            self.overlay_check.setChecked(checked)

    def set_opacity(self, opacity: float) -> None:
        with QSignalBlocker(self.opacity_slider):
            self.opacity_slider.setValue(round(opacity * 100))
        self.opacity_value.setText(f"{round(opacity * 100)}%")

    def set_cam_method(self, method: str) -> None:
        """Show ``method`` (a key of ``explain.METHODS``) as chosen, without a signal."""
        index = self.method_combo.findData(method)
        if index >= 0:
            with QSignalBlocker(self.method_combo):
                self.method_combo.setCurrentIndex(index)

    def cam_method(self) -> str:
        return str(self.method_combo.currentData())

    def _on_method_activated(self, index: int) -> None:
        data = self.method_combo.itemData(index)
        if data:
            self.cam_method_selected.emit(str(data))

    def cam_class(self) -> str | None:
        data = self.class_combo.currentData()
        return str(data) if data else None

    def _on_opacity(self, value: int) -> None:
        self.opacity_value.setText(f"{value}%")
        self.opacity_changed.emit(value / 100.0)

    def _on_class_activated(self, index: int) -> None:
        data = self.class_combo.itemData(index)
        if data:
            self.cam_class_selected.emit(str(data))
