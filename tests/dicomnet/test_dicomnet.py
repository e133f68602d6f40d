"""DICOM network pieces without a network: configuration, storage, worklist, results.

The SR and Secondary Capture are made for every real sample DICOM and read back with
highdicom and pydicom (the Orthanc tests check a PACS accepts them).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from xraydesk import paths
from xraydesk.dicomnet import config as dconfig
from xraydesk.dicomnet.config import ConfigError, NodeConfig, load_config, make_node
from xraydesk.dicomnet.instance_files import InvalidUID, instance_path, store_root, write_private
from xraydesk.dicomnet.result_objects import (
    INDETERMINATE_COMMENT,
    NOT_FOR_DIAGNOSIS,
    burn_in,
    make_results,
)
from xraydesk.dicomnet.worklist import CLASSIFIED, RECEIVED, WorkItem, Worklist

SAMPLES = (
    "siim-cr-jpeg-baseline.dcm",
    "rsna-cr-jpeg-baseline.dcm",
    "nih-dx-uncompressed.dcm",
    "cr-monochrome1-10bit-no-preamble.dcm",
)


def test_config_round_trip_is_private_and_denies_by_default(tmp_path: Path) -> None:
    assert load_config() == NodeConfig()  # no file yet: defaults
    assert NodeConfig().accepted_ae_titles == []
    pacs = make_node("pacs", "ORTHANC", "10.1.2.3", 4242, tls=True)
    config = NodeConfig(allowed_ae_titles=("MODALITY1",), allowed_hosts=("10.1.0.0/16",))
    path = config.with_node(pacs).save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_config()
    assert loaded.node("pacs") == pacs
    assert loaded.accepted_ae_titles == ["MODALITY1", "ORTHANC"]
    assert loaded.host_allowed("10.1.200.7")
    assert loaded.host_allowed("::ffff:10.1.0.9")
    assert not loaded.host_allowed("127.0.0.1")  # a list replaces the loopback default
    assert not loaded.host_allowed("not-an-address")
    assert NodeConfig().host_allowed("127.0.0.1") and NodeConfig().host_allowed("::1")
    assert not NodeConfig().host_allowed("192.168.1.5")
    with pytest.raises(ConfigError, match="no DICOM node named 'other'"):
        loaded.node("other")


@pytest.mark.parametrize(
    "raw",
    [
        {"ae_title": "WAY-TOO-LONG-AE-TITLE"},
        {"ae_title": "BACK\\SLASH"},
        {"allowed_hosts": ["example.org"]},
        {"port": 70000},
        {"nodes": {"pacs": {"ae_title": "P", "host": "h"}}},
        {"auto_send": "missing"},
    ],
)
def test_config_errors_are_named(raw: dict) -> None:
    dconfig.config_path().write_text(json.dumps(raw))
    with pytest.raises(ConfigError):
        load_config()


def test_uids_cannot_escape_the_store() -> None:
    root = store_root()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    good = instance_path(root, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert good == root / "1.2.3" / "1.2.3.4" / "1.2.3.4.5.dcm"
    for bad in ("../../etc", "/abs", "1.2.x", "", "1." * 40 + "1", "1..2"):
        with pytest.raises(InvalidUID):
            instance_path(root, bad, "1.2", "1.2.3")
    target = good
    write_private(target, b"data")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for folder in (target.parent, target.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_worklist_rows_replace_by_instance_and_hide_identifiers() -> None:
    with Worklist() as worklist:
        assert worklist.path == paths.data_dir() / "results.sqlite"
        item = WorkItem(sop_uid="1.2.3", patient_id="SECRET-ID", patient_name="Doe^Jane")
        first = worklist.add(item)
        worklist.set_result(
            first,
            status=CLASSIFIED,
            model="m 1",
            prediction="normal",
            probabilities={"normal": 0.75, "covid19": 0.25},
            seconds=0.5,
        )
        again = worklist.add(WorkItem(sop_uid="1.2.3", patient_id="SECRET-ID"))
        assert again == first and worklist.count() == 1  # a re-sent instance: one row
        row = worklist.get(first)
        assert row is not None and row.status == RECEIVED and row.prediction is None
        assert "SECRET" not in repr(row) and "Doe" not in repr(row)
        assert worklist._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.data
@pytest.mark.parametrize("name", SAMPLES)
def test_sr_and_secondary_capture_read_back(
    name: str, samples_dir: Path, test_classifier, tmp_path: Path
) -> None:
    source = samples_dir / "dicom" / name
    src = pydicom.dcmread(source, force=True, stop_before_pixels=True)
    objects = make_results(source, test_classifier)
    sr_path, sc_path = objects.write(tmp_path)

    sr = hd.sr.srread(sr_path)
    assert isinstance(sr, hd.sr.ComprehensiveSR)
    plain, capture = pydicom.dcmread(sr_path), pydicom.dcmread(sc_path)
    for ds, path in ((plain, sr_path), (capture, sc_path)):
        assert ds.StudyInstanceUID == src.StudyInstanceUID
        assert ds.get("PatientID", "") == src.get("PatientID", "")
        assert ds.get("PatientName", "") == src.get("PatientName", "")
        assert ds.SeriesInstanceUID != src.SeriesInstanceUID
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    uids = {src.SOPInstanceUID, plain.SOPInstanceUID, capture.SOPInstanceUID}
    assert len(uids) == 3 and plain.SeriesInstanceUID != capture.SeriesInstanceUID
    items = {}
    for item in plain.ContentSequence:
        meaning = item.ConceptNameCodeSequence[0].CodeMeaning
        items.setdefault(meaning, []).append(item)
    card = test_classifier.card
    assert items["Algorithm Name"][0].TextValue == card.name
    assert items["Algorithm Version"][0].TextValue == card.version
    probabilities = {
        i.ConceptNameCodeSequence[0].CodeValue[2:]: float(i.MeasuredValueSequence[0].NumericValue)
        for meaning, group in items.items()
        if meaning.startswith("Probability of")
        for i in group
    }
    assert set(probabilities) == set(card.class_ids)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    finding = items["Finding"][0].ConceptCodeSequence[0].CodeValue
    assert finding == objects.prediction == max(probabilities, key=probabilities.get)
    comments = [i.TextValue for i in items["Comment"]]
    assert "not for diagnosis" in comments[0] and comments[1:] == objects.warnings
    ref = items["Source of Measurement"][0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID

    sc = hd.imread(sc_path)
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert sc.BurnedInAnnotation == "YES" and sc.PhotometricInterpretation == "RGB"
    pixels = pydicom.dcmread(sc_path).pixel_array
    assert pixels.shape == (int(src.Rows), int(src.Columns), 3)


@pytest.mark.data
def test_the_sr_carries_the_trust_warnings(samples_dir: Path, test_classifier, tmp_path: Path):
    """A film turned on its side: the SR says so beside the probabilities (issue 14)."""
    ds = pydicom.dcmread(samples_dir / "dicom" / "nih-dx-uncompressed.dcm", force=True)
    ds.PixelData = np.ascontiguousarray(np.rot90(ds.pixel_array)).tobytes()
    ds.Rows, ds.Columns = ds.Columns, ds.Rows
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    turned = tmp_path / "turned.dcm"
    ds.save_as(turned)
    objects = make_results(turned, test_classifier)
    comments = [
        item.TextValue
        for item in pydicom.dcmread(objects.write(tmp_path)[0]).ContentSequence
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Comment"
    ]
    assert any(text.startswith("Warning (rotated): ") for text in comments)
    # the gate withholds the class (issue 27): the SR says Indeterminate, then why
    assert objects.prediction is None
    assert comments[1:] == [INDETERMINATE_COMMENT, *objects.warnings]


def test_burn_in_writes_the_warning_into_the_pixels() -> None:
    plain = np.full((512, 512, 3), 90, dtype=np.uint8)
    burnt = burn_in(plain, NOT_FOR_DIAGNOSIS, "caption")
    changed = np.any(burnt != plain, axis=2)
    assert changed[: 512 // 8].sum() > 2000  # the banner, in the top band
    assert changed[-512 // 16 :].sum() > 100  # the caption, at the bottom
    assert not changed[200:400].any()  # the middle of the image is untouched
