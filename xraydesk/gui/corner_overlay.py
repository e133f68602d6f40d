"""The four-corner text of a view, from the Qt-free model in ``viewer.corners``.

The view draws the top left (window, zoom) and bottom left (sex, age) itself; this adds
the right-hand corners. Identity is written only while ``view.identity_shown`` is set,
which the main window ties to the Image info panel's "Show patient data" switch, masked
again for every new image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.viewer.corners import corner_texts

if TYPE_CHECKING:
    from xraydesk.gui.image_view import ImageView


def corner_lines(view: ImageView) -> tuple[str, str]:
    """(top right, bottom right) text of the view; the top leaves the title's line free."""
    xray = view.xray
    if xray is None or not view.corners_shown:
        return "", ""
    corners = corner_texts(
        xray.metadata, xray.patient, xray.shape, view.state.orientation, view.identity_shown
    )
    top = list(corners.top_right)
    if top and (view.busy_text or view.title_text):
        top.insert(0, "")  # the busy or title line is drawn there
    return "\n".join(top), "\n".join(corners.bottom_right)
