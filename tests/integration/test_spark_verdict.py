"""Issue 27 #6, Spark's part: the same film gets the same verdict on Spark as in the viewer.

The films of ``tests/cli/test_one_verdict.py`` (a real CR chest film, and that film turned
90 degrees, which the input gate flags and chest-3class reads "COVID-19 99.9 %") go
through ``xraydesk.spark.classify`` on ``local[2]``; each Parquet row must carry the
viewer's class (or none), its indeterminate flag, its warning codes, and, for an
indeterminate row, the withheld answer's probabilities. Needs pyspark and Java 17.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_one_verdict import CARD, films  # noqa: F401
from tests.integration.spark_session import local_session
from xraydesk.classifier import Classifier
from xraydesk.imaging import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.trust import TrustCheck
from xraydesk.trust.codes import ROTATED

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark():
    yield from local_session("xraydesk-verdict-tests")


def test_spark_rows_give_the_viewers_verdict(spark, films, tmp_path):  # noqa: F811
    from xraydesk.spark import classify

    card = ModelCard.read(CARD)
    classifier = Classifier.load(card, device="cpu")
    check = TrustCheck.of(classifier)
    folder = tmp_path / "in"
    folder.mkdir()
    for name, path in films.items():
        shutil.copy(path, folder / f"{name}.dcm")
    output = tmp_path / "out.parquet"
    summary = classify(folder, output, model=card, spark=spark)
    assert (summary.rows, summary.classified, summary.failed) == (2, 2, 0)
    rows = spark.read.parquet(str(output)).toPandas()
    by_name = {Path(p).stem: r for p, r in zip(rows["path"], rows.itertuples(), strict=True)}
    assert set(by_name) == set(films)
    for name, path in films.items():
        verdict = check.classify(load_xray(path)).verdict
        assert verdict is not None
        row = by_name[name]._asdict()
        assert row["error"] is None
        assert row["prediction"] == verdict.predicted
        assert bool(row["indeterminate"]) is verdict.is_indeterminate
        assert list(row["warnings"]) == verdict.codes
        answer = verdict.prediction or verdict.indeterminate
        assert answer is not None
        ours = np.array([row[f"p_{c}"] for c in card.class_ids])
        theirs = np.array([answer.probabilities[c] for c in card.class_ids])
        assert np.abs(ours - theirs).max() < 0.02  # batch vs one image, runtimes may differ
    turned = by_name["turned"]._asdict()
    assert ROTATED in list(turned["warnings"]) and turned["prediction"] is None
    assert turned["indeterminate"]
