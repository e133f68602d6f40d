"""The main window's model handling: which model is in use, on which device, loading it.

A mixin of ``MainWindow`` (it uses the window's ``models``, ``model_loader``, ``analysis``,
``results`` and signals): every way of choosing a model or device ends in these methods.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog

from xraydesk import paths
from xraydesk.errors import ModelError
from xraydesk.gui.banner import WARNING
from xraydesk.gui.model_choice import population_check


def no_model_message() -> str:
    return (
        "No model is installed. XRayDesk shows images, but needs a model for probabilities "
        f"and heat maps. Add a model card (.json) and its weights to {paths.user_models_dir()}, "
        "train one with `xraydesk train`, or start with `xraydesk --model CARD.json`."
    )


class ModelActions:
    """Model > …, the results panel's selector and the device menu, for ``MainWindow``."""

    @property
    def active_model_path(self) -> Path | None:
        return self.models.path

    @property
    def device(self) -> str:
        return self._device

    def refresh_models(self) -> None:
        """Re-read the model library (after training, import, rename or delete)."""
        cards = self.models.cards()
        current = self.models.current_among(cards)
        self.results.set_models(cards, current)
        new_path = Path(current) if current else None
        self.results.show_no_model(None if cards else no_model_message())
        if new_path != self.models.path:
            self.models.path = new_path
            self._announce_model()
            if self.analysis.xray is not None:
                self.analysis.rerun()
        self.sync_actions()

    def set_active_model(self, name_or_card_path: str | Path) -> bool:
        """Use this model (a library name or a card path); re-runs the current image.

        Every way of choosing a model ends here: the command line, Model > Use a model
        file, the wizard, the model manager and the results panel's selector.
        """
        try:
            card_path = self.models.resolve(name_or_card_path)
        except ModelError as exc:
            self.show_message(str(exc))
            self.refresh_models()  # the selector goes back to the model in use
            return False
        self.models.select(card_path)
        self.refresh_models()
        self._announce_model()
        self._load_model(card_path)
        self.analysis.rerun()
        self._warn_population(card_path)
        return True

    def _warn_population(self, card_path: Path) -> None:
        """Switching to a model whose population leaves out the patient on screen is said
        at once, not only in the results (a pediatric model on an adult film)."""
        warnings = population_check(card_path, self.analysis.xray)
        if warnings:
            self.show_message(f"Now using {card_path.stem}. {warnings[0].message}", WARNING)

    @Slot(str)
    def _on_model_selected(self, card_path: str) -> None:
        """The results panel's selector: a different model is used as any other way."""
        if Path(card_path) != self.models.path:
            self.set_active_model(card_path)

    def _announce_model(self) -> None:
        """Tell the app and every tool panel which model (and device) is active now."""
        self.model_changed.emit(self.models.path)
        self.active_model_changed.emit(self.models.path, self._device)

    def _load_model(self, card_path: Path | None) -> None:
        """Load this model on a worker thread (nothing to do when it is already loaded)."""
        if card_path is not None:
            self.model_loader.load(card_path, self._device)

    @Slot(object)
    def _on_model_loading(self, card_path: Path) -> None:
        self.model_state_label.setText(f"Loading model {card_path.stem}…")
        self.statusBar().showMessage(
            f"Loading model {card_path.stem}… Images can be opened now; they are classified "
            "as soon as it is ready."
        )

    @Slot(object)
    def _on_model_ready(self, card_path: Path) -> None:
        if self.model_loader.is_loading():
            return  # another model (or device) is on its way: keep saying so
        self.model_state_label.setText(f"Model {card_path.stem} ready")
        self.statusBar().showMessage(f"Model {card_path.stem} ready.", 5000)

    @Slot(object, str)
    def _on_model_failed(self, card_path: Path, message: str) -> None:
        self.model_state_label.setText(f"Model {card_path.stem} not loaded")
        if card_path == self.models.path and self.analysis.xray is None:
            self.show_message(message)  # with an image on screen its analysis says it

    def choose_model_file(self) -> None:
        """Model > Use a model file: ask for a card anywhere on disk."""
        start = str(paths.user_models_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Use a model", start, "Model cards (*.json)")
        if path:
            self.set_active_model(path)

    def set_device(self, device: str) -> None:
        if device == self._device:
            return
        self._device = device
        self.settings.device = device
        for action in self.device_group.actions():
            action.setChecked(action.data() == device)
        self.active_model_changed.emit(self.models.path, device)  # tool panels follow it too
        self._load_model(self.models.path)
        self.analysis.rerun()
