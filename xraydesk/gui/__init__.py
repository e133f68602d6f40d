"""The PySide6 desktop app: the only package that imports Qt.

``app.main(argv)`` is the entry point; ``main_window.MainWindow`` the window. Pure-Python
pieces (``viewstate``, ``windowing``, ``overlay_layer``, ``model_cache``) hold the rules
so they can be tested without a display.
"""
