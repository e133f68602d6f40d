"""``select`` and the int8 candidate (issue 28): first in the CPU order, and chosen only
where the CPU has VNNI, calibration ranges ship for the weights and its verdict passed."""

from __future__ import annotations

from pathlib import Path

import pytest

from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice
from xraydesk.runtime import int8_graph, openvino_backend, probes, select
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.export import checked_marker, exported_graph, runtime_cache_dir
from xraydesk.runtime.faithful import Faithfulness
from xraydesk.runtime.int8_graph import (
    INT8_VARIANT,
    calibration_ranges,
    int8_graph_path,
    quantized_names,
    write_int8_ir,
)
from xraydesk.runtime.int8_ranges import Int8Ranges
from xraydesk.runtime.select import Candidate, auto_order, cpu_candidates

needs_openvino = pytest.mark.skipif(
    not openvino_backend.installed(), reason="OpenVINO not installed"
)
BF16_CPU = DeviceChoice("cpu", "bf16", "CPU, bf16")
INT8 = f"openvino/{INT8_VARIANT}"
MIXED = "openvino/bf16-fp32stem"
RANGES = Int8Ranges(("layer1",), tuple((n, 4.0) for n in quantized_names()), "test")


def _pretend(monkeypatch, passed: dict[str, bool], ranges: bool, vnni: bool) -> None:
    good, bad = Faithfulness(100, 1.0, 0.0004, 0.006), Faithfulness(100, 0.99, 0.001, 0.03)

    def verdict(_sha: str, runtime: str, precision: str) -> Faithfulness | None:
        key = f"{runtime}/{precision}"
        return None if key not in passed else good if passed[key] else bad

    monkeypatch.setattr(select, "shipped_verdict", verdict)
    monkeypatch.setattr(select, "shipped_ranges", lambda _sha: RANGES if ranges else None)
    monkeypatch.setattr(
        select, "cpu_flags", lambda: {"avx512f", "avx512_vnni"} if vnni else {"avx2"}
    )
    monkeypatch.setattr(select, "installed_runtimes", lambda: ["openvino", "onnxruntime"])
    monkeypatch.setattr(openvino_backend, "cpu_has_bf16", lambda: True)
    monkeypatch.delenv("XRAYDESK_PRECISION", raising=False)


def _order(card: ModelCard) -> list[str]:
    order = auto_order(card, BF16_CPU, cpu_candidates())
    return [f"{c.runtime}/{c.measured_as}" for c in order]


ALL = {INT8: True, MIXED: True, "openvino/fp32": True, "onnxruntime/fp32": True}


def test_int8_is_named_by_what_it_leaves_out():
    assert Candidate("openvino", "int8").measured_as == INT8_VARIANT == "int8-layer1fp32"


def test_the_int8_candidate_comes_first_on_a_vnni_cpu(test_model_path: Path, monkeypatch):
    _pretend(monkeypatch, ALL, ranges=True, vnni=True)
    assert cpu_candidates()[0] == Candidate("openvino", "int8")
    assert _order(ModelCard.read(test_model_path))[:2] == [INT8, MIXED]


@pytest.mark.parametrize(
    ("passed", "ranges", "vnni"),
    [
        ({**ALL, INT8: False}, True, True),  # measured, and missed the bar
        ({k: v for k, v in ALL.items() if k != INT8}, True, True),  # never measured
        (ALL, False, True),  # no ranges shipped (or the file refused)
        (ALL, True, False),  # no VNNI: int8 would be no faster than bf16
    ],
)
def test_int8_is_not_chosen_without_any_one_of_them(
    passed, ranges, vnni, test_model_path: Path, monkeypatch
):
    _pretend(monkeypatch, passed, ranges, vnni)
    order = _order(ModelCard.read(test_model_path))
    assert INT8 not in order and order[0] == MIXED


def test_fp32_asked_for_means_no_int8(monkeypatch):
    _pretend(monkeypatch, ALL, ranges=True, vnni=True)
    assert all(c.precision == "fp32" for c in cpu_candidates(precision="fp32"))
    assert cpu_candidates("onnxruntime") == [Candidate("onnxruntime", "fp32")]


def _recorded(card: ModelCard, ranges: dict[str, float], folder: Path) -> Int8Ranges:
    """``ranges`` as they ship: with the difference their int8 graph gives on the probes,
    measured here (``bench_runtime`` records it where it calibrates)."""
    graph = folder / f"int8-{len(list(folder.iterdir()))}.xml"
    write_int8_ir(card, ranges, graph)
    built = openvino_backend.OpenVinoBackend(graph, "int8")
    recorded = probes.probe_difference(built, card.reference_outputs, card.preprocessing)
    in_order = tuple((n, ranges[n]) for n in quantized_names())
    return Int8Ranges(("layer1",), in_order, "probes", recorded)


@pytest.fixture(scope="module")
def calibrated(test_model_path: Path, tmp_path_factory) -> Int8Ranges:
    """The test model's ranges measured as the benchmark measures them (on its probes here),
    with the difference its int8 graph gave on the probes."""
    card = ModelCard.read(test_model_path)
    assert card.reference_outputs is not None
    films = card.reference_outputs.inputs(card.preprocessing)
    return _recorded(card, calibration_ranges(card, films), tmp_path_factory.mktemp("int8"))


def _use(monkeypatch, ranges: Int8Ranges) -> None:
    monkeypatch.setattr(select, "shipped_ranges", lambda _sha: ranges)


def _scaled(ranges: Int8Ranges, factor: float) -> Int8Ranges:
    """Other ranges under the same recorded probe difference (a wrong file, or a bug)."""
    scaled = tuple((n, v * factor) for n, v in ranges.ranges)
    return Int8Ranges(ranges.kept_out, scaled, "x", ranges.probe_difference)


@needs_openvino
def test_the_chosen_int8_graph_is_built_cached_and_keyed_by_its_ranges(
    test_model_path: Path, calibrated: Int8Ranges, monkeypatch, tmp_path: Path
):
    """select builds the int8 graph at first use and finds it in the cache after; other
    ranges for the same weights get another graph, and the old one goes."""
    _pretend(monkeypatch, ALL, ranges=True, vnni=True)
    _use(monkeypatch, calibrated)
    card = ModelCard.read(test_model_path)
    backend = select.select_backend(card, BF16_CPU)
    assert (backend.runtime, backend.precision, backend.label) == (
        "openvino",
        "int8",
        "OpenVINO, CPU, int8",
    )
    first = Path(backend.graph)
    assert first.is_file() and calibrated.digest in first.name
    assert select.select_backend(card, BF16_CPU).graph == first  # from the cache
    assert backend.in_mode("throughput").precision == "int8"  # the batch engine's twin

    scaled = {n: v * 1.1 for n, v in calibrated.ranges}
    other = _recorded(card, scaled, tmp_path)  # other ranges, measured again as they ship
    _use(monkeypatch, other)
    again = select.select_backend(card, BF16_CPU)
    assert Path(again.graph) != first and other.digest in Path(again.graph).name
    assert not first.exists() and not first.with_suffix(".bin").exists()


@needs_openvino
@pytest.mark.parametrize("factor", [0.1, 30.0])
def test_an_int8_graph_built_wrong_is_refused_on_the_probes(
    test_model_path: Path, calibrated: Int8Ranges, factor: float, monkeypatch
):
    """Ranges a tenth or thirty times the measured ones (what a wrong ranges file or a
    quantizing bug would do) make a graph that the probe check refuses: its files are
    deleted and select goes on to the next candidate, never running it. The refusal is
    recorded, so later starts neither build it again nor lose the checked fp32 graph."""
    _pretend(monkeypatch, ALL, ranges=True, vnni=True)
    wrong = _scaled(calibrated, factor)
    _use(monkeypatch, wrong)
    card = ModelCard.read(test_model_path)
    with pytest.raises(RuntimeUnavailable, match="differ from the model card's reference"):
        select.build_backend(Candidate("openvino", "int8"), card)
    left = sorted(p.name for p in runtime_cache_dir().glob(f"*{wrong.digest}*"))
    assert left == [f"{int8_graph_path(card, wrong).stem}.refused"]
    fp32 = exported_graph(card, "ir")
    assert not fp32.created and checked_marker(fp32.path).is_file()  # kept, and checked

    def build_again(*args, **kwargs):
        raise AssertionError("a refused int8 graph was built again")

    real_write = int8_graph.write_int8_ir
    monkeypatch.setattr(int8_graph, "write_int8_ir", build_again)
    with pytest.raises(RuntimeUnavailable, match=r"refused on this machine: .*reference"):
        select.build_backend(Candidate("openvino", "int8"), card)
    backend = select.select_backend(card, BF16_CPU)
    assert backend.precision != "int8"
    assert not exported_graph(card, "ir").created  # not exported again either

    # another OpenVINO tries again: the record names the release that refused it
    record = runtime_cache_dir() / left[0]
    assert record.read_text().splitlines()[0].startswith("openvino ")
    monkeypatch.setattr(int8_graph, "write_int8_ir", real_write)
    stamp = int8_graph._openvino_stamp
    monkeypatch.setattr(int8_graph, "_openvino_stamp", lambda: "openvino 0.0-other")
    with pytest.raises(RuntimeUnavailable, match="differ from the model card's reference"):
        select.build_backend(Candidate("openvino", "int8"), card)  # built and checked again
    monkeypatch.setattr(int8_graph, "_openvino_stamp", stamp)

    # other ranges shipped for the same weights drop the old refusal and are tried
    _use(monkeypatch, calibrated)
    assert select.build_backend(Candidate("openvino", "int8"), card).precision == "int8"
    assert not list(runtime_cache_dir().glob(f"*{wrong.digest}*"))


@needs_openvino
def test_the_int8_probe_check_runs_once_per_graph(
    test_model_path: Path, calibrated: Int8Ranges, monkeypatch, tmp_path: Path
):
    """A cached int8 graph (checked when it was built) is not checked again."""
    _pretend(monkeypatch, ALL, ranges=True, vnni=True)
    card = ModelCard.read(test_model_path)
    _use(monkeypatch, _recorded(card, {n: v * 1.05 for n, v in calibrated.ranges}, tmp_path))
    calls = []
    real = select._check_new_graph
    monkeypatch.setattr(
        select, "_check_new_graph", lambda *a, **k: calls.append(a[0].precision) or real(*a, **k)
    )
    select.build_backend(Candidate("openvino", "int8"), card)
    assert "int8" in calls
    calls.clear()
    select.build_backend(Candidate("openvino", "int8"), card)
    assert "int8" not in calls
