"""Small parts of the PACS panel: the job that runs a blocking call, its tables, and
removing a node (with the user's confirmation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMessageBox,
    QTableWidget,
    QWidget,
)

from xraydesk.dicomnet import NodeConfig
from xraydesk.gui.jobs import Job


class CallJob(Job):
    """Any blocking call (echo, find, move, send) as a job."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__()
        self.call = call

    def work(self) -> object:
        return self.call()


def confirm_removal(parent: QWidget, described: str) -> bool:
    """Ask before a node goes: its address may not be written down anywhere else."""
    answer = QMessageBox.question(
        parent,
        "Remove PACS node",
        f"Remove the PACS node {described} from this computer?\n"
        "Images already received stay in the worklist.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes


def without_node(config: NodeConfig, name: str) -> NodeConfig:
    """The configuration without node ``name`` (nor results sent to it automatically)."""
    nodes = {k: v for k, v in config.nodes.items() if k != name}
    auto_send = None if config.auto_send == name else config.auto_send
    return replace(config, nodes=nodes, auto_send=auto_send)


def make_table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setVisible(False)
    return table
