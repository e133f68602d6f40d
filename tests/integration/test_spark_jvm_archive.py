"""The local Spark JVM's class archive with real JVMs (``spark.jvm_archive``): the first
session records it as its interpreter exits, the next one starts with it mapped and runs
a job; the JVM's notes about classes it could not archive stay out of the output. Two
fresh interpreters, since one process keeps one JVM. Needs pyspark and Java 17."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.spark_session import QUIET
from tests.paths import REPO_ROOT
from xraydesk.spark import jvm_archive
from xraydesk.spark.session import missing_requirement

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SESSION = f"""
import json
from xraydesk.spark.session import get_session
spark = get_session("local[2]", "xraydesk-archive-test", {QUIET!r})
spark.sparkContext.setLogLevel("ERROR")
rows = spark.range(10, numPartitions=2).selectExpr("sum(id) AS s").collect()
options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
print(json.dumps({{"sum": rows[0]["s"], "options": options}}))
"""


def _session(data_dir) -> tuple[dict, str]:
    env = {**os.environ, "XRAYDESK_DATA_DIR": str(data_dir), jvm_archive.SWITCH: "1"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", SESSION], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def test_recorded_once_then_mapped(tmp_path):
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    first, output = _session(tmp_path)
    assert first["sum"] == 45 and "-XX:ArchiveClassesAtExit=" in first["options"]
    assert "[cds]" not in output
    folder = tmp_path / "cache" / "spark-jvm"
    archives = sorted(p.name for p in folder.iterdir())
    assert len(archives) == 1 and archives[0].endswith(".jsa"), archives  # no .part left

    second, output = _session(tmp_path)
    assert second["sum"] == 45
    assert f"-XX:SharedArchiveFile={folder / archives[0]}" in second["options"]
    assert "[cds]" not in output
    assert sorted(p.name for p in folder.iterdir()) == archives
