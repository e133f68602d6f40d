"""The local[2] SparkSession the Spark integration tests share the making of.

Without pyspark or Java the tests skip with the reason, except in CI
(XRAYDESK_REQUIRE_DATA=1 or CI=true), where they fail: CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from xraydesk.spark.session import missing_requirement

QUIET = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


def local_session(app_name: str, extra: Mapping[str, str] | None = None) -> Iterator[Any]:
    """A fixture's body: yields a local[2] session, stops it afterwards."""
    reason = missing_requirement()
    if reason is not None:
        if os.environ.get("XRAYDESK_REQUIRE_DATA") == "1" or os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Spark tests")
        pytest.skip(reason)
    from xraydesk.spark import jvm_archive
    from xraydesk.spark.session import get_session

    with pytest.MonkeyPatch.context() as patch:
        # no class archive: each test process would write one (180 MB) as it exits;
        # tests/integration/test_spark_jvm_archive.py runs the archive in its own processes
        patch.setenv(jvm_archive.SWITCH, "0")
        session = get_session("local[2]", app_name, {**QUIET, **(extra or {})})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
