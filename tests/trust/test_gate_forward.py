"""The input gate runs in numpy (``trust.gate_forward``) so that the light build gates
without torch; it must compute what the torch ``GateNet`` it was trained as computes, on
the shipped weights, for noise and for real radiographs (upright, turned, inverted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

from tests.paths import REPO_ROOT
from xraydesk.imaging.loader import load_xray
from xraydesk.trust.gate import GATE_FILE, standardise, unit_thumbnail
from xraydesk.trust.gate_forward import GateWeights

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

ATOL = 1e-4


@pytest.fixture(scope="module")
def torch_gate():
    from xraydesk.trust.gate_net import GateNet

    torch.manual_seed(0)
    net = GateNet()
    net.load_state_dict(safetensors_torch.load_file(str(GATE_FILE)))
    return net.eval().float()


@pytest.fixture(scope="module")
def weights() -> GateWeights:
    return GateWeights.load(GATE_FILE)


def _torch_logits(net, thumbs: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(np.ascontiguousarray(thumbs, np.float32))).numpy()


def _random_thumbs(count: int, seed: int = 5) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((count, 1, 64, 64)) * 3 + 1
    return np.stack([standardise(t) for t in noise.astype(np.float32)])


def _state_file(tmp_path: Path, state: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "gate.safetensors"
    save_numpy(state, str(path), metadata={"info": json.dumps({"trained_by": "a test"})})
    return path


def test_numpy_logits_equal_torch_on_random_thumbnails(torch_gate, weights):
    thumbs = _random_thumbs(16)
    ours = weights.logits(thumbs)
    assert ours.shape == (16, 9) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, _torch_logits(torch_gate, thumbs), atol=ATOL, rtol=0)


def test_numpy_logits_equal_torch_on_radiographs(torch_gate, weights, samples_dir):
    files = sorted((samples_dir / "dicom").glob("*.dcm"))[:2]
    files += sorted((samples_dir / "fullres").glob("*.png"))[:3]
    thumbs = np.stack([unit_thumbnail(load_xray(f).render()) for f in files])
    # the same radiographs turned a quarter and inverted: every head's regime
    thumbs = np.concatenate([thumbs, np.rot90(thumbs, 1, axes=(2, 3)), -thumbs])
    thumbs = np.ascontiguousarray(thumbs, np.float32)
    ours = weights.logits(thumbs)
    reference = _torch_logits(torch_gate, thumbs)
    np.testing.assert_allclose(ours, reference, atol=ATOL, rtol=0)
    assert (ours[:, 3:7].argmax(1) == reference[:, 3:7].argmax(1)).all()


def test_info_is_read_from_the_metadata(weights):
    assert weights.info["trained_by"] == "training/train_gate.py"


def test_batches_of_any_size(weights):
    thumbs = _random_thumbs(5, seed=1)
    together = weights.logits(thumbs)
    apart = np.concatenate([weights.logits(t[None]) for t in thumbs])
    np.testing.assert_allclose(together, apart, atol=1e-5, rtol=0)
    assert weights.logits(np.zeros((0, 1, 64, 64), np.float32)).shape == (0, 9)
    with pytest.raises(ValueError, match="64, 64"):
        weights.logits(np.zeros((1, 1, 32, 32), np.float32))


@pytest.mark.parametrize("key", ["features.4.running_var", "head.1.bias", "out.weight"])
def test_a_missing_tensor_is_named(tmp_path, key):
    state = load_numpy(str(GATE_FILE))
    del state[key]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        GateWeights.load(_state_file(tmp_path, state))


def test_an_unexpected_or_misshapen_tensor_is_named(tmp_path):
    state = load_numpy(str(GATE_FILE))
    extra = {**state, "features.99.weight": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match=r"features\.99\.weight"):
        GateWeights.load(_state_file(tmp_path, extra))
    wrong = {**state, "features.7.weight": np.zeros((64, 32, 5, 5), np.float32)}
    with pytest.raises(ValueError, match=r"features\.7\.weight.*\(64, 32, 3, 3\)"):
        GateWeights.load(_state_file(tmp_path, wrong))


def test_the_counters_batch_norm_does_not_use_may_be_missing(tmp_path, weights):
    state = {k: v for k, v in load_numpy(str(GATE_FILE)).items() if "num_batches" not in k}
    loaded = GateWeights.load(_state_file(tmp_path, state))
    thumbs = _random_thumbs(2)
    np.testing.assert_array_equal(loaded.logits(thumbs), weights.logits(thumbs))
    assert loaded.info == {"trained_by": "a test"}


def test_the_numpy_gate_runs_without_torch(torch_gate, tmp_path):
    thumbs = _random_thumbs(3, seed=11)
    np.save(tmp_path / "thumbs.npy", thumbs)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "import json\n"
        "import numpy as np\n"
        "from xraydesk.trust.gate_forward import GateWeights\n"
        f"weights = GateWeights.load({str(GATE_FILE)!r})\n"
        f"logits = weights.logits(np.load({str(tmp_path / 'thumbs.npy')!r}))\n"
        "assert sys.modules['torch'] is None\n"
        "print(json.dumps({'logits': logits.tolist(), 'info': weights.info['trained_by']}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["info"] == "training/train_gate.py"
    reference = _torch_logits(torch_gate, thumbs)
    np.testing.assert_allclose(np.array(result["logits"]), reference, atol=ATOL, rtol=0)


def test_timings(weights):
    """Median of 20 passes for one thumbnail and for 32 (printed; run with -s to see)."""
    medians = {}
    for count in (1, 32):
        thumbs = _random_thumbs(count)
        weights.logits(thumbs)  # warm up
        times = []
        for _ in range(20):
            start = time.perf_counter()
            weights.logits(thumbs)
            times.append(time.perf_counter() - start)
        medians[count] = float(np.median(times)) * 1e3
        print(f"numpy gate, N={count}: median {medians[count]:.2f} ms over 20 runs")
    # generous: a single thumbnail takes about a millisecond even on a shared 2-core CPU
    assert medians[1] < 25.0


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"\xff" * 8 + b"{not json"])
def test_a_damaged_gate_file_is_a_clear_error(tmp_path, content):
    """Not a safetensors file: ModelError naming the file, never safetensors' own error."""
    from xraydesk.errors import ModelError
    from xraydesk.trust.gate import InputGate

    path = tmp_path / "gate.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="the input gate could not be loaded") as err:
        InputGate.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_zero_padding_is_numpys(pad: int):
    from xraydesk.trust.gate_forward import _zero_padded

    x = np.random.default_rng(2).standard_normal((2, 5, 7, 3)).astype(np.float32)
    want = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    got = _zero_padded(x, pad)
    assert got.dtype == x.dtype and np.array_equal(got, want)
