"""Issue 29 #5: the view's texts never overlap (busy message vs window/level), a ruler's
label sits off its line, the loupe is centred on the cursor."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import open_and_wait
from tests.gui.reading_films import click_scene, film
from tests.paths import REPO_ROOT
from xraydesk.gui.image_view import LOUPE_SIZE, TOOL_ANGLE, TOOL_RULER
from xraydesk.gui.view_overlay import corner_rects, top_right_text

BUSY = "Computing the Grad-CAM++ heat map…"
LEFT = "W 1500  L -600  (Lung)\nZoom 35%\nGrad-CAM++ for Pneumonia, 35%"


def test_corner_blocks_never_overlap_in_a_narrow_view(qapp):
    metrics = QFontMetricsF(QFont(qapp.font()))
    area = QRectF(12, 10, 300, 400)
    right = top_right_text(BUSY, "\nDX  2024-03-15")
    assert right.split("\n")[0] == BUSY  # the busy line takes the free first line
    rects = corner_rects(metrics, area, LEFT, right, "female, 68 years", "512 x 512  ·  PA")
    # where the blocks would sit if each simply hugged its corner
    naive_tr = QRectF(rects["tr"])
    naive_tr.moveTop(area.top())
    assert naive_tr.intersects(rects["tl"])  # the case of the issue
    keys = list(rects)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not rects[a].intersects(rects[b]), (a, b, rects)
    # in a wide view nothing moves
    wide = corner_rects(metrics, QRectF(12, 10, 1400, 800), LEFT, right, "", "")
    assert wide["tr"].top() == 10


def _segment_hits(rect: QRectF, line: QLineF) -> bool:
    if rect.contains(line.p1()) or rect.contains(line.p2()):
        return True
    corners = [rect.topLeft(), rect.topRight(), rect.bottomRight(), rect.bottomLeft()]
    for k in range(4):
        edge = QLineF(corners[k], corners[(k + 1) % 4])
        kind, _ = line.intersects(edge)
        if kind == QLineF.IntersectionType.BoundedIntersection:
            return True
    return False


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ((30, 100), (130, 100)),
        ((130, 100), (30, 100)),
        ((80, 30), (80, 170)),
        ((120, 160), (40, 40)),
    ],
)
def test_ruler_label_sits_off_its_line(qtbot, make_window, tmp_path, start, end):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "r.dcm"), until="image_shown")
    view = window.view
    window.set_tool(TOOL_RULER)
    click_scene(qtbot, view, *start)
    click_scene(qtbot, view, *end)
    measurement = view.measurements[0]
    label = measurement.label
    on_screen = label.deviceTransform(view.viewportTransform()).mapRect(label.boundingRect())
    line = QLineF(
        QPointF(view.mapFromScene(QPointF(*start))), QPointF(view.mapFromScene(QPointF(*end)))
    )
    assert on_screen.width() > 10 and not _segment_hits(on_screen, line)


def test_angle_label_sits_outside_the_angle(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "a.dcm"), until="image_shown")
    view = window.view
    window.set_tool(TOOL_ANGLE)
    points = [(120, 40), (60, 40), (60, 100)]
    for point in points:
        click_scene(qtbot, view, *point)
    label = view.measurements[0].label
    on_screen = label.deviceTransform(view.viewportTransform()).mapRect(label.boundingRect())
    screen = [QPointF(view.mapFromScene(QPointF(*p))) for p in points]
    for arm in (QLineF(screen[1], screen[0]), QLineF(screen[1], screen[2])):
        assert not _segment_hits(on_screen, arm)


def test_loupe_is_centred_on_the_cursor(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "d.dcm"), until="image_shown")
    view = window.view
    window.set_magnifier(True)
    cursor = view.mapFromScene(QPointF(80, 100))
    # from elsewhere first: a move to where the cursor already is (an earlier test put it
    # there) sends no event, and the loupe would never be drawn
    qtbot.mouseMove(view.viewport(), view.mapFromScene(QPointF(20, 20)))
    qtbot.mouseMove(view.viewport(), cursor)
    QApplication.processEvents()
    image = view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
    rgb = pixels[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., [2, 1, 0]]
    ring = np.all(np.abs(rgb.astype(int) - (235, 200, 120)) <= 12, axis=-1)
    cx, cy = cursor.x() * ratio, cursor.y() * ratio
    half = int((LOUPE_SIZE / 2 + 8) * ratio)
    window_mask = np.zeros_like(ring)
    window_mask[
        max(0, int(cy) - half) : int(cy) + half, max(0, int(cx) - half) : int(cx) + half
    ] = True
    ys, xs = np.nonzero(ring & window_mask)
    assert len(xs) > 100  # the ring is drawn
    assert (xs.min() + xs.max()) / 2 == pytest.approx(cx, abs=3)
    assert (ys.min() + ys.max()) / 2 == pytest.approx(cy, abs=3)
    assert xs.max() - xs.min() == pytest.approx(LOUPE_SIZE * ratio, abs=6)


LOUPE_AT_SCALE = """
import sys
from pathlib import Path
import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
app = QApplication([])
from tests.gui.reading_films import film
from xraydesk.gui.image_view import ImageView
from xraydesk.imaging import load_xray
from xraydesk.viewer.viewstate import ViewState
from xraydesk.viewer.windowing import window_presets
xray = load_xray(film(Path(sys.argv[1])))
view = ImageView(ViewState())
view.resize(500, 500)
view.show()
view.set_image(xray, window_presets(xray))
view.set_magnifier(True)
app.processEvents()
cursor = view.mapFromScene(QPointF(80, 100))
QTest.mouseMove(view.viewport(), cursor)
app.processEvents()
grabbed = view.viewport().grab().toImage()
image = grabbed.convertToFormat(grabbed.Format.Format_RGB32)
ratio = image.devicePixelRatio()
rgb = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4)
rgb = rgb[..., [2, 1, 0]]
ring = np.all(np.abs(rgb.astype(int) - (235, 200, 120)) <= 12, axis=-1)
cx, cy, h = cursor.x() * ratio, cursor.y() * ratio, int(130 * ratio)
mask = np.zeros_like(ring)
mask[int(cy) - h : int(cy) + h, int(cx) - h : int(cx) + h] = True
ys, xs = np.nonzero(ring & mask)
print(ratio, (xs.min() + xs.max()) / 2 - cx, (ys.min() + ys.max()) / 2 - cy)
"""


def test_loupe_is_centred_at_device_pixel_ratio_two(tmp_path):
    """A high-DPI screen (QT_SCALE_FACTOR=2, in a fresh interpreter: the ratio is fixed
    when the application starts): the loupe still sits on the cursor."""
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2"}
    out = subprocess.run(
        [sys.executable, "-c", LOUPE_AT_SCALE, str(tmp_path / "f.dcm")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ratio, dx, dy = (float(v) for v in out.stdout.split()[-3:])
    assert ratio == 2.0 and abs(dx) <= 3 and abs(dy) <= 3
