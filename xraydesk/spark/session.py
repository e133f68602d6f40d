"""Finding pyspark and Java, and the SparkSession a command runs in.

pyspark is imported here, in functions, and nowhere at module level: ``import xraydesk``
must work on a desktop that has neither pyspark nor Java.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from xraydesk.errors import XRayDeskError
from xraydesk.optional import extra_hint
from xraydesk.spark import jvm_archive
from xraydesk.spark.worker_memory import SETTING, check_worker_memory

INSTALL_HINT = f"{extra_hint('spark')} (and a Java 17 runtime, e.g. openjdk-17-jre-headless)"
# Rows per Arrow batch handed to a Python worker: one model batch, so a worker never holds
# thousands of decoded images (Spark's default is 10,000 rows).
ROWS_PER_ARROW_BATCH = 32


# The JVM of a local session (driver and executor in one) only moves paths and result rows:
# its quick compiler alone (C1) starts the session and runs each first job faster than
# C1+C2, which spend seconds of CPU compiling hot code that this small work never needs.
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
DAEMON_MODULE = "spark.python.daemon.module"
# named, not imported: the daemon runs as ``python -m``, which warns when the module was
# already imported by its package (this module is, through ``classify``)
LOCAL_DAEMON = "xraydesk.spark.daemon"
LOCAL_JVM_FLAGS = "-XX:TieredStopAtLevel=1"


def local_java_options(given: str | None, archive: str = "") -> str:
    """The driver JVM's options for a local master: the caller's, after the quick-start
    flag and the class archive's (``jvm_archive``; a later flag wins in Java, so a
    caller's own choice is kept)."""
    ours = f"{LOCAL_JVM_FLAGS} {archive}".strip()
    return f"{ours} {given}".strip() if given else ours


class SparkUnavailable(XRayDeskError):
    """pyspark or a Java runtime is missing: the Spark commands cannot run here."""


def missing_requirement() -> str | None:
    """Why Spark cannot run on this machine, or None when pyspark and Java are there."""
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark is not installed ({exc.name} missing): {INSTALL_HINT}"
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isfile(os.path.join(java_home, "bin", "java")):
        return None
    if shutil.which("java") is None:
        return f"no Java runtime found (java is not on PATH and JAVA_HOME is unset): {INSTALL_HINT}"
    return None


def require_spark() -> None:
    reason = missing_requirement()
    if reason is not None:
        raise SparkUnavailable(reason)


def get_session(
    master: str | None = None,
    app_name: str = "xraydesk",
    conf: Mapping[str, str] | None = None,
) -> Any:
    """The active SparkSession, or a new one on ``master`` (``local[*]`` when none is given
    and no spark-submit set one). ``conf`` adds Spark settings (``spark.executor.memory``...)."""
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None and not conf:
        check_worker_memory(_setting(active))
        tune(active)
        return active
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        master = os.environ.get("MASTER", "local[*]")
        builder = builder.config("spark.master", master)
    if (master or "").startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # Local workers run this interpreter: "python3" on PATH may be another one without
        # torch (a virtual environment used without activating it). pyspark reads the
        # workers' interpreter from PYSPARK_PYTHON when the context starts, not from the
        # spark.pyspark.python setting (that is spark-submit's).
        os.environ["PYSPARK_PYTHON"] = (conf or {}).get("spark.pyspark.python", sys.executable)
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", ROWS_PER_ARROW_BATCH)
    settings = dict(conf or {})
    pending = None
    if (master or "").startswith("local"):
        # the class archive only where this call starts the JVM (a running one keeps its flags)
        archive, pending = jvm_archive.java_flags() if _no_jvm_yet() else ("", None)
        settings[JAVA_OPTIONS] = local_java_options(settings.get(JAVA_OPTIONS), archive)
        if os.environ.get("PYSPARK_PYTHON") == sys.executable:
            # the workers run this interpreter, which has xraydesk: its daemon imports
            # the installed pyspark, not the zip's source (``daemon``)
            settings.setdefault(DAEMON_MODULE, LOCAL_DAEMON)
    for key, value in settings.items():
        builder = builder.config(key, value)
    check_worker_memory((conf or {}).get(SETTING))  # refused before a context starts
    session = builder.getOrCreate()
    jvm_archive.record(session, pending)
    check_worker_memory(_setting(session))  # spark-defaults.conf or spark-submit set it
    tune(session)
    return session


def _no_jvm_yet() -> bool:
    from pyspark import SparkContext

    return SparkContext._gateway is None


def _setting(session: Any) -> str | None:
    return session.sparkContext.getConf().get(SETTING)


def tune(session: Any) -> None:
    """Session settings the jobs rely on (runtime SQL settings, safe on a shared session)."""
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ROWS_PER_ARROW_BATCH))
