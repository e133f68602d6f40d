"""The batch panel's table: one row per file, and the filters over it.

Kept apart from the panel so the table's behaviour (columns, sort values, filters) can be
read and tested without the widgets around it.

A recorded run's rows are not held: once the table knows the run (``show_stored``) it
keeps their number, what the filters ask of each (``RowFacts``: 11 bytes a row) and the
sort values of the one column it is sorted by, and reads the rows it shows from the
results database (``StoredRows``), so a run of a million files costs the table tens of
MB, not 1.4 KB per file (issue 28).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from xraydesk.batch.rows import ResultRow
from xraydesk.batch.stored_rows import StoredRows
from xraydesk.printable import printable
from xraydesk.trust.codes import warning_label

ERROR_COLOUR = QColor(255, 120, 110)
WITHHELD_COLOUR = QColor(150, 156, 166)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # raw values, so numbers sort as numbers
ROW_ROLE = Qt.ItemDataRole.UserRole + 2  # the ResultRow itself
# The class filter's entry for rows classified yet given no class (the operating rule or
# the input gate withheld it): not a class id, which never holds a colon.
NO_CLASS = ":indeterminate"
INDETERMINATE_TEXT = "Indeterminate"


def row_outcome(row: ResultRow) -> str | None:
    """What the class filter and its counts file a row under: its class id, ``NO_CLASS``
    when it was classified but given no class, None for an error row."""
    if not row.ok:
        return None
    return row.prediction if row.prediction is not None else NO_CLASS


def filter_entry_text(name: str, count: int) -> str:
    """A class filter entry with its count: "Indeterminate (3)"."""
    return f"{name} ({count})"


def outcome_summary(counts: Counter[str | None]) -> str:
    """The finished run's line about answers not given ("" when every row has a class)."""
    n = counts.get(NO_CLASS, 0)
    return f"{n} indeterminate (no class given)" if n else ""


class RowFacts:
    """What the filters and their counts ask of each row, kept in arrays (11 bytes a row):
    its outcome (``row_outcome``), the probability of its prediction, whether it is
    flagged. Filtering then reads no row from the database."""

    def __init__(self) -> None:
        self.counts: Counter[str | None] = Counter()  # row_outcome -> rows
        self._outcomes: list[str | None] = []
        self._index: dict[str | None, int] = {}
        self._outcome = array("h")
        self._confidence = array("d")  # NaN: none
        self._flagged = array("b")

    def __len__(self) -> int:
        return len(self._outcome)

    def add(self, row: ResultRow) -> None:
        key = row_outcome(row)
        k = self._index.get(key)
        if k is None:
            k = self._index[key] = len(self._outcomes)
            self._outcomes.append(key)
        confidence = row.confidence
        self._outcome.append(k)
        self._confidence.append(math.nan if confidence is None else confidence)
        self._flagged.append(row.flagged)
        self.counts[key] += 1

    def accepts(
        self, row: int, class_id: str | None, min_probability: float, errors: bool, flagged: bool
    ) -> bool:
        """The filters of ``BatchFilterProxy`` on row ``row``."""
        outcome = self._outcomes[self._outcome[row]]
        if errors:
            return outcome is None
        if flagged and not self._flagged[row]:
            return False
        if class_id is not None and outcome != class_id:
            return False
        if min_probability > 0.0:
            confidence = self._confidence[row]
            return not math.isnan(confidence) and confidence >= min_probability
        return True


class BatchResultsModel(QAbstractTableModel):
    """One row per file: name, prediction, its probability, each class, status, warnings,
    folder."""

    FIXED_BEFORE = ("File", "Prediction", "Probability")
    FIXED_AFTER = ("Status", "Warnings", "Folder")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ResultRow] | StoredRows = []
        self._class_ids: list[str] = []
        self._names: dict[str, str] = {}
        self._facts = RowFacts()
        self._sort_keys: tuple[int, list[Any]] | None = None  # (column, a value per row)
        self._store_rows: StoredRows | None = None  # the rows read from the database

    # -- content ---------------------------------------------------------------------------
    def reset(self, classes: list[tuple[str, str]]) -> None:
        """Empty the table for a run of a model with these (id, display name) classes."""
        self.beginResetModel()
        self._close_store()
        self._rows = []
        self._class_ids = [cid for cid, _ in classes]
        self._names = dict(classes)
        self._facts = RowFacts()
        self._sort_keys = None
        self.endResetModel()

    def show_stored(self, rows: StoredRows) -> None:
        """Read the rows from the results database from now on, the table's own rows the
        first ``len(rows)`` of it (a run going on: those received so far, committed
        before they were sent; a past run: read once here for the filters' facts). The
        table takes ``rows``' store and closes it."""
        for row in rows.iter_from(len(self._facts)):
            self._facts.add(row)
        first, self._rows = len(self._rows), rows
        self._close_store(keep=rows)
        if len(rows) > first:
            self.beginInsertRows(QModelIndex(), first, len(rows) - 1)
            self.endInsertRows()

    def _close_store(self, keep: StoredRows | None = None) -> None:
        old = self._store_rows
        if old is not None and old is not keep:
            old.store.close()
        self._store_rows = keep

    def append_rows(self, rows: list[ResultRow]) -> None:
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        if isinstance(self._rows, StoredRows):
            self._rows.grow(len(rows))  # stored before they were sent: read when shown
        else:
            self._rows.extend(rows)
        for row in rows:
            self._facts.add(row)
        if self._sort_keys is not None:
            column, keys = self._sort_keys
            keys.extend(self._value(row, column, sort=True) for row in rows)
        self.endInsertRows()

    @property
    def counts(self) -> Counter[str | None]:
        """Rows per outcome (``row_outcome``), kept as rows arrive, so the filter's
        counts cost nothing per chunk however long the run."""
        return self._facts.counts

    def accepts(
        self, row: int, class_id: str | None, min_probability: float, errors: bool, flagged: bool
    ) -> bool:
        """Whether row ``row`` passes these filters (``RowFacts.accepts``)."""
        return self._facts.accepts(row, class_id, min_probability, errors, flagged)

    def row_at(self, row: int) -> ResultRow:
        return self._rows[row]

    @property
    def stored(self) -> bool:
        """Whether the rows are read from the results database (not held)."""
        return self._store_rows is not None

    @property
    def rows(self) -> Sequence[ResultRow]:
        """Every row in order (a recorded run's are read from the database as asked)."""
        return self._rows

    @property
    def class_ids(self) -> list[str]:
        return self._class_ids

    @property
    def display_names(self) -> dict[str, str]:
        return self._names

    # -- Qt model --------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(self.FIXED_BEFORE) + len(self._class_ids) + len(self.FIXED_AFTER)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._column_names()[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._column_tips()[section]
        return None

    def _column_names(self) -> list[str]:
        classes = [f"P({self._names.get(c, c)})" for c in self._class_ids]
        return [*self.FIXED_BEFORE, *classes, *self.FIXED_AFTER]

    def _column_tips(self) -> list[str]:
        classes = [
            f"Probability of “{self._names.get(c, c)}” given by the model" for c in self._class_ids
        ]
        before = ["File name", "Predicted class", "Probability of the predicted class"]
        after = [
            "Error, or 'reused' when a stored result was used",
            "Why the result must not be trusted (input gate, out of distribution)",
            "Folder of the file",
        ]
        return [*before, *classes, *after]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        if role == SORT_ROLE:
            return self._sort_value(index.row(), index.column())
        row = self._rows[index.row()]
        if role == ROW_ROLE:
            return row
        column = index.column()
        n_classes = len(self._class_ids)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [printable(row.path), *([printable(row.error)] if row.error else [])]
            lines += [f"⚠ {warning_label(w.code)} ({w.code}): {w.message}" for w in row.warnings]
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and not row.ok:
            return ERROR_COLOUR  # a failed row stands out even when Status is off-screen
        withheld = row.prediction is None and 3 <= column < 3 + n_classes
        if role == Qt.ItemDataRole.ForegroundRole and withheld:
            return WITHHELD_COLOUR  # no class given: its numbers are no answer, dimmed
        if role == Qt.ItemDataRole.TextAlignmentRole and 2 <= column < 3 + n_classes:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return self._value(row, column, sort=False)

    def _sort_value(self, row: int, column: int) -> Any:
        """The sort value of one cell, from a list kept for the column sorted by: sorting
        compares rows in any order, which would read the database at every step."""
        if self._sort_keys is None or self._sort_keys[0] != column:
            self._sort_keys = (column, [self._value(r, column, True) for r in self._rows])
        return self._sort_keys[1][row]

    def _value(self, row: ResultRow, column: int, sort: bool) -> Any:
        """A cell's text (``sort``: its raw value, so numbers sort as numbers)."""
        n_classes = len(self._class_ids)
        if column == 0:  # one line, every byte named: a newline cut "bad\nname" to "bad…"
            return row.path.name if sort else printable(row.path.name)
        if column == 1:
            if row.prediction is None:
                return "" if sort else ("Error" if row.error else row.outcome_words)
            return self._names.get(row.prediction, row.prediction)
        if column < 3 + n_classes:
            value = (
                row.confidence
                if column == 2
                else (row.probabilities or {}).get(self._class_ids[column - 3])
            )
            if sort:
                return -1.0 if value is None else value
            return "" if value is None else f"{value:.1%}"
        after = column - 3 - n_classes
        if after == 0:
            return printable(row.error) if row.error else ("reused" if row.reused else "")
        if after == 1:
            return ", ".join(warning_label(code) for code in row.warning_codes)
        return str(row.path.parent) if sort else printable(row.path.parent)

    @property
    def folder_column(self) -> int:
        return self.columnCount() - 1

    @property
    def class_columns(self) -> range:
        """The per-class probability columns."""
        start = len(self.FIXED_BEFORE)
        return range(start, start + len(self._class_ids))


class ElideDelegate(QStyledItemDelegate):
    """Elides a column's text where the distinguishing part survives: file names in the
    middle (many share a long prefix, e.g. "1-s2.0-..."), folders at the start (their end
    says most). The full path is in the row's tooltip."""

    def __init__(self, mode: Qt.TextElideMode, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = self.mode  # type: ignore[attr-defined]


def count_text(shown: int, total: int) -> str:
    """The table's count line: "Showing 12 of 340" when filtered, "340 rows" when not."""
    if total == 0:
        return ""
    if shown == total:
        return f"{total} row" + ("" if total == 1 else "s")
    return f"Showing {shown} of {total}"


class BatchFilterProxy(QSortFilterProxyModel):
    """Filters: predicted class (or ``NO_CLASS``: indeterminate), minimum probability of
    that prediction, errors only, flagged only (rows with a reason not to trust them)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._class_id: str | None = None
        self._min_probability = 0.0
        self._errors_only = False
        self._flagged_only = False
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_filters(
        self,
        class_id: str | None = None,
        min_probability: float = 0.0,
        errors_only: bool = False,
        flagged_only: bool = False,
    ) -> None:
        self._begin_change()
        self._class_id = class_id
        self._min_probability = min_probability
        self._errors_only = errors_only
        self._flagged_only = flagged_only
        self._end_change()

    def _begin_change(self) -> None:
        begin = getattr(self, "beginFilterChange", None)  # Qt >= 6.9
        if begin is not None:
            begin()

    def _end_change(self) -> None:
        end = getattr(self, "endFilterChange", None)
        if end is not None:
            end(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateFilter()

    def filterAcceptsRow(
        self,
        source_row: int,
        source_parent: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        model = self.sourceModel()
        if not isinstance(model, BatchResultsModel) or source_row >= len(model.rows):
            return True
        return model.accepts(
            source_row,
            self._class_id,
            self._min_probability,
            self._errors_only,
            self._flagged_only,
        )

    def row_at(self, proxy_row: int) -> ResultRow:
        index = self.mapToSource(self.index(proxy_row, 0))
        model = self.sourceModel()
        assert isinstance(model, BatchResultsModel)
        return model.row_at(index.row())

    def shown_rows(self) -> list[ResultRow]:
        """The rows as shown: filtered, in the current sort order."""
        return [self.row_at(k) for k in range(self.rowCount())]
