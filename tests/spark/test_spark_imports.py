"""xraydesk.spark without Spark: the desktop and the CLI import it and load no pyspark.
(The tests that run a real local Spark are in tests/integration/test_spark.py.)"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_spark_modules_needs_no_pyspark():
    """The desktop never needs pyspark: importing the package and the CLI module loads none."""
    code = (
        "import sys, xraydesk.spark, xraydesk.cli.spark, xraydesk.cli; xraydesk.cli.build_parser();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
