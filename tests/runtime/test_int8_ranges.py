"""The shipped int8 calibration ranges: a good file loads, a malformed or hostile one is
refused with a message naming the file and the cause, and the runtime then has none."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from xraydesk.runtime import int8_ranges
from xraydesk.runtime.int8_graph import KEPT_OUT, quantized_names
from xraydesk.runtime.int8_ranges import (
    RANGES_FORMAT,
    RangesError,
    ranges_entry,
    read_ranges,
    shipped_ranges,
    write_ranges,
)

SHA = "ab" * 32


def _good() -> dict[str, float]:
    return {name: 1.0 + i / 10 for i, name in enumerate(quantized_names())}


def _file(tmp_path: Path, entry: object, sha: str = SHA, fmt: str = RANGES_FORMAT) -> Path:
    path = tmp_path / "int8_ranges.json"
    path.write_text(json.dumps({"format": fmt, "models": {sha: entry}}), encoding="utf-8")
    return path


def test_written_ranges_read_back_in_the_walk_order(tmp_path: Path):
    path = tmp_path / "int8_ranges.json"
    write_ranges({SHA: ranges_entry(_good(), "256 training films", "test 1.0")}, path)
    ranges = read_ranges(path)[SHA]
    assert ranges.kept_out == KEPT_OUT and ranges.calibration == "256 training films"
    assert ranges.as_dict() == _good() and [n for n, _ in ranges.ranges] == quantized_names()
    other = dict(_good(), **{"layer2.0.conv1": 7.0})
    write_ranges({SHA: ranges_entry(other, "again", "test 1.0")}, path)
    assert read_ranges(path)[SHA].digest != ranges.digest  # new ranges: a new graph


def _entry(ranges: object, kept: object = None) -> dict:
    return {"kept_out": list(KEPT_OUT) if kept is None else kept, "ranges": ranges}


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ("{not json", "cannot read it as JSON"),
        ("[" * 100000, "cannot read it as JSON"),  # nested past the parser's depth
        (json.dumps({"format": "other/1", "models": {}}), "not a ranges file"),
        (json.dumps([1, 2]), "not a ranges file"),
        (json.dumps({"format": RANGES_FORMAT, "models": []}), "'models' is not a mapping"),
        (json.dumps({"format": RANGES_FORMAT, "models": {"../x": {}}}), "not a weights sha256"),
    ],
)
def test_a_malformed_file_is_refused_naming_it(tmp_path: Path, content: str, cause: str):
    path = tmp_path / "int8_ranges.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RangesError, match=cause) as refused:
        read_ranges(path)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"layer2.0.conv1": float("nan")}, "not a positive finite number"),
        ({"layer2.0.conv1": float("inf")}, "not a positive finite number"),
        ({"layer2.0.conv1": -1.0}, "not a positive finite number"),
        ({"layer2.0.conv1": 0}, "not a positive finite number"),
        ({"layer2.0.conv1": "3"}, "not a positive finite number"),
        ({"layer2.0.conv1": True}, "not a positive finite number"),
        ({"layer1.0.conv1": 2.0}, "unknown convolution names"),  # kept out: never int8
        ({"conv1": 2.0}, "unknown convolution names"),  # the stem stays fp32
        ({"layer9.0.conv1": 2.0}, "unknown convolution names"),
    ],
)
def test_a_hostile_range_is_refused_naming_the_cause(tmp_path: Path, change: dict, cause: str):
    path = _file(tmp_path, _entry({**_good(), **change}))
    with pytest.raises(RangesError, match=cause) as refused:
        read_ranges(path)
    assert str(path) in str(refused.value) and SHA[:12] in str(refused.value)


def test_missing_ranges_and_other_kept_out_stages_are_refused(tmp_path: Path):
    partial = _good()
    del partial["layer4.2.conv3"]
    with pytest.raises(RangesError, match=r"no range for \['layer4.2.conv3'\]"):
        read_ranges(_file(tmp_path, _entry(partial)))
    with pytest.raises(RangesError, match="kept_out"):
        read_ranges(_file(tmp_path, _entry(_good(), ["layer2"])))
    with pytest.raises(RangesError, match="not a mapping"):
        read_ranges(_file(tmp_path, [1.0]))


def test_a_refused_shipped_file_means_no_ranges_logged_once(tmp_path: Path, monkeypatch, caplog):
    bad = _file(tmp_path, _entry({**_good(), "layer3.0.conv2": -5}))
    monkeypatch.setattr(int8_ranges, "RANGES_FILE", bad)
    int8_ranges._shipped.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="xraydesk.runtime.int8_ranges"):
            assert shipped_ranges(SHA) is None and shipped_ranges(SHA) is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and str(bad) in warnings[0].getMessage()
        assert "layer3.0.conv2" in warnings[0].getMessage()
        assert warnings[0].exc_info is None  # a message, not a traceback
    finally:
        int8_ranges._shipped.cache_clear()


def test_the_shipped_ranges_are_those_of_a_bundled_model_with_a_passing_verdict():
    """Ranges and verdict are written together (bench_runtime --write-verdicts): shipped
    ranges without a passing int8 verdict, or for weights no bundled model has, are stale."""
    from tests.paths import REPO_ROOT
    from xraydesk.model.card import ModelCard
    from xraydesk.runtime.faithful import shipped_verdict
    from xraydesk.runtime.int8_graph import INT8_VARIANT

    bundled = {ModelCard.read(p).weights_sha256 for p in (REPO_ROOT / "models").glob("*.json")}
    shipped = read_ranges()
    assert shipped and set(shipped) <= bundled
    for sha in shipped:
        verdict = shipped_verdict(sha, "openvino", INT8_VARIANT)
        assert verdict is not None and verdict.passed and verdict.images > 1000


def test_the_probe_difference_is_kept_beside_the_ranges_and_not_in_the_digest(tmp_path: Path):
    """What the int8 graph gave on the probes where the ranges were measured is read back
    (the runtime's check of a graph built elsewhere holds it to that); it names no other
    graph, so it is not part of the digest."""
    path = tmp_path / "int8_ranges.json"
    write_ranges({SHA: ranges_entry(_good(), "films", "test 1.0", probe_difference=0.0072)}, path)
    recorded = read_ranges(path)[SHA]
    assert recorded.probe_difference == 0.0072
    write_ranges({SHA: ranges_entry(_good(), "films", "test 1.0")}, path)
    unrecorded = read_ranges(path)[SHA]
    assert unrecorded.probe_difference is None and unrecorded.digest == recorded.digest


@pytest.mark.parametrize("value", [-0.1, 1.0, 7, float("nan"), float("inf"), "0.01", True])
def test_a_hostile_probe_difference_is_refused(tmp_path: Path, value: object):
    entry = {**_entry(_good()), "probe_difference": value}
    path = _file(tmp_path, entry)
    with pytest.raises(RangesError, match="probe_difference") as refused:
        read_ranges(path)
    assert str(path) in str(refused.value)
