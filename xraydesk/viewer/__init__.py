"""What the viewer shows, without Qt: view state, window/level rules and the heat-map layer.

The widgets in ``xraydesk.gui`` draw from these; keeping them apart (as napari keeps its
models apart from ``_qt``) lets the rules be tested without a display.
"""
