"""A non-modal message strip above the image: errors never block the reader."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget


class BannerKind(StrEnum):
    """How serious a banner message is; the value is the style sheet's ``kind`` property."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


ERROR, WARNING, INFO = BannerKind.ERROR, BannerKind.WARNING, BannerKind.INFO
_ICONS = {
    ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
    WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
    INFO: QStyle.StandardPixmap.SP_MessageBoxInformation,
}


class MessageBanner(QFrame):
    """Shows one message at a time with a close button; kinds style it via the style sheet."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.kind = INFO
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.setSpacing(10)
        self.icon = QLabel()
        self.icon.setObjectName("bannerIcon")
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.close_button = QToolButton()
        self.close_button.setObjectName("bannerClose")
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss (Esc)")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: BannerKind | str = ERROR) -> None:
        self.kind = kind
        self.setProperty("kind", str(kind))  # a plain string for the style sheet
        self.style().unpolish(self)  # re-apply the style sheet for the new kind
        self.style().polish(self)
        self.icon.setPixmap(
            self.style().standardIcon(_ICONS.get(kind, _ICONS[INFO])).pixmap(20, 20)
        )
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self.label.clear()
        self.dismissed.emit()

    @property
    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()
