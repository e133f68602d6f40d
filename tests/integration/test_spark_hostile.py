"""Spark classify against hostile input (issue 26 #8), on a real local Spark.

Files whose names are not UTF-8, a catalog table that does not exist, and
``spark.executor.pyspark.memory`` (an address-space limit on the Python workers). One
shared session (local[2]); the worker-memory test needs a context of its own, so it runs
``xraydesk spark classify`` in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.batch_helpers import write_png, write_truncated_png
from tests.integration.spark_session import local_session
from tests.paths import REPO_ROOT
from xraydesk.cli import main


@pytest.fixture(scope="module")
def spark():
    yield from local_session("xraydesk-hostile-tests")


def _named(folder: Path, raw: bytes) -> Path:
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + raw))


def test_every_file_gets_a_row_whatever_its_name(spark, test_model_path, tmp_path, capsys):
    """Java's listing dropped names that are not UTF-8 (3 files in, 1 row out, exit 0)."""
    folder = tmp_path / "in"
    write_png(folder / "ok.png", seed=1)
    write_png(_named(folder, b"bad\xff.png"), seed=2)
    write_truncated_png(_named(folder, b"caf\xe9.png"))
    output = tmp_path / "out.parquet"
    argv = ["spark", "classify", str(folder), "--output", str(output)]
    code = main([*argv, "--model", str(test_model_path)])
    assert code == 1, capsys.readouterr().err  # one file cannot be decoded
    assert "3 row(s) added" in capsys.readouterr().out
    rows = spark.read.parquet(str(output)).toPandas().set_index("path")
    assert sorted(rows.index) == sorted(
        [str(folder / "ok.png"), f"{folder}/bad\\xff.png", f"{folder}/caf\\xe9.png"]
    )
    bad = rows.loc[f"{folder}/bad\\xff.png"]  # classified: a class, or none (indeterminate)
    assert bad["error"] is None and (bad["prediction"] is not None or bad["indeterminate"])
    assert rows.loc[f"{folder}/caf\\xe9.png", "error"]
    assert rows.loc[f"{folder}/caf\\xe9.png", "prediction"] is None

    # a re-run adds nothing: the unreadable file is known by the name it was shown under
    assert main([*argv, "--model", str(test_model_path)]) == 0
    assert "0 row(s) added" in capsys.readouterr().out


def test_a_missing_catalog_table_is_a_clear_error(spark, test_model_path, tmp_path, capsys):
    output = tmp_path / "out.parquet"
    argv = ["spark", "classify", "table:nosuchtable", "--output", str(output)]
    assert main([*argv, "--model", str(test_model_path)]) == 2
    err = capsys.readouterr().err
    assert "table 'nosuchtable': no such table or view" in err
    assert "Traceback" not in err and "AnalysisException" not in err
    assert not output.exists()


def _spark_cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XRAYDESK_DATA_DIR": str(data_dir)}
    env.pop("PYSPARK_PYTHON", None)
    command = [sys.executable, "-m", "xraydesk", "spark", "classify", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_worker_memory_limit_runs_or_is_refused(spark, tmp_path):
    """``spark.executor.pyspark.memory`` caps each Python worker's address space: the
    bundled model's exported runtime (OpenVINO) failed under 4g and every job died with a
    traceback. Now workers under a cap run torch; a cap torch cannot load under is
    refused before any job starts."""
    folder = tmp_path / "in"
    write_png(folder / "a.png", seed=3, size=(256, 256))
    output = tmp_path / "out.parquet"
    common = [str(folder), "--output", str(output), "--master", "local[1]"]
    common += ["--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false"]

    refused = _spark_cli([*common, "--conf", "spark.executor.pyspark.memory=1g"], tmp_path / "d")
    assert refused.returncode == 2, refused.stderr
    assert "spark.executor.pyspark.memory=1g is too small" in refused.stderr
    assert "Traceback" not in refused.stderr and not output.exists()

    done = _spark_cli([*common, "--conf", "spark.executor.pyspark.memory=4g"], tmp_path / "d")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 row(s) added" in done.stdout and "1 classified, 0 failed" in done.stdout
    assert "Traceback" not in done.stderr
    rows = spark.read.parquet(str(output)).toPandas()
    assert list(rows["path"]) == [str(folder / "a.png")] and rows["error"].isna().all()
