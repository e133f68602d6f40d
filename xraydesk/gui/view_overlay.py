"""Where the view's texts and tools go on screen, so none covers another.

* Corner texts: four blocks (window and zoom top left; busy message, title and study top
  right; age and sex bottom left; how the image is shown bottom right). A block that
  would run into its neighbour moves below (top) or above (bottom) it, and a line wider
  than the view is elided, so "Computing the Grad-CAM++ heat map…" never overprints
  the window/level text, however narrow the view.
* Measurement labels sit beyond the end of their line (a ruler) or outside the angle (the
  angle tool), never on the line.
* The loupe is centred on the cursor.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen

GAP = 6.0  # pixels between blocks that had to move
LABEL_GAP_X, LABEL_GAP_Y = 10.0, 6.0  # label corner from the point it names


def block_size(metrics: QFontMetricsF, text: str) -> tuple[float, float]:
    lines = text.split("\n") if text else []
    width = max((metrics.horizontalAdvance(line) for line in lines), default=0.0)
    return width, metrics.lineSpacing() * len(lines)


def corner_rects(
    metrics: QFontMetricsF,
    area: QRectF,
    top_left: str,
    top_right: str,
    bottom_left: str,
    bottom_right: str,
) -> dict[str, QRectF]:
    """The rectangles of the four corner blocks in ``area``, none overlapping another:
    the right-hand blocks give way to the left-hand ones (which hold the window/level)."""
    rects: dict[str, QRectF] = {}
    for key, text in (
        ("tl", top_left),
        ("tr", top_right),
        ("bl", bottom_left),
        ("br", bottom_right),
    ):
        w, h = block_size(metrics, text)
        w = min(w, area.width())
        x = area.left() if key[1] == "l" else area.right() - w
        y = area.top() if key[0] == "t" else area.bottom() - h
        rects[key] = QRectF(x, y, w, h)
    if rects["tr"].height() and rects["tl"].intersects(rects["tr"].adjusted(-GAP, 0, 0, 0)):
        rects["tr"].moveTop(rects["tl"].bottom() + GAP)
    if rects["br"].height() and rects["bl"].intersects(rects["br"].adjusted(-GAP, 0, 0, 0)):
        rects["br"].moveBottom(rects["bl"].top() - GAP)
    return rects


def elided(metrics: QFontMetricsF, text: str, width: float) -> str:
    """Each line of ``text`` elided in the middle to ``width`` pixels."""
    return "\n".join(
        metrics.elidedText(line, Qt.TextElideMode.ElideMiddle, width) for line in text.split("\n")
    )


def top_right_text(busy_or_title: str, corner_top: str) -> str:
    """The busy message (or title) on the first line, then the study lines (the corner
    model leaves its first line free for it)."""
    lines = corner_top.split("\n") if corner_top else []
    if busy_or_title:
        if lines and lines[0] == "":
            lines[0] = busy_or_title
        else:
            lines.insert(0, busy_or_title)
    elif lines and lines[0] == "":
        lines = lines[1:]
    return "\n".join(lines)


def shadow_text(painter: QPainter, rect: QRectF, flags: Qt.AlignmentFlag, text: str) -> None:
    """Light text with a dark outline: readable over both lungs and bone."""
    if not text:
        return
    painter.setPen(QColor(0, 0, 0, 200))
    painter.drawText(rect.translated(1, 1), int(flags), text)
    painter.setPen(QColor(235, 200, 120))
    painter.drawText(rect, int(flags), text)


def draw_corners(painter: QPainter, area: QRectF, texts: tuple[str, str, str, str]) -> None:
    """Draw the four corner blocks (top left, top right, bottom left, bottom right)."""
    metrics = QFontMetricsF(painter.font())
    texts = tuple(elided(metrics, t, area.width()) if t else "" for t in texts)  # type: ignore[assignment]
    rects = corner_rects(metrics, area, *texts)
    left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
    top, bottom = Qt.AlignmentFlag.AlignTop, Qt.AlignmentFlag.AlignBottom
    for key, text, flags in (
        ("tl", texts[0], left | top),
        ("tr", texts[1], right | top),
        ("bl", texts[2], left | bottom),
        ("br", texts[3], right | bottom),
    ):
        shadow_text(painter, rects[key], flags, text)


def label_shift(direction: tuple[float, float], width: float, height: float) -> QPointF:
    """Where a label's top-left goes, in screen pixels from its anchor point, so that it
    lies in the quadrant ``direction`` points to: beyond a ruler's end, or outside an
    angle; a line ending at the anchor comes from the opposite quadrant and so never
    runs under the label."""
    dx, dy = direction
    x = LABEL_GAP_X if dx >= 0 else -width - LABEL_GAP_X
    y = LABEL_GAP_Y if dy >= 0 else -height - LABEL_GAP_Y
    return QPointF(x, y)


def away_from(points: list[tuple[float, float]], kind_angle: bool) -> tuple[float, float]:
    """The direction from the anchor away from the drawn lines: along a ruler past its
    end; for an angle, opposite the bisector of its two arms at the vertex."""
    if kind_angle and len(points) >= 3:
        vx, vy = points[1]
        units = []
        for px, py in (points[0], points[2]):
            norm = math.hypot(px - vx, py - vy) or 1.0
            units.append(((px - vx) / norm, (py - vy) / norm))
        return -(units[0][0] + units[1][0]), -(units[0][1] + units[1][1])
    if len(points) >= 2:
        (ax, ay), (bx, by) = points[-2], points[-1]
        return bx - ax, by - ay
    return 1.0, -1.0


def loupe_target(cursor: QPointF, size: float) -> QRectF:
    """The loupe's square, centred on the cursor (view pixels: what the user points at
    is what the loupe shows in its middle)."""
    target = QRectF(0, 0, size, size)
    target.moveCenter(cursor)
    return target


def draw_ring(painter: QPainter, target: QRectF) -> None:
    painter.setPen(QPen(QColor(235, 200, 120), 2))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawEllipse(target)
    # a small cross marks the exact point under the cursor
    c = target.center()
    painter.setPen(QPen(QColor(235, 200, 120, 200), 1))
    painter.drawLine(QPointF(c.x() - 6, c.y()), QPointF(c.x() + 6, c.y()))
    painter.drawLine(QPointF(c.x(), c.y() - 6), QPointF(c.x(), c.y() + 6))


def ellipse_clip(target: QRectF) -> QPainterPath:
    clip = QPainterPath()
    clip.addEllipse(target)
    return clip
