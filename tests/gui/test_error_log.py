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


def test_an_unexpected_analysis_failure_logs_its_traceback_and_names_the_log(main_window):
    from xraydesk.gui.analysis import Failure

    path = logs.setup("test")
    assert path is not None
    details = 'Traceback (most recent call last):\n  File "x.py"\nValueError: boom 4711'
    failure = Failure("classification", "x.png: unexpected error (ValueError: boom)", None, details)
    main_window.analysis.pipeline.failed.emit(failure)  # as a worker thread reports it
    assert str(path) in main_window.banner.text
    assert "unexpected error (ValueError: boom)" in main_window.banner.text
    logs.setup("test")
    assert "ValueError: boom 4711" in path.read_text(encoding="utf-8")
