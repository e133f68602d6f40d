"""Entry point of the frozen app: the same ``xraydesk`` command as a pip install.

``XRayDesk`` alone opens the desktop app; ``XRayDesk self-test``, ``XRayDesk classify``
and the other subcommands work as in a source install.
"""

import multiprocessing
import sys

from xraydesk.cli import main

if __name__ == "__main__":
    # a frozen app re-executes itself for worker processes (training data loaders):
    # without this each worker would start another copy of the app
    multiprocessing.freeze_support()
    sys.exit(main())
