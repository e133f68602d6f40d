"""Reading optional DICOM elements without letting a malformed one stop the image.

Why a module of its own: the reader (``dicom``) and its VOI stage (``dicom_voi``) both read
numbers and text from headers that are often wrong in practice (a Window Center of "abc",
a multi-valued Rows); each helper answers None or a default instead of raising, and
``one_line`` keeps a library's message on one line for an error row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset


def first_value(value: Any) -> Any:
    """The first of a multi-valued element (Window Center may hold several windows)."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Sequence):
        return value[0] if len(value) else None
    return value


def float_value(ds: Dataset, keyword: str, default: float | None) -> float | None:
    try:
        value = first_value(ds.get(keyword))
        return default if value is None or value == "" else float(value)
    except Exception:  # a malformed optional number falls back to its default
        return default


def int_value(ds: Dataset, keyword: str) -> int | None:
    value = float_value(ds, keyword, None)
    return None if value is None else int(value)


def text_value(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed optional element must not block the image
        return None
    text = "" if value is None else str(value).strip()
    return text or None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
