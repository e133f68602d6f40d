"""Local CSV tables of paths read in Python as Spark reads them (no JVM job, no shuffle)."""

from __future__ import annotations

import pytest

from xraydesk.errors import XRayDeskError
from xraydesk.spark.listing import local_csv_paths


def test_the_path_column_as_spark_reads_it(tmp_path):
    table = tmp_path / "files.csv"
    rows = ["path,label", "a/1.png,normal", '"b,2.png",x', "", ",empty", "0007,short"]
    table.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    # every value a string (0007 stays 0007), an empty one null, blank lines skipped,
    # a byte-order mark is not part of the first column's name
    assert local_csv_paths(str(table), "path") == ["a/1.png", "b,2.png", None, "0007"]
    assert local_csv_paths(table.as_uri(), "label") == ["normal", "x", "empty", "short"]


def test_a_missing_column_names_the_columns_there_are(tmp_path):
    table = tmp_path / "files.csv"
    table.write_text("file,label\nx.png,normal\n")
    with pytest.raises(XRayDeskError, match=r"no 'path' column \(columns: file, label\)"):
        local_csv_paths(str(table), "path")


def test_what_only_spark_reads_is_left_to_spark(tmp_path):
    parts = tmp_path / "parts.csv"  # a folder of part files, as Spark writes one
    parts.mkdir()
    assert local_csv_paths(str(parts), "path") is None
    assert local_csv_paths(str(tmp_path / "nothing.csv"), "path") is None  # Spark says why
    assert local_csv_paths("s3a://bucket/files.csv", "path") is None
