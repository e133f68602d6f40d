"""The tools around the viewer: batch panel, fine-tuning wizard and model manager.

Kept out of ``main_window`` so the viewer stands on its own (and its tests stay small);
``install_tools`` wires each tool to the window through the window's public methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMenu

from xraydesk.gui.batch_panel import BatchPanel
from xraydesk.gui.main_window import MainWindow
from xraydesk.gui.pacs_panel import PacsPanel


@dataclass(frozen=True)
class Tools:
    batch: BatchPanel
    train_action: QAction
    manage_action: QAction
    pacs: PacsPanel | None = None
    send_action: QAction | None = None
    validate_action: QAction | None = None


def install_tools(window: MainWindow) -> Tools:
    """Dock the batch panel and add the Model menu's wizard and manager entries.

    The batch panel follows the viewer's active model and device, and double-clicking one
    of its rows opens the image in the viewer (``add_tool_panel`` connects both).
    """
    batch = BatchPanel()
    window.add_tool_panel(batch, "Batch")  # follows the active model and device from now on

    menu = window.model_menu
    menu.addSeparator()
    train = QAction("&Train or fine-tune a model…", window)
    train.setShortcut("Ctrl+T")
    train.triggered.connect(lambda: open_wizard(window))
    manage = QAction("&Manage models…", window)
    manage.triggered.connect(lambda: open_models_dialog(window))
    validate = QAction("&Validate a model on your images…", window)
    validate.triggered.connect(lambda: open_validate_page(window))
    menu.addAction(train)
    menu.addAction(validate)
    menu.addAction(manage)
    pacs, send = install_pacs(window)
    return Tools(batch, train, manage, pacs, send, validate)


def install_pacs(window: MainWindow) -> tuple[PacsPanel, QAction]:
    """Dock the PACS panel (following the active model) and put "Send result to PACS"
    beside the viewer's exports in the File menu (above Quit). The panel's failures go to
    the window's banner, whole, until dismissed."""
    pacs = PacsPanel()
    pacs.message_shown.connect(lambda text: window.statusBar().showMessage(text, 8000))
    pacs.failed.connect(window.show_message)
    window.add_tool_panel(pacs, "PACS")
    send = QAction("Send result to &PACS…", window)
    send.setToolTip("Send the structured report and the heat map of this image to a PACS node")
    send.triggered.connect(lambda: send_result_to_pacs(window, pacs))
    export = window.actions_by_id["export_image"]
    menus = [m for m in export.associatedObjects() if isinstance(m, QMenu)]
    if menus:
        actions = menus[0].actions()
        after = actions.index(export) + 1
        menus[0].insertAction(actions[after] if after < len(actions) else None, send)
    else:
        window.model_menu.addAction(send)
    return pacs, send


def send_result_to_pacs(window: MainWindow, pacs: PacsPanel, node: str | None = None):
    """SR + heat-map Secondary Capture of the image shown, to a PACS node: the only one,
    or the one the user picks when there are several."""
    xray, prediction = window.current_xray, window.current_prediction
    if xray is None:
        window.show_message("Open a DICOM image first, then send its result to the PACS.")
        return None
    if node is None:
        names = pacs.node_names()
        if not names:
            window.show_message(
                "No PACS node is configured: add one in the PACS panel (View > Panels > PACS)."
            )
            return None
        node = names[0]
        if len(names) > 1:
            current = names.index(pacs.selected_node_name() or names[0])
            node, chosen = QInputDialog.getItem(
                window, "Send result to PACS", "Send to:", names, current, False
            )
            if not chosen:
                return None
    probabilities = dict(prediction.probabilities) if prediction is not None else None
    return pacs.send_results(xray.path, probabilities, node_name=node)


def _use_model(window: MainWindow, card_path: Path) -> None:
    window.refresh_models()
    window.set_active_model(card_path)


def open_wizard(window: MainWindow):
    """Non-modal: the viewer stays usable while a model trains."""
    from xraydesk.gui.wizard.wizard import TrainingWizard

    wizard = TrainingWizard(window)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wizard.model_ready.connect(lambda path: _use_model(window, Path(path)))
    wizard.show()
    return wizard


def open_validate_page(window: MainWindow):
    """Non-modal, like the wizard: the site's labelled images are classified off the GUI
    thread. An adopted profile shows in the results panel from the next image on."""
    from xraydesk.gui.validate_page import ValidatePage

    page = ValidatePage(window, window.active_model_path, window.device)
    page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    page.profile_adopted.connect(lambda _path: window.refresh_models())
    page.show()
    return page


def open_models_dialog(window: MainWindow):
    from xraydesk.gui.models_dialog import ModelsDialog

    dialog = ModelsDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.model_chosen.connect(lambda path: _use_model(window, Path(path)))
    dialog.models_changed.connect(window.refresh_models)
    dialog.show()
    return dialog
