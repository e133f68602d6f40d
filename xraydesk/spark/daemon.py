"""pyspark's Python daemon (which forks the workers), importing the installed pyspark.

Why: Spark starts its Python daemon with ``SPARK_HOME/python/lib/pyspark.zip`` first on
the path, and for a pip-installed pyspark that zip is a copy of the very package installed
beside it, without bytecode: the daemon and every worker compiled pyspark's modules from
source at each start. Measured (Intel Xeon family 6 model 207 with AMX, 2 cores, loaded):
importing what the daemon and a worker need took 0.85 CPU s from the zip, 0.15 from the
installed package. This module takes the zips off the path when they are the installed
package's own (``shipped_zips``), then runs pyspark's daemon as it is. Set as
``spark.python.daemon.module`` by ``session.get_session`` for local masters, whose workers
run the driver's interpreter (with xraydesk installed); elsewhere pyspark's own daemon runs.
"""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path


def shipped_zips(path: list[str]) -> list[str]:
    """The entries of ``path`` that are zips in an installed pyspark's own ``python/lib``
    folder (pyspark.zip; py4j's source zip where py4j is installed too), when that same
    pyspark is importable from the rest of ``path``; [] otherwise (a Spark distribution
    whose only pyspark is its zip keeps it)."""
    zips = [
        entry
        for entry in path
        if entry.endswith(".zip") and Path(entry).parent.parts[-2:] == ("python", "lib")
    ]
    rest = [entry for entry in path if entry not in zips]
    spec = importlib.machinery.PathFinder.find_spec("pyspark", rest)
    if spec is None or spec.origin is None:
        return []
    installed = Path(spec.origin).resolve().parent
    own = [entry for entry in zips if Path(entry).resolve().parents[2] == installed]
    if importlib.machinery.PathFinder.find_spec("py4j", rest) is None:
        own = [entry for entry in own if Path(entry).name == "pyspark.zip"]
    return own


def prefer_installed_pyspark() -> None:
    """Take the installed pyspark's own zips off ``sys.path`` and out of the importer
    cache (every task calls ``importlib.invalidate_caches``, which read a cached zip's
    directory of 1,300 files again)."""
    zips = shipped_zips(sys.path)
    sys.path[:] = [entry for entry in sys.path if entry not in zips]
    for entry in zips:
        sys.path_importer_cache.pop(entry, None)


def main() -> None:
    prefer_installed_pyspark()
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
