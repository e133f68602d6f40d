"""A class-data-sharing archive for the local Spark JVM: Spark's classes mapped from one
file instead of read, parsed and verified from its jars at every start.

Why: a local session's JVM spent most of its CPU loading classes. Measured with
tests/benchmarks/bench_spark.py's CPU accounting (Intel Xeon family 6 model 207 with AMX,
2 cores, machine loaded by other work): session start 10.2 CPU s without the archive, 5.1
with it; the first classify's two jobs (the warm-up and the write) 8.6 CPU s without, 3.0
with. On 2 cores those seconds come out of the first job's wall time.

How (Java 13+ dynamic archives): a session started with no archive yet records one,
``-XX:ArchiveClassesAtExit``, which the JVM writes as it exits (every class it loaded: a
few seconds and about 180 MB, once per machine and Spark/Java version); later sessions
map it with ``-XX:SharedArchiveFile``. The JVM checks that an archive matches its own
version and class path and quietly runs without one that does not (``-Xshare:auto``).

The recording is written under a name of its own (one per process, so two sessions never
write the same file) and moved into place by the driver after its JVM exited normally
(``record`` waits for that at the interpreter's exit): a half-written archive is never
used. ``XRAYDESK_SPARK_JVM_ARCHIVE=0`` turns all of it off (the test suite does: its
sessions would each write one).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SWITCH = "XRAYDESK_SPARK_JVM_ARCHIVE"
# the JVM's notes about classes it cannot archive (hundreds of lines) are not the user's
QUIET = "-Xlog:cds*=off"
EXIT_WAIT_S = 120  # writing the archive took 2-5 s; a JVM still busy after this is left


def enabled() -> bool:
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def archive_path() -> Path | None:
    """Where this Spark and Java's archive lives (in the data folder's cache); None when
    the folder cannot be made."""
    try:
        import pyspark

        from xraydesk.paths import cache_dir

        java = _java()
        # the archive holds this Java's and this Spark's classes, from these paths
        key = f"{pyspark.__version__}|{pyspark.__file__}|{java}|{_mtime(java)}"
        folder = cache_dir() / "spark-jvm"
        folder.mkdir(exist_ok=True)
    except (ImportError, OSError):
        return None
    return folder / f"classes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return os.path.realpath(os.path.join(home, "bin", "java"))
    found = shutil.which("java")
    return os.path.realpath(found) if found else ""


def _mtime(path: str) -> int:
    try:
        return int(os.stat(path).st_mtime) if path else 0
    except OSError:
        return 0


def java_flags() -> tuple[str, Path | None]:
    """The JVM flags for this session and, when it records a new archive, the file it
    writes (to be moved into place by ``record``)."""
    if not enabled():
        return "", None
    final = archive_path()
    if final is None:
        return "", None
    if final.is_file():
        return f"-XX:SharedArchiveFile={final} {QUIET}", None
    pending = final.with_name(f"{final.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    return f"-XX:ArchiveClassesAtExit={pending} {QUIET}", pending


def record(session: Any, pending: Path | None) -> None:
    """At the interpreter's exit, end the JVM (as pyspark does: its stdin closed), wait
    for it to write the archive, and move the archive into place if it exited normally."""
    if pending is None:
        return
    process = getattr(getattr(session.sparkContext, "_gateway", None), "proc", None)
    if process is None:  # not a JVM this interpreter started: nothing to wait for
        return
    atexit.register(_finish, process, pending, session)


def _finish(process: Any, pending: Path, session: Any = None) -> None:
    final = pending.with_name(pending.name.split(".", 1)[0] + ".jsa")
    try:
        if session is not None:
            # stopped first: its accumulator server in this process would print an EOFError
            # traceback when the JVM it listens to went away under it
            session.stop()
        if process.stdin is not None:
            process.stdin.close()  # the gateway JVM exits when its stdin ends
        code = process.wait(timeout=EXIT_WAIT_S)
        if code == 0 and pending.is_file() and pending.stat().st_size > 0:
            os.replace(pending, final)
    except Exception as exc:  # never fail an exit for a cache
        log.debug("the Spark JVM's class archive was not kept: %s", exc)
    finally:
        pending.unlink(missing_ok=True)
