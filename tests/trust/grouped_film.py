"""A real film the paediatric model withholds while naming the finding (``trust.group_answer``),
for the front doors' tests: the command line, the SR, the results panel."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.dicom_factory import make_dicom
from tests.paths import MODELS_DIR
from xraydesk.classifier import Classifier
from xraydesk.imaging.loader import load_xray

PEDIATRIC = "pediatric-pneumonia"
FINDS = "The model finds Pneumonia, without naming which kind"


def pediatric_grouped_film(shared_data: Path, folder: Path) -> Path:
    """A Kermany test-split pneumonia film, written as a DICOM in ``folder``, that the
    paediatric model withholds with room to spare both ways (top class at most 75 %,
    bacterial + viral at least 95 %; its rule is 83 %): the first of the split's viral
    films that is so. Raises ``LookupError`` when none of the first 40 is."""
    split = MODELS_DIR / PEDIATRIC / "split.csv"
    with split.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test" and r["label"] == "viral"]
    classifier = Classifier.load(MODELS_DIR / f"{PEDIATRIC}.json", device="cpu")
    for i, row in enumerate(rows[:40]):
        pixels = np.round(load_xray(shared_data / row["path"]).render() * 4095)
        film = make_dicom(folder / f"film-{i}.dcm", pixels.astype(np.uint16), bits_stored=12)
        probs = classifier.predict(load_xray(film)).probabilities
        if max(probs.values()) <= 0.75 and probs["bacterial"] + probs["viral"] >= 0.95:
            return film
    raise LookupError("no test film of the paediatric model is withheld with its finding clear")
