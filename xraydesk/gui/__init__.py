"""The PySide6 desktop app: the only package that imports Qt.

``app.main(argv)`` is the entry point; ``main_window.MainWindow`` the window. The rules
the widgets follow live below, without Qt, so they can be tested without a display:
``xraydesk.viewer`` (view state, windowing, the heat-map layer) and
``xraydesk.classifier.cache`` (loaded classifiers kept between images).
"""

import sys

if sys.version_info < (3, 12):  # pragma: no cover - depends on the interpreter
    # PySide6 6.12 (abi3 wheels) returns None from void methods without adding a reference.
    # From Python 3.12 None is immortal and that is harmless; on 3.10/3.11 every call such as
    # label.setText() or processEvents() takes one reference from None, and after ~10^5
    # calls the interpreter aborts with "none_dealloc: deallocating None" (a long training
    # run in the wizard gets there). Give None more references than any session can use.
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 48
