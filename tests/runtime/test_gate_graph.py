"""runtime.gate_graph: the input gate's and the appearance heads' network compiled by
OpenVINO (fp32) computes the numpy pass's logits; it compiles lazily, never blocks a
caller, runs from several threads at once, and gives way to numpy without OpenVINO,
when compiling fails, and under XRAYDESK_GATE_RUNTIME=numpy."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from xraydesk.environment import GATE_RUNTIME, SettingError, from_environ
from xraydesk.runtime import gate_graph, openvino_backend
from xraydesk.trust.appearance import APPEARANCE_FILE, N_OUTPUTS
from xraydesk.trust.gate import GATE_FILE, InputGate, standardise
from xraydesk.trust.gate_forward import GateWeights

needs_openvino = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")
ATOL = 1e-4  # on logits; the largest difference seen is about 6e-6
NETWORKS = {"gate": (GATE_FILE, 9), "appearance": (APPEARANCE_FILE, N_OUTPUTS)}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def weights(request) -> GateWeights:
    path, width = NETWORKS[request.param]
    return GateWeights.load(path, n_logits=width)


def _random_thumbs(count: int, seed: int = 3) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((count, 1, 64, 64)) * 2 + 0.5
    return np.stack([standardise(t) for t in noise.astype(np.float32)])


@needs_openvino
@pytest.mark.parametrize("batch", [1, 8])
def test_openvino_logits_equal_numpy_on_random_thumbnails(weights, batch):
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(batch, seed=batch)
    ours = runner(thumbs)
    assert runner.runtime == "openvino"
    assert ours.dtype == np.float32 and ours.shape == (batch, len(weights.out_bias))
    reference = weights.logits(thumbs)
    print(f"largest logit difference, batch {batch}: {np.abs(ours - reference).max():.2e}")
    np.testing.assert_allclose(ours, reference, atol=ATOL, rtol=0)


@needs_openvino
def test_each_row_is_its_own_whatever_the_batch(weights):
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(5, seed=9)
    apart = np.concatenate([runner(t[None]) for t in thumbs])
    np.testing.assert_allclose(runner(thumbs), apart, atol=1e-5, rtol=0)


def test_the_layers_in_torch_layout_hold_the_same_network(weights):
    """``GateWeights.layers`` (what the OpenVINO model is built from), run by a plain
    numpy convolution in torch's NCHW layout, gives the numpy pass's logits."""
    layers = weights.layers()
    x = _random_thumbs(2, seed=4).astype(np.float64)
    for conv in layers.convs:
        x = _nchw_conv(x, conv.weight, conv.stride, conv.padding) + conv.bias[:, None, None]
        x = np.maximum(x, 0)
        if conv.pool:
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    hidden = np.maximum(x.reshape(len(x), -1) @ layers.hidden_weight.T + layers.hidden_bias, 0)
    logits = hidden @ layers.out_weight.T + layers.out_bias
    np.testing.assert_allclose(logits, weights.logits(_random_thumbs(2, seed=4)), atol=ATOL)


def _nchw_conv(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    k = weight.shape[-1]
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwyx,ocyx->nohw", windows, weight)


@needs_openvino
def test_compiles_only_after_its_first_images():
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=2)
    thumbs = _random_thumbs(1)
    for _ in range(2):
        np.testing.assert_array_equal(runner(thumbs), weights.logits(thumbs))
        assert runner.runtime == "numpy" and runner.compiled is None
    runner(thumbs)
    assert runner.runtime == "openvino" and runner.compile_seconds is not None
    print(f"compile: {1e3 * runner.compile_seconds:.0f} ms")


def test_without_openvino_the_numpy_pass_runs(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as in a build without it
    assert not openvino_backend.installed()
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(3)
    np.testing.assert_array_equal(runner(thumbs), weights.logits(thumbs))
    assert runner.runtime == "numpy" and runner.numpy_only


@needs_openvino
def test_a_failed_compile_falls_back_to_numpy_and_logs_at_debug(monkeypatch, caplog):
    def broken(layers):
        raise RuntimeError("no CPU plugin today")

    monkeypatch.setattr(gate_graph, "compile_gate", broken)
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(2)
    with caplog.at_level(logging.DEBUG, logger=gate_graph.__name__):
        np.testing.assert_array_equal(runner(thumbs), weights.logits(thumbs))
    assert runner.numpy_only and "no CPU plugin today" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == gate_graph.__name__)


@needs_openvino
def test_a_failed_inference_falls_back_to_numpy(monkeypatch):
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(2)
    runner(thumbs)
    monkeypatch.setattr(runner, "_infer", lambda compiled, x: 1 / 0)
    np.testing.assert_array_equal(runner(thumbs), weights.logits(thumbs))
    assert runner.runtime == "numpy" and runner.numpy_only


def test_bad_shapes_and_empty_batches_get_the_numpy_pass_answer():
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=0)
    assert runner(np.zeros((0, 1, 64, 64), np.float32)).shape == (0, 9)
    with pytest.raises(ValueError, match="64, 64"):
        runner(np.zeros((1, 1, 32, 32), np.float32))


@needs_openvino
@pytest.mark.parametrize("value", ["numpy", " NumPy "])
def test_the_environment_forces_numpy(monkeypatch, value):
    monkeypatch.setenv(GATE_RUNTIME, value)
    weights = GateWeights.load(GATE_FILE)
    runner = weights.runner(compile_after=0)
    thumbs = _random_thumbs(2)
    np.testing.assert_array_equal(runner(thumbs), weights.logits(thumbs))
    assert runner.runtime == "numpy" and runner.numpy_only
    monkeypatch.setenv(GATE_RUNTIME, "auto")
    again = weights.runner(compile_after=0)
    again(thumbs)
    assert again.runtime == "openvino"


def test_the_environment_setting_is_checked_when_the_gate_is_loaded(monkeypatch):
    assert from_environ({}).gate_runtime == "auto"
    assert from_environ({GATE_RUNTIME: "NUMPY"}).gate_runtime == "numpy"
    message = rf"^{GATE_RUNTIME}='torch': choose one of auto, numpy"
    with pytest.raises(SettingError, match=message):
        from_environ({GATE_RUNTIME: "torch"})
    monkeypatch.setenv(GATE_RUNTIME, "torch")
    with pytest.raises(SettingError, match=message):  # in the caller, not in a worker later
        InputGate.load()


@needs_openvino
def test_threads_at_once_get_what_one_thread_gets():
    """Calls on four threads at once, started together, in a fresh process (where their
    first output reads would race; a hang fails the timeout): the same logits as one
    call at a time."""
    code = textwrap.dedent(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        from xraydesk.trust.gate import GATE_FILE
        from xraydesk.trust.gate_forward import GateWeights
        runner = GateWeights.load(GATE_FILE).runner(compile_after=0)
        runner(np.zeros((1, 1, 64, 64), np.float32))  # compiled (calls meanwhile: numpy)
        rng = np.random.default_rng(0)
        inputs = [rng.standard_normal((1 + i % 3, 1, 64, 64)).astype(np.float32)
                  for i in range(32)]
        barrier = threading.Barrier(4)
        def first(x):
            barrier.wait(timeout=60)
            return runner(x)
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(first, inputs[:4])) + list(pool.map(runner, inputs[4:]))
        alone = [runner(x) for x in inputs]
        assert runner.runtime == "openvino"
        assert all(np.array_equal(a, b) for a, b in zip(together, alone))
        print("same", len(runner._free))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "same"


def test_a_gate_loaded_from_its_file_never_serialises_its_callers():
    """The decode threads of a batch run call the gate at once: the loaded gate holds no
    lock around its network (two calls meet inside it), while a network brought by a
    caller (training's torch) is still run one call at a time (they cannot meet)."""

    def meet_in(gate: InputGate, wait: float) -> list[bool]:
        meeting = threading.Barrier(2, timeout=wait)

        def meet(thumbs: np.ndarray) -> np.ndarray:
            meeting.wait()  # both callers inside at once, or BrokenBarrierError
            return np.zeros((len(thumbs), 9), np.float32)

        gate.logits = meet
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(gate.probabilities, _random_thumbs(1)) for _ in range(2)]
            return [f.exception(timeout=60) is None for f in calls]

    assert meet_in(InputGate.load(), wait=30) == [True, True]
    assert meet_in(InputGate(lambda t: t), wait=0.5) == [False, False]
