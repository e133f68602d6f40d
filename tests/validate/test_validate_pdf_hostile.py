"""The validation PDF with a site label from a folder named in non-UTF-8 bytes
(hostile-input sweep): matplotlib raised a TypeError traceback and no PDF was written."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure  # a Figure of its own: no pyplot, no GUI backend

from xraydesk.validate.pdf import _mapping_line, _paragraphs, printable_texts


def test_a_non_utf8_site_label_is_written_escaped(tmp_path: Path) -> None:
    label = os.fsdecode(b"norm\xe9l")
    fig = Figure(figsize=(8.27, 11.69))
    _paragraphs(fig, 0.9, [_mapping_line({"mapping": {label: "normal"}})], 9)
    ax = fig.add_axes((0.1, 0.1, 0.3, 0.3))
    ax.set_title(f"{label}/IM-1.png\ntrue normal", fontsize=6)  # a thumbnail's caption
    printable_texts(fig)
    fig.savefig(tmp_path / "report.pdf")
    assert (tmp_path / "report.pdf").stat().st_size > 0
    assert [t.get_text() for t in fig.texts] == ["Site labels read norm\\xe9l as normal"]
    assert ax.get_title() == "norm\\xe9l/IM-1.png\ntrue normal"
