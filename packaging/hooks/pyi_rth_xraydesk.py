"""PyInstaller runtime hook: runs in the frozen app before any XRayDesk code.

grad-cam imports matplotlib at import time; left to itself matplotlib probes for an
interactive backend (Qt, Tk, GTK) that the bundle leaves out on purpose. XRayDesk only
ever needs Agg (or nothing), so pin it before the first import.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
