"""The Python daemon of local sessions (``spark.daemon``): it imports the installed pyspark
instead of compiling the source in ``SPARK_HOME/python/lib/pyspark.zip`` again in every
process, and keeps a zip that is the only pyspark there is. Real local Spark runs through
it in tests/integration/test_spark*.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from xraydesk.spark.daemon import shipped_zips


def _installed(site: Path, py4j: bool = True) -> tuple[str, str]:
    """A pip-like pyspark in ``site`` (with its zips) and maybe py4j; the two zips."""
    lib = site / "pyspark" / "python" / "lib"
    lib.mkdir(parents=True)
    (site / "pyspark" / "__init__.py").write_text("")
    if py4j:
        (site / "py4j").mkdir()
        (site / "py4j" / "__init__.py").write_text("")
    zips = (str(lib / "pyspark.zip"), str(lib / "py4j-0.10.9.9-src.zip"))
    for name in zips:
        with zipfile.ZipFile(name, "w") as archive:
            archive.writestr("pyspark/__init__.py", "")
    return zips


def test_the_installed_packages_own_zips_are_taken_off(tmp_path):
    pyspark_zip, py4j_zip = _installed(tmp_path / "site")
    path = [pyspark_zip, py4j_zip, "/usr/lib/python3.11", str(tmp_path / "site")]
    assert shipped_zips(path) == [pyspark_zip, py4j_zip]


def test_py4j_s_zip_stays_where_py4j_is_not_installed(tmp_path):
    pyspark_zip, py4j_zip = _installed(tmp_path / "site", py4j=False)
    assert shipped_zips([pyspark_zip, py4j_zip, str(tmp_path / "site")]) == [pyspark_zip]


def test_a_zip_that_is_the_only_pyspark_stays(tmp_path):
    """A Spark distribution (SPARK_HOME/python/lib) without pyspark installed, or another
    pyspark installed than the zip's own: the zip is what the workers must import."""
    pyspark_zip, py4j_zip = _installed(tmp_path / "spark-home")
    assert shipped_zips([pyspark_zip, py4j_zip, "/usr/lib/python3.11"]) == []
    other, _ = _installed(tmp_path / "other")
    assert shipped_zips([pyspark_zip, py4j_zip, str(tmp_path / "other")]) == []
    assert other not in shipped_zips([pyspark_zip, str(tmp_path / "other")])


def test_the_daemon_imports_the_installed_pyspark_and_no_zip():
    """As Spark starts it: the zips first on PYTHONPATH; pyspark's worker module and py4j
    must come from the installed package (with bytecode), and the zips leave the path."""
    pyspark = pytest.importorskip("pyspark")

    lib = Path(pyspark.__file__).parent / "python" / "lib"
    zips = sorted(str(p) for p in lib.glob("*.zip"))
    code = (
        "import sys; from xraydesk.spark.daemon import prefer_installed_pyspark;"
        "prefer_installed_pyspark(); import pyspark.worker, py4j;"
        "print(pyspark.worker.__file__); print(py4j.__file__);"
        "print(sum(p.endswith('.zip') and 'pyspark' in p for p in sys.path))"
    )
    env = {"PYTHONPATH": ":".join(zips), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    worker, py4j, left = done.stdout.split()
    assert ".zip" not in worker and ".zip" not in py4j and left == "0"


def test_the_daemon_starts_without_a_warning():
    """Run as Spark runs it (``python -m``, the port on stdout; it ends, with status 1,
    when its stdin does): no "found in sys.modules" warning, which the daemon printed to every job's
    console when its own package had imported it already."""
    pytest.importorskip("pyspark")
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk.spark.daemon"], stdin=subprocess.DEVNULL,
        capture_output=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert len(done.stdout) >= 4, done.stderr  # it started: its port, then stdin ended
    assert b"Warning" not in done.stderr, done.stderr
