"""Help > Keyboard shortcuts, Help > About, and the first-start notice."""

from __future__ import annotations

import html
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from xraydesk import __version__
from xraydesk.gui.card_html import figures_html
from xraydesk.gui.shortcuts import MOUSE_GESTURES, SHORTCUTS
from xraydesk.model.card import ModelCard

FIRST_START_TEXT = (
    "<p><b>XRayDesk assists and does not diagnose.</b></p>"
    "<p>It shows a machine-learning model's class probabilities and a heat map of the "
    "regions that drove them. Models can be wrong, and are often wrong on images unlike "
    "those they learned from (other hospitals, children, devices, projections).</p>"
    "<p>Every finding must be confirmed by a qualified reader. Images never leave this "
    "computer.</p>"
)

# (distribution, component, licence): the main parts a user receives with XRayDesk
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("xraydesk", "XRayDesk", "Apache-2.0"),
    ("PySide6-Essentials", "Qt for Python (PySide6) and Qt", "LGPL-3.0"),
    ("torch", "PyTorch", "BSD-3-Clause"),
    ("torchvision", "torchvision", "BSD-3-Clause"),
    ("grad-cam", "pytorch-grad-cam", "MIT"),
    ("pydicom", "pydicom", "MIT"),
    ("pylibjpeg", "pylibjpeg", "MIT"),
    ("pylibjpeg-libjpeg", "pylibjpeg-libjpeg (libjpeg)", "GPL-3.0"),
    ("pylibjpeg-openjpeg", "pylibjpeg-openjpeg (OpenJPEG)", "MIT / BSD-2-Clause"),
    ("pylibjpeg-rle", "pylibjpeg-rle", "MIT"),
    ("numpy", "NumPy", "BSD-3-Clause"),
    ("Pillow", "Pillow", "MIT-CMU"),
    ("safetensors", "safetensors", "Apache-2.0"),
    ("platformdirs", "platformdirs", "MIT"),
)


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def _keys_text(sequences: list[QKeySequence]) -> str:
    return ",  ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in sequences)


def shortcut_rows(window: QWidget | None) -> list[tuple[str, str, str]]:
    """(group, action, keys) for every action of ``window`` that has a key, read from the
    actions themselves (menu by menu, then those living on the window only), so a tool
    that adds an action with a key (Ctrl+T, the wizard) is listed without editing a table.
    Without a window: the shortcut table."""
    if not isinstance(window, QMainWindow):
        return [
            (s.group, s.text.replace("&", ""), _keys_text([QKeySequence(k) for k in s.keys]))
            for s in SHORTCUTS
        ]
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def add(action: QAction, group: str) -> None:
        if action.isSeparator() or not action.shortcuts() or id(action) in seen:
            return
        seen.add(id(action))
        rows.append((group, action.text().replace("&", ""), _keys_text(action.shortcuts())))

    def walk(menu: QMenu, group: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), group)
            else:
                add(action, group)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    groups = {s.text: s.group for s in SHORTCUTS}
    for action in window.actions():  # keys without a menu entry (Esc, opacity)
        add(action, groups.get(action.text(), "Other"))
    return rows


class ShortcutsDialog(QDialog):
    """A table of every key and mouse gesture, read from the parent window's actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(620, 700)
        layout = QVBoxLayout(self)
        rows = shortcut_rows(parent)
        rows += [("Mouse", what, gesture) for gesture, what in MOUSE_GESTURES]
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().setDefaultSectionSize(26)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class AboutDialog(QDialog):
    def __init__(self, cards: list[ModelCard], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About XRayDesk")
        self.resize(640, 560)
        layout = QVBoxLayout(self)
        self.title = QLabel(f"<h2>XRayDesk {html.escape(__version__)}</h2>")
        layout.addWidget(self.title)
        intro = QLabel(
            "A local assistant for chest radiographs: class probabilities and Grad-CAM heat "
            "maps, computed on this computer. <b>It assists and does not diagnose.</b>"
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        tabs = QTabWidget()
        self.models_text = QTextBrowser()
        self.models_text.setHtml(models_html(cards))
        tabs.addTab(self.models_text, "Model cards")
        self.licences_text = QTextBrowser()
        self.licences_text.setHtml(licences_html())
        tabs.addTab(self.licences_text, "Licences")
        layout.addWidget(tabs, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def models_html(cards: list[ModelCard]) -> str:
    if not cards:
        return "<p>No model is installed.</p>"
    parts = []
    for card in cards:
        e = html.escape
        classes = ", ".join(e(c.name) for c in card.classes)
        rows = [
            ("Source", card.source),
            ("Architecture", card.architecture),
            ("Classes", classes),
            ("Input", f"{card.preprocessing.size} px, {card.preprocessing.resize}"),
            ("Created", card.created),
            ("Base model", card.base_model or "—"),
            ("Licence", card.licence or "—"),
        ]
        table = "".join(f"<tr><td><b>{e(k)}</b></td><td>{v}</td></tr>" for k, v in rows)
        limits = "".join(f"<li>{e(item)}</li>" for item in card.limitations)
        parts.append(
            f"<h3>{e(card.label)}</h3><p>{e(card.description)}</p><table>{table}</table>"
            f"<p><b>Intended use.</b> {e(card.intended_use)}</p>"
            + (f"<p><b>Limitations</b></p><ul>{limits}</ul>" if limits else "")
            + f"<p><b>Test figures</b></p>{figures_html(card)}"  # tables, not the raw dict
        )
    return "<hr>".join(parts)


def licences_html() -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(_version(dist))}</td>"
        f"<td>{html.escape(licence)}</td></tr>"
        for dist, name, licence in COMPONENTS
    )
    return (
        "<table cellpadding='4'><tr><th align='left'>Component</th><th align='left'>Version</th>"
        f"<th align='left'>Licence</th></tr>{rows}</table>"
        "<p>Heat-map colours: the viridis colour map (van der Walt and Smith, CC0), "
        "computed from a public-domain polynomial fit.</p>"
    )


def first_start_notice(parent: QWidget) -> QMessageBox:
    """The assist-not-diagnose notice, window-modal and non-blocking (call ``open()``)."""
    box = QMessageBox(parent)
    box.setWindowTitle("Before you start")
    box.setIcon(QMessageBox.Icon.Information)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(FIRST_START_TEXT)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.button(QMessageBox.StandardButton.Ok).setText("I understand")
    box.setWindowModality(Qt.WindowModality.WindowModal)
    return box
