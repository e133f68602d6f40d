"""Every keyboard shortcut and mouse gesture, defined once.

The main window builds its actions from ``SHORTCUTS`` and Help > Keyboard shortcuts
lists the same table, so the help can never disagree with the keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    action: str  # action id in the main window
    text: str  # menu text
    keys: tuple[str, ...]  # QKeySequence strings, the first is shown in menus
    group: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open", "&Open…", ("Ctrl+O",), "File"),
    Shortcut("previous", "&Previous image in folder", ("PgUp", "Left"), "File"),
    Shortcut("next", "&Next image in folder", ("PgDown", "Right"), "File"),
    Shortcut("export_report", "Export &report (PDF)…", ("Ctrl+P",), "File"),
    Shortcut("export_image", "Export &image (PNG)…", ("Ctrl+E",), "File"),
    Shortcut("quit", "&Quit", ("Ctrl+Q",), "File"),
    Shortcut("fit", "&Fit to window", ("F", "Ctrl+0"), "View"),
    Shortcut("actual_size", "&Actual size (1:1)", ("1", "Ctrl+1"), "View"),
    Shortcut("zoom_in", "Zoom &in", ("+", "=", "Ctrl++"), "View"),
    Shortcut("zoom_out", "Zoom &out", ("-", "Ctrl+-"), "View"),
    Shortcut("invert", "&Invert", ("I",), "View"),
    Shortcut("full_screen", "F&ull screen", ("F11",), "View"),
    Shortcut("rotate_cw", "Rotate &clockwise", ("Ctrl+R",), "View"),
    Shortcut("rotate_ccw", "Rotate counter-clock&wise", ("Ctrl+Shift+R",), "View"),
    Shortcut("flip_horizontal", "Flip &horizontal", ("Ctrl+Shift+H",), "View"),
    Shortcut("flip_vertical", "Flip &vertical", ("Ctrl+Shift+V",), "View"),
    Shortcut("reset_orientation", "Reset &orientation", ("Ctrl+Shift+0",), "View"),
    Shortcut("show_identity", "Show patient identit&y in corners", ("Ctrl+Shift+I",), "View"),
    Shortcut("preset_file", "Window from &file", ("F2",), "Window"),
    Shortcut("preset_full", "&Full range", ("F3",), "Window"),
    Shortcut("preset_lung", "&Lung", ("F4",), "Window"),
    Shortcut("preset_mediastinum", "&Mediastinum", ("F5",), "Window"),
    Shortcut("reset_window", "&Reset window", ("R",), "Window"),
    Shortcut("tool_ruler", "&Distance ruler", ("D",), "Tools"),
    Shortcut("tool_angle", "&Angle", ("A",), "Tools"),
    Shortcut("magnifier", "&Magnifier", ("M",), "Tools"),
    Shortcut("tool_ctr", "Cardiothoracic &ratio (CTR)", ("C",), "Tools"),
    Shortcut("clear_measurements", "&Clear measurements", ("Del",), "Tools"),
    Shortcut("tag_browser", "DICOM &tags…", ("Ctrl+Shift+T",), "Tools"),
    Shortcut("studies", "&Studies in this folder…", ("Ctrl+Shift+S",), "Tools"),
    Shortcut("compare_prior", "Compare with &prior study", ("Ctrl+Shift+P",), "Tools"),
    Shortcut("compare", "Compare &with…", ("Ctrl+Shift+O",), "Tools"),
    Shortcut("close_compare", "Close c&omparison", ("Ctrl+Shift+W",), "Tools"),
    Shortcut("toggle_overlay", "Show &heat map", ("H",), "Heat map"),
    Shortcut("opacity_up", "Heat map opacity +10%", ("]",), "Heat map"),
    Shortcut("opacity_down", "Heat map opacity −10%", ("[",), "Heat map"),
    Shortcut("dismiss", "Dismiss message", ("Esc",), "Help"),
    Shortcut("shortcuts", "&Keyboard shortcuts", ("F1", "Ctrl+/"), "Help"),
)

MOUSE_GESTURES: tuple[tuple[str, str], ...] = (
    ("Wheel", "Zoom around the cursor"),
    ("Left drag", "Pan (with the ruler: measure; the angle tool: three clicks)"),
    ("Right drag", "Window/level: horizontal = width, vertical = level"),
    ("Double-click", "Fit to window"),
    ("Drop a file", "Open it"),
)
