"""Banner kinds and reading tools are StrEnums equal to the strings the style sheet and the
actions use: the banner's ``kind`` property stays a plain string for the style sheet."""

from __future__ import annotations

from xraydesk.gui.banner import ERROR, INFO, WARNING, BannerKind, MessageBanner
from xraydesk.gui.measurements import TOOL_CTR, TOOL_PAN, Tool


def test_banner_kind_reaches_the_style_sheet_as_text(qtbot) -> None:
    banner = MessageBanner()
    qtbot.addWidget(banner)
    assert {k.value for k in BannerKind} == {"error", "warning", "info"}
    for kind in (ERROR, WARNING, INFO):
        banner.show_message("a message", kind)
        assert banner.property("kind") == kind.value
        assert type(banner.property("kind")) is str and banner.kind is kind


def test_tool_values_are_the_action_names() -> None:
    assert {t.value for t in Tool} == {"pan", "ruler", "angle", "ctr"}
    assert TOOL_PAN is Tool.PAN and TOOL_CTR == "ctr"
