"""Issue 29: the banner that asks for a report names the log file, and the log has it."""

from __future__ import annotations

from xraydesk import logs
from xraydesk.gui.app import _make_excepthook


def test_an_unexpected_error_is_logged_and_the_banner_names_the_log(main_window):
    path = logs.setup("test")
    assert path is not None
    hook = _make_excepthook(main_window)
    try:
        raise TypeError("expected str, bytes or os.PathLike object, not bool")
    except TypeError as exc:
        hook(type(exc), exc, exc.__traceback__)
    text = main_window.banner.text
    assert "Unexpected error (TypeError" in text
    assert str(path) in text  # the file to attach, by name
    logs.setup("test")  # closes the handler: the traceback is on disk
    logged = path.read_text(encoding="utf-8")
    assert "unexpected error" in logged and "TypeError: expected str" in logged
    assert "test_error_log.py" in logged  # the traceback, not only the message
