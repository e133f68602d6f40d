import sys

from xraydesk.cli import main

sys.exit(main())
