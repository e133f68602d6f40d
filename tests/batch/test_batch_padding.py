"""The batch engine pads a run's last, partial batch to the run's one shape on torch only:
on an exported runtime the padding cost the network up to a whole batch of copies (a
folder of 40 films ran 64)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from xraydesk.batch.batch_model import BatchModel
from xraydesk.model.device import select_device
from xraydesk.runtime.backend import Backend, Outputs


def _outputs(rows: int) -> Outputs:
    return Outputs(np.zeros((rows, 3), np.float32), np.zeros((rows, 4), np.float32), None)


class Exported(Backend):
    """An exported runtime without modes (its own batch twin) that counts the rows run."""

    runtime = "onnxruntime"
    precision = "fp32"

    def __init__(self) -> None:
        self.rows: list[int] = []

    def run(self, batch, activations: bool = True) -> Outputs:
        self.rows.append(len(batch))
        return _outputs(len(batch))


def _classifier(runtime: Backend | None, forward=None) -> SimpleNamespace:
    card = SimpleNamespace(temperature=1.0)
    return SimpleNamespace(
        device=select_device("cpu"), runtime=runtime, network=None, card=card, forward=forward
    )


def test_an_exported_runtime_runs_the_last_batch_as_it_is():
    backend = Exported()
    model = BatchModel(_classifier(backend), optimise=False, batch_size=4)
    x = np.zeros((1, 8, 8), np.float32)
    for count in (4, 4, 2):
        out = model.classify_outputs([x] * count, activations=False)
        assert len(out.probabilities) == count
    assert backend.rows == [4, 4, 2]


def test_torch_keeps_the_run_s_one_shape():
    rows: list[int] = []

    def forward(batch, activations: bool = True) -> Outputs:
        rows.append(len(batch))
        return _outputs(len(batch))

    model = BatchModel(_classifier(None, forward), optimise=False, batch_size=4)
    x = np.zeros((1, 8, 8), np.float32)
    assert len(model.classify_outputs([x] * 2).probabilities) == 2  # no full batch yet
    assert len(model.classify_outputs([x] * 4).probabilities) == 4
    assert len(model.classify_outputs([x] * 3).probabilities) == 3  # padded, cut back
    assert rows == [2, 4, 4]
