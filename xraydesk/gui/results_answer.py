"""What the results panel holds back, and how the user brings it back.

Three states of the answer on screen:

- **withheld by the input gate** (the image itself is wrong): the bars wait behind "Show
  probabilities anyway" and come back greyed;
- **indeterminate** (the operating rule names no class): "Indeterminate: the model is
  not sure" with the rule's reason, the bars collapsed one click away, no class
  highlighted;
- **given**: the bars, the predicted class highlighted.

While the bars are not on screen nothing else names the class they hold: the heat map
and its label stay hidden (``viewer.heat_policy``), and the "Explains" choice is
cleared. A result that names no class (gate failed, indeterminate) keeps them so even
after its numbers are opened: a map shows what supports one class. A mixin of
``ResultsPanel`` (it uses the panel's bars, labels and combos).
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QToolButton, QVBoxLayout

from xraydesk.trust.codes import INDETERMINATE_REASONS, MIRRORED, ResultWarning
from xraydesk.trust.orient import correction_text
from xraydesk.viewer.heat_policy import HOLD_TEXT, HeatHold

INDETERMINATE_TITLE = "Indeterminate: the model is not sure"
SHOW_PROBABILITIES, HIDE_PROBABILITIES = "Show probabilities", "Hide probabilities"
FLIP_TEXT = "Flip left-right and analyse again"


class AnswerDisplay:
    """The answer's visibility: the gate's "Show anyway", the indeterminate headline with
    its collapsed probabilities, and the heat map held with them."""

    # -- layout (called by the panel while it builds its sections) --------------------------
    def _build_verdict(self, layout: QVBoxLayout) -> None:
        """The indeterminate headline (above the warnings)."""
        self._indeterminate_reason: str | None = None
        self._collapsed = False
        self._hidden_by_gate = False
        self._gate_failed = False  # stays True after "Show anyway": still no class given
        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("indeterminate")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(Qt.TextFormat.RichText)
        self.verdict_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict_label.setStyleSheet(
            "QLabel#indeterminate { background: #1f3147; color: #d6e6ff; "
            "border: 1px solid #4a7bb7; border-radius: 4px; padding: 6px; }"
        )
        self.verdict_label.hide()
        layout.addWidget(self.verdict_label)

    def _build_toggle(self, layout: QVBoxLayout) -> None:
        """The one click between an indeterminate headline and its probabilities."""
        self.probabilities_toggle = QToolButton()
        self.probabilities_toggle.setCheckable(True)
        self.probabilities_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.probabilities_toggle.setToolTip(
            "The numbers the model gave; no class is named, because it is not sure"
        )
        self.probabilities_toggle.toggled.connect(self._on_probabilities_toggled)
        self.probabilities_toggle.hide()
        layout.addWidget(self.probabilities_toggle)

    def _build_heat_request(self, layout: QVBoxLayout) -> None:
        """The heat map offered, not shown, for a Normal answer."""
        self.heat_request_button = QPushButton()
        self.heat_request_button.clicked.connect(self.heat_map_requested)
        self.heat_request_button.hide()
        layout.addWidget(self.heat_request_button)

    # -- the verdict ------------------------------------------------------------------------
    def show_warnings(self, warnings: list[ResultWarning]) -> None:
        """Reasons not to trust the probabilities (``ResultWarning``s), above the bars; the
        indeterminate one (``INDETERMINATE_REASONS``: the operating rule's, or evidence
        outside the lungs) is the headline's reason, so it is not repeated here."""
        self._warnings = list(warnings)
        shown = [w for w in warnings if w.code not in INDETERMINATE_REASONS]
        self.warnings_label.setText("\n".join(f"⚠ {w.message}" for w in shown))
        self.warnings_label.setToolTip(", ".join(w.code for w in warnings))
        self.warnings_label.setVisible(bool(shown))

    @property
    def warnings(self) -> list[ResultWarning]:
        return list(self._warnings)

    def show_trust(self, checked: object | None, others: list[ResultWarning]) -> None:
        """The verdict's warnings (a ``CheckedResult``) with ``others`` (population): the
        numbers hidden behind "show anyway" when the gate failed, collapsed under the
        indeterminate headline when the operating rule names no class, the correction
        offered when the gate is sure what is wrong, and a flip when the film looks
        mirrored."""
        found = list(others) + list(getattr(checked, "warnings", ()))
        self.show_warnings(found)
        gate = getattr(checked, "gate", None)
        correction = getattr(checked, "correction", None)
        if correction:
            text = self.warnings_label.text() + f"\n✔ Corrected in memory: {correction}."
            self.warnings_label.setText(text.lstrip("\n"))
            self.warnings_label.show()
        self.correct_button.setVisible(bool(gate is not None and gate.correctable))
        self.flip_button.setVisible(any(w.code == MIRRORED for w in found))
        if gate is not None and gate.correctable:
            self.correct_button.setText(f"Correct: {correction_text(gate)}, classify again")
        self._hidden_by_gate = bool(getattr(checked, "gate_failed", False))
        self._gate_failed = self._hidden_by_gate
        reason = next((w.message for w in found if w.code in INDETERMINATE_REASONS), None)
        self._indeterminate_reason = reason
        self._collapsed = reason is not None
        if reason is not None:  # no class is named: none highlighted
            for bar in self._bars.values():
                bar.set_value(bar.probability, False)
            self.verdict_label.setText(f"<b>{INDETERMINATE_TITLE}</b><br>{escape(reason)}")
        self.verdict_label.setVisible(reason is not None)
        self._sync_answer()

    @property
    def probabilities_hidden(self) -> bool:
        """The bars are not on screen (gate not passed, or indeterminate and collapsed)."""
        return self._hidden_by_gate or (self._indeterminate_reason is not None and self._collapsed)

    @property
    def withheld_by_gate(self) -> bool:
        """The input gate failed and "Show anyway" was not clicked."""
        return self._hidden_by_gate

    @property
    def gate_failed(self) -> bool:
        """The input gate failed: no class is given, whether or not "Show anyway" was
        clicked (the verdict withholds it; the numbers are only the model's)."""
        return self._gate_failed

    @property
    def names_no_class(self) -> bool:
        """The result on screen gives no class (gate failed, or indeterminate), its
        numbers opened or not: no heat map and no "Explains" choice then."""
        return self._gate_failed or self._indeterminate_reason is not None

    @property
    def indeterminate_reason(self) -> str | None:
        """Why no class is named (the ``indeterminate`` warning), None when one is."""
        return self._indeterminate_reason

    def reveal_probabilities(self) -> None:
        """ "Show anyway": the numbers, greyed, under the warning that stays."""
        self._hidden_by_gate = False
        self._collapsed = False
        for bar in self._bars.values():
            bar.setEnabled(False)  # greyed: painted dim
        self._sync_answer()

    def set_probabilities_expanded(self, expanded: bool) -> None:
        """Open or collapse an indeterminate result's probabilities (the toggle's click)."""
        self.probabilities_toggle.setChecked(expanded)

    def _on_probabilities_toggled(self, expanded: bool) -> None:
        self._collapsed = not expanded
        self._sync_answer()

    def _reset_answer(self) -> None:
        self._hidden_by_gate = False
        self._gate_failed = False
        self._indeterminate_reason = None
        self._collapsed = False
        self.verdict_label.hide()
        self.probabilities_toggle.hide()
        self.heat_request_button.hide()

    def _sync_answer(self) -> None:
        """Put the bars, the buttons and the "Explains" choice in step with the state,
        and tell the viewer (its heat map follows the bars)."""
        hidden = self.probabilities_hidden
        for bar in self._bars.values():
            bar.setVisible(not hidden)
        self.show_anyway_button.setVisible(self._hidden_by_gate)
        toggle = self.probabilities_toggle
        toggle.setVisible(self._indeterminate_reason is not None and not self._hidden_by_gate)
        with QSignalBlocker(toggle):
            toggle.setChecked(not self._collapsed)
        arrow = Qt.ArrowType.RightArrow if self._collapsed else Qt.ArrowType.DownArrow
        toggle.setText(SHOW_PROBABILITIES if self._collapsed else HIDE_PROBABILITIES)
        toggle.setArrowType(arrow)
        no_choice = hidden or self.names_no_class  # no map, so nothing to explain
        with QSignalBlocker(self.class_combo):
            if no_choice:  # its current item would name the class held back
                self.class_combo.setCurrentIndex(-1)
            elif self.class_combo.currentIndex() < 0 and self._prediction is not None:
                self.class_combo.setCurrentIndex(
                    self.class_combo.findData(self._prediction.predicted)
                )
        self.class_combo.setEnabled(not no_choice and self.class_combo.count() > 0)
        self.answer_shown.emit(not hidden)

    # -- the heat map held back -------------------------------------------------------------
    def show_cam_held(self, hold: HeatHold, class_name: str) -> None:
        """Say why no heat map is shown; a Normal answer's is offered on a button."""
        self.cam_label.setText(HOLD_TEXT[hold])
        normal = hold is HeatHold.NORMAL
        if normal:
            self.heat_request_button.setText(f"Show heat map: what supports “{class_name}”")
        self.heat_request_button.setVisible(normal)

    def set_cam_class(self, class_id: str) -> None:
        """Show ``class_id`` as the explained class, without a signal."""
        index = self.class_combo.findData(class_id)
        if index >= 0:
            with QSignalBlocker(self.class_combo):
                self.class_combo.setCurrentIndex(index)
